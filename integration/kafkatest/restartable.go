package kafkatest

import (
	"os/exec"
	"sync"
	"testing"
)

// Restartable is a broker of one test's own, which the test may stop and
// start again: the same address, the same data (topics, committed offsets,
// transactions). It always runs as a Java process (the jvm provider), so a
// broker outage can be made on purpose whatever provider serves the other
// tests. It is removed when the test ends.
type Restartable struct {
	*Broker

	mu sync.Mutex
	jb *jvmBroker
}

// StartRestartable starts a broker for t alone. It fails t when Java or
// Maven is missing (./integration/run installs them).
func StartRestartable(t testing.TB) *Restartable {
	t.Helper()
	jb := startOwn(t, "restartable", brokerSpec{})
	r := &Restartable{Broker: jb.broker(), jb: jb}
	t.Cleanup(func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.jb.remove()
	})
	t.Logf("kafkatest: restartable broker Apache Kafka %s at %s", kafkaVersion, r.Addrs[0])
	return r
}

// startOwn starts a Java broker for t alone, configured as spec says; the
// caller removes it. kind names it in failures.
func startOwn(t testing.TB, kind string, spec brokerSpec) *jvmBroker {
	t.Helper()
	java, err := exec.LookPath("java")
	if err != nil {
		t.Fatalf("kafkatest: a %s broker needs java on PATH: %v (install with: %s)", kind, err, installHint)
	}
	mvn, err := exec.LookPath("mvn")
	if err != nil {
		t.Fatalf("kafkatest: a %s broker needs mvn on PATH: %v (install with: %s)", kind, err, installHint)
	}
	ctx := life.ctx
	libs, err := resolveKafka(ctx, mvn)
	if err != nil {
		t.Fatalf("kafkatest: resolve the broker's jars: %v", err)
	}
	var jb *jvmBroker
	for attempt := 1; ; attempt++ {
		if jb, err = newJVMBrokerSpec(ctx, java, libs, spec); err == nil {
			if err = jb.start(ctx); err == nil {
				return jb
			}
			jb.remove()
		}
		if attempt == launchAttempts {
			t.Fatalf("kafkatest: start a %s broker: %v", kind, err)
		}
	}
}

// Stop stops the broker (a clean shutdown) and returns once its process
// exited. Its data stays for Start.
func (r *Restartable) Stop(t testing.TB) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.jb.stop()
}

// Start starts the stopped broker again on its address and returns once it
// serves metadata and topic admin.
func (r *Restartable) Start(t testing.TB) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.jb.proc != nil {
		t.Fatalf("kafkatest: broker at %s is running", r.Addrs[0])
	}
	if err := r.jb.start(life.ctx); err != nil {
		t.Fatalf("kafkatest: restart the broker at %s: %v", r.Addrs[0], err)
	}
}
