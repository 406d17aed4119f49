// Command crashapp is a minimal Streamwork application for crash tests: the
// tests run it as a separate process so that they can kill it (SIGKILL, no
// shutdown at all) in the middle of its work, start it again, and check
// what its delivery guarantee promises about the output.
//
// Its topology reads -input (string keys and values), tags each value and
// writes it to -output with the same key:
//
//	input --> MapValues(v => v + "|" + tag) --> output
//
// The tag is -tag, by default "pid-<process id>", so the output tells which
// run of the program wrote each record.
//
// Usage:
//
//	crashapp -brokers host:port[,host:port] -app ID -input TOPIC -output TOPIC
//	    [-guarantee at-least-once|at-most-once] [-instance ID] [-tag TAG]
//	    [-commit-interval 100ms] [-rate 0] [-session-timeout 6s] [-log-level info]
//
// It prints one line, "ready", to standard output when it has processed
// its first record, and nothing else there; its logs go to standard error.
// SIGTERM or SIGINT shut it down cleanly (App.Run returns after committing
// what was processed), and it exits 0. It exits 1 when the App fails and 2
// on bad flags.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/streamwork-go/streamwork/examples/service"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamwork-go/streamwork/kstream"
	"github.com/streamwork-go/streamwork/serde"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// config is what the flags say.
type config struct {
	brokers        []string
	appID          string
	input, output  string
	guarantee      kstream.DeliveryGuarantee
	instance       string
	tag            string
	commitInterval time.Duration
	rate           float64
	sessionTimeout time.Duration
	logLevel       slog.Level
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var (
		c      config
		common service.Flags
	)
	fs := flag.NewFlagSet("crashapp", flag.ContinueOnError)
	fs.SetOutput(stderr)
	common.Register(fs, service.WithGuarantee(kstream.AtLeastOnce))
	fs.StringVar(&c.appID, "app", "", "application id: the consumer group (required)")
	fs.StringVar(&c.input, "input", "", "input topic (required)")
	fs.StringVar(&c.output, "output", "", "output topic (required)")
	fs.StringVar(&c.instance, "instance", "", "instance id, stable across restarts (default: random per run)")
	fs.StringVar(&c.tag, "tag", "pid-"+strconv.Itoa(os.Getpid()), "tag appended to each output value after a '|'")
	fs.DurationVar(&c.commitInterval, "commit-interval", 100*time.Millisecond, "commit interval")
	fs.Float64Var(&c.rate, "rate", 0, "process at most this many records per second (0: no limit), to make a crash land mid-stream")
	fs.DurationVar(&c.sessionTimeout, "session-timeout", 6*time.Second,
		"group session timeout: how soon the group evicts a killed run (6s is the broker's default minimum)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	c.brokers, c.guarantee, c.logLevel = common.Addrs(), common.Guarantee, common.LogLevel
	switch {
	case len(c.brokers) == 0:
		return c, errors.New("-brokers is required")
	case c.appID == "":
		return c, errors.New("-app is required")
	case c.input == "" || c.output == "":
		return c, errors.New("-input and -output are required")
	case c.rate < 0:
		return c, fmt.Errorf("-rate %v must not be negative", c.rate)
	}
	if c.guarantee == kstream.ExactlyOnce {
		return c, errors.New("-guarantee exactly-once: want at-least-once or at-most-once (eosapp runs exactly-once)")
	}
	return c, nil
}

func run(args []string, stdout, stderr io.Writer) int {
	c, err := parseFlags(args, stderr)
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(stderr, "crashapp:", err)
		}
		return 2
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: c.logLevel})).With("tag", c.tag)

	var ready sync.Once
	limit := newLimiter(c.rate)
	b := kstream.NewBuilder()
	kstream.MapValues(kstream.From(b, c.input, serde.String, serde.String, kstream.Named("input")),
		func(v string) string {
			ready.Do(func() { fmt.Fprintln(stdout, "ready") })
			limit.wait()
			return v + "|" + c.tag
		}, kstream.Named("tag")).
		To(c.output, serde.String, serde.String, kstream.Named("output"))
	topo, err := b.Build()
	if err != nil {
		fmt.Fprintln(stderr, "crashapp:", err)
		return 1
	}

	opts := []kstream.Opt{
		kstream.ApplicationID(c.appID),
		kstream.Brokers(c.brokers...),
		kstream.Guarantee(c.guarantee),
		kstream.CommitInterval(c.commitInterval),
		kstream.Logger(logger),
		kstream.ClientOpts(kgo.SessionTimeout(c.sessionTimeout), kgo.HeartbeatInterval(c.sessionTimeout/10)),
	}
	if c.instance != "" {
		opts = append(opts, kstream.InstanceID(c.instance))
	}
	app, err := kstream.New(topo, opts...)
	if err != nil {
		fmt.Fprintln(stderr, "crashapp:", err)
		return 2
	}

	ctx, stop := service.SignalContext()
	defer stop()
	logger.Info("crashapp: running", "app", c.appID, "input", c.input, "output", c.output,
		"guarantee", c.guarantee.String(), "instance", c.instance)
	if err := app.Run(ctx); err != nil {
		logger.Error("crashapp: stopped", "err", err)
		return 1
	}
	m := app.Metrics()
	logger.Info("crashapp: shut down cleanly", "processed", m.RecordsProcessed, "produced", m.RecordsProduced, "commits", m.Commits)
	return 0
}

// limiterSlack is how far a limiter may fall behind its schedule and still
// catch up.
const limiterSlack = 100 * time.Millisecond

// limiter spaces calls to wait so that at most rate of them return per
// second; a zero rate does not limit. It is called from the App's task
// goroutines, so it locks.
type limiter struct {
	mu    sync.Mutex
	every time.Duration
	next  time.Time
}

func newLimiter(rate float64) *limiter {
	if rate == 0 {
		return &limiter{}
	}
	return &limiter{every: time.Duration(float64(time.Second) / rate)}
}

func (l *limiter) wait() {
	if l.every == 0 {
		return
	}
	l.mu.Lock()
	now := time.Now()
	// A sleep often overshoots its slot; the records after it are then
	// due at once, so the average rate holds. Only an idle spell (no
	// records for limiterSlack) forfeits the slots it missed.
	if l.next.Before(now.Add(-limiterSlack)) {
		l.next = now
	}
	at := l.next
	l.next = l.next.Add(l.every)
	l.mu.Unlock()
	if d := time.Until(at); d > 0 {
		time.Sleep(d) // throttles the simulated workload
	}
}
