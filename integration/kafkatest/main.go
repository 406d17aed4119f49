package kafkatest

import (
	"fmt"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// SkipEnv names the environment variable that, set to "1", makes [Require]
// skip real-broker tests instead of starting a broker. CI never sets it.
const SkipEnv = "STREAMWORK_SKIP_INTEGRATION"

var (
	// mainInstalled is set by Main; Require refuses to start a broker
	// that nobody would stop.
	mainInstalled atomic.Bool

	// shared is the one broker of this test binary.
	shared struct {
		once   sync.Once
		broker *Broker
		err    error
		took   time.Duration // how long the start took
	}
)

// Main runs a test package's tests around the shared broker. Call it from
// the package's TestMain:
//
//	func TestMain(m *testing.M) { kafkatest.Main(m) }
//
// It runs m.Run, then stops the broker if this process started one, removes
// its data directory and exits with the tests' code. While the tests run, a
// SIGINT or SIGTERM stops the broker and exits at once (a second signal
// exits without waiting). Main does not return.
func Main(m *testing.M) {
	mainInstalled.Store(true)

	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go handleSignals(sigs)

	code := m.Run()
	signal.Stop(sigs)
	shutdown()
	os.Exit(code)
}

// handleSignals stops the broker on the first signal and exits; a second
// signal exits without waiting for the stop to finish.
func handleSignals(sigs <-chan os.Signal) {
	sig := <-sigs
	fmt.Fprintf(os.Stderr, "kafkatest: %v: stopping the test broker and exiting\n", sig)
	done := make(chan struct{})
	go func() {
		shutdown()
		close(done)
	}()
	select {
	case <-done:
	case <-sigs:
		fmt.Fprintln(os.Stderr, "kafkatest: second signal: exiting without waiting")
	}
	code := 1
	if s, ok := sig.(syscall.Signal); ok {
		code = 128 + int(s)
	}
	os.Exit(code)
}

// Require returns the test binary's shared real broker, starting it on the
// first call. Later calls, from any goroutine, return the same broker (or
// the same start error) without starting another.
//
// If no broker can be had, Require fails t with every provider's error and
// how to fix it; it never skips silently. If STREAMWORK_SKIP_INTEGRATION=1
// is set, it skips t with a loud message instead. The package must call
// [Main] from its TestMain, or Require fails t.
func Require(t testing.TB) *Broker {
	t.Helper()
	if os.Getenv(SkipEnv) == "1" {
		t.Skip("kafkatest: REAL-BROKER TEST SKIPPED BY REQUEST: " + SkipEnv + "=1 is set. " +
			"Nothing was checked against Apache Kafka; unset " + SkipEnv + " to run it.")
	}
	if !mainInstalled.Load() {
		t.Fatalf("kafkatest: Require needs the package's TestMain to call kafkatest.Main:\n" +
			"\tfunc TestMain(m *testing.M) { kafkatest.Main(m) }")
	}
	first := false
	shared.once.Do(func() {
		first = true
		began := time.Now()
		shared.broker, shared.err = start()
		shared.took = time.Since(began)
		if shared.err == nil {
			b := shared.broker
			fmt.Printf("integration: broker Apache Kafka %s via %s at %s\n", b.Version, b.Provider, b.Addrs[0])
		}
	})
	if first && shared.err == nil {
		t.Logf("kafkatest: broker ready after %v; this test package shares it", shared.took.Round(time.Millisecond))
	}
	if shared.err != nil {
		t.Fatalf("kafkatest: no real Kafka broker for this test:\n%v", shared.err)
	}
	return shared.broker
}
