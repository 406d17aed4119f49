package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamwork-go/streamwork/kstream"
	"github.com/streamwork-go/streamwork/serde"
)

// TestMain lets the crash demo start this test binary as a processing
// instance, as the example starts itself.
func TestMain(m *testing.M) {
	if c, ok, err := processorInvocation(os.Args[1:]); ok {
		if err != nil {
			fmt.Fprintln(os.Stderr, "systemusage:", err)
			os.Exit(2)
		}
		os.Exit(runProcessor(c, os.Stderr))
	}
	os.Exit(m.Run())
}

func newCluster(t *testing.T) []string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

// wantTable is the summary's table when every guarantee counted every
// event once: computed from the generated events.
func wantTable(events []Usage) string {
	exact := make([]Outcome, len(guarantees))
	for i, g := range guarantees {
		exact[i] = Outcome{Guarantee: g, Deltas: len(events), Totals: Totals(events), Expected: Totals(events)}
	}
	return strings.Join(summaryLines(exact), "\n") + "\n"
}

// With no crash every guarantee counts every event once: the whole
// output, the users' totals computed from the generated events.
func TestSystemUsageOnEmbeddedBroker(t *testing.T) {
	addrs := newCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg := config{seed: DefaultSeed, events: DefaultEvents}
	var out bytes.Buffer
	if _, err := run(ctx, addrs, cfg, "test", t.TempDir(), slog.New(slog.DiscardHandler), &out); err != nil {
		t.Fatal(err)
	}
	want := "wrote 3000 usage events of 5 users (seed 1) to 2 partitions, keyed by user\n" +
		"each guarantee's counter sums CPU per user and writes a delta per event, to the end of the input:\n" +
		wantTable(Generate(cfg.seed, cfg.events))
	if out.String() != want {
		t.Fatalf("output:\n%s\nwant:\n%s", out.String(), want)
	}
	// The README's output, which the real-broker test checks too.
	golden := filepath.Join("testdata", "default.golden")
	if *update {
		if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	g, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if out.String() != string(g) {
		t.Fatalf("output:\n%s\nwant %s:\n%s", out.String(), golden, g)
	}
}

var update = flag.Bool("update", false, "rewrite testdata/default.golden from the run")

// The crash demo, its processing instances this test binary (TestMain):
// through a SIGKILL mid-run, exactly-once loses nothing and counts nothing
// twice, and its totals are exact; at-least-once loses nothing;
// at-most-once counts nothing twice. How many at-most-once loses and
// at-least-once doubles depends on where the crash lands.
func TestCrashDemoOnEmbeddedBroker(t *testing.T) {
	addrs := newCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	cfg := config{seed: DefaultSeed, events: DefaultEvents, demoCrash: true, rate: DefaultRate, exe: exe,
		childLog: &syncWriter{w: &logs}, logLevel: slog.LevelInfo}
	var out bytes.Buffer
	outcomes, err := run(ctx, addrs, cfg, "crash", t.TempDir(), slog.New(slog.DiscardHandler), &out)
	if err != nil {
		t.Fatalf("%v\nprocessing instances' logs:\n%s", err, logs.String())
	}
	t.Logf("output:\n%s", out.String())
	if len(outcomes) != 3 {
		t.Fatalf("%d outcomes, want 3", len(outcomes))
	}
	for _, o := range outcomes {
		switch o.Guarantee {
		case kstream.ExactlyOnce:
			if o.Lost != 0 || o.Twice != 0 || !o.TotalsExact() || o.Deltas != cfg.events {
				t.Errorf("exactly-once: %d deltas, %d lost, %d counted twice, totals %v; want %d, 0, 0, %v",
					o.Deltas, o.Lost, o.Twice, o.Totals, cfg.events, o.Expected)
			}
			if want := "  exactly-once     3000      0              0  exact\n"; !strings.Contains(out.String(), want) {
				t.Errorf("output has no line %q", want)
			}
		case kstream.AtLeastOnce:
			if o.Lost != 0 {
				t.Errorf("at-least-once lost %d events", o.Lost)
			}
		case kstream.AtMostOnce:
			if o.Twice != 0 {
				t.Errorf("at-most-once counted %d events twice", o.Twice)
			}
		}
	}
}

// syncWriter serialises writes from the processing instances' log copiers.
type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// check finds lost and doubled events and takes the last totals.
func TestCheck(t *testing.T) {
	events := []Usage{{ID: "a", User: "u", CPUMillis: 5}, {ID: "b", User: "u", CPUMillis: 7}, {ID: "c", User: "v", CPUMillis: 1}}
	rec := func(user string, d Delta) *kgo.Record {
		v, err := serde.JSON[Delta]().Serialize("t", d)
		if err != nil {
			t.Fatal(err)
		}
		return &kgo.Record{Topic: "t", Key: []byte(user), Value: v}
	}
	o, err := check(kstream.AtLeastOnce, events, []*kgo.Record{
		rec("u", Delta{Event: "a", CPUMillis: 5, TotalMillis: 5}),
		rec("u", Delta{Event: "a", CPUMillis: 5, TotalMillis: 10}),
		rec("u", Delta{Event: "b", CPUMillis: 7, TotalMillis: 17}),
	})
	if err != nil {
		t.Fatal(err)
	}
	if o.Deltas != 3 || o.Lost != 1 || o.Twice != 1 || o.Totals["u"] != 17 || o.TotalsExact() || o.TotalsOff() != 17-13 {
		t.Fatalf("outcome %+v", o)
	}
	if got, want := outcomeLine(o), "  at-least-once       3      1              1  off by +0.004 s"; got != want {
		t.Fatalf("line %q, want %q", got, want)
	}
	if _, err := check(kstream.AtLeastOnce, events, []*kgo.Record{rec("u", Delta{Event: "c", CPUMillis: 1})}); err == nil {
		t.Fatal("a delta under the wrong user passed")
	}
}
