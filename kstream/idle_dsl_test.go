package kstream_test

import (
	"errors"
	"testing"
	"time"

	"github.com/streamwork-go/streamwork/kstream"
	"github.com/streamwork-go/streamwork/kstream/kstreamtest"
	"github.com/streamwork-go/streamwork/serde"
)

// mergedInputs merges the topics "a" and "b" into "out": one task reads
// both.
func mergedInputs() *kstream.Builder {
	b := kstream.NewBuilder()
	kstream.From(b, "a", serde.String, serde.String).
		Merge(kstream.From(b, "b", serde.String, serde.String)).
		To("out", serde.String, serde.String)
	return b
}

// values returns the values written to "out" since the last call.
func values(t *testing.T, d *kstreamtest.Driver) []string {
	t.Helper()
	var got []string
	for _, r := range kstreamtest.Output(d, "out", serde.String, serde.String).KeyValues() {
		got = append(got, r.Value)
	}
	return got
}

// With MaxTaskIdle, a task that reads two topics keeps a record while the
// other topic has nothing, so records of both are processed in timestamp
// order; once the wait is over it goes on without the empty topic.
func TestMaxTaskIdleKeepsRecordsUntilEveryInputHasOne(t *testing.T) {
	d := mustDriver(t, mergedInputs(), kstream.MaxTaskIdle(time.Second))
	a := kstreamtest.Input(d, "a", serde.String, serde.String)
	bIn := kstreamtest.Input(d, "b", serde.String, serde.String)
	steps := []struct {
		pipe    func() error
		advance time.Duration
		want    []string
	}{
		{pipe: func() error { return a.Pipe("k", "a20", ts(20)) }},
		{pipe: func() error { return a.Pipe("k", "a40", ts(40)) }},
		{pipe: func() error { return bIn.Pipe("k", "b10", ts(10)) }, want: []string{"b10"}},
		{pipe: func() error { return bIn.Pipe("k", "b30", ts(30)) }, want: []string{"a20", "b30"}},
		{advance: 999 * time.Millisecond},
		{advance: time.Millisecond, want: []string{"a40"}}, // b has been empty for a second
	}
	for i, s := range steps {
		var err error
		if s.pipe != nil {
			err = s.pipe()
		} else {
			err = d.AdvanceWallClock(s.advance)
		}
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		equal(t, "step output", values(t, d), s.want)
	}
	if got := d.Metrics().EnforcedProcessing; got != 1 {
		t.Errorf("EnforcedProcessing = %d, want 1", got)
	}
}

// With the default MaxTaskIdle (0) a record is processed when it is piped:
// the other input is caught up. It counts as enforced processing, as in
// Kafka Streams; with NoTaskIdle it does not.
func TestDefaultMaxTaskIdleDoesNotWaitForCaughtUpInputs(t *testing.T) {
	for _, c := range []struct {
		name     string
		opts     []kstream.Opt
		enforced int64
	}{
		{"default", nil, 1},
		{"NoTaskIdle", []kstream.Opt{kstream.MaxTaskIdle(kstream.NoTaskIdle)}, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := mustDriver(t, mergedInputs(), c.opts...)
			if err := kstreamtest.Input(d, "a", serde.String, serde.String).Pipe("k", "a20", ts(20)); err != nil {
				t.Fatal(err)
			}
			equal(t, "output", values(t, d), []string{"a20"})
			if got := d.Metrics().EnforcedProcessing; got != c.enforced {
				t.Errorf("EnforcedProcessing = %d, want %d", got, c.enforced)
			}
		})
	}
}

func TestMaxTaskIdleValidated(t *testing.T) {
	topo, err := mergedInputs().Build()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []time.Duration{0, time.Millisecond, time.Hour, kstream.NoTaskIdle} {
		if _, err := kstream.New(topo, kstream.ApplicationID("x"), kstream.Brokers("b:1"), kstream.MaxTaskIdle(d)); err != nil {
			t.Errorf("MaxTaskIdle(%v): %v", d, err)
		}
	}
	for _, d := range []time.Duration{-2, -time.Millisecond} {
		if _, err := kstream.New(topo, kstream.ApplicationID("x"), kstream.Brokers("b:1"), kstream.MaxTaskIdle(d)); !errors.Is(err, kstream.ErrConfig) {
			t.Errorf("MaxTaskIdle(%v): %v, want ErrConfig", d, err)
		}
		if _, err := kstreamtest.New(topo, kstream.MaxTaskIdle(d)); !errors.Is(err, kstream.ErrConfig) {
			t.Errorf("kstreamtest with MaxTaskIdle(%v): %v, want ErrConfig", d, err)
		}
	}
}
