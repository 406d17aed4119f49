package kstream_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/streamwork-go/streamwork/kstream"
	"github.com/streamwork-go/streamwork/serde"
)

// limitsTopology is a small stateful topology with a store named store.
func limitsTopology(t *testing.T, store string) *kstream.Topology {
	t.Helper()
	b := kstream.NewBuilder()
	kstream.Count(kstream.GroupByKey(kstream.From(b, "in", serde.String, serde.String), serde.String, serde.String),
		kstream.StoreName(store)).ToStream().To("out", serde.String, serde.Int64)
	topo, err := b.Build()
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	return topo
}

// Every duration option of New rejects the values it cannot mean with an
// error wrapping ErrConfig that names the option; the sentinels and
// bounds it documents are accepted.
func TestNewRejectsBadDurations(t *testing.T) {
	topo := limitsTopology(t, "counts")
	base := []kstream.Opt{kstream.ApplicationID("app"), kstream.Brokers("127.0.0.1:1")}
	for _, tc := range []struct {
		opt  kstream.Opt
		name string // "" when the option is valid
	}{
		{kstream.CommitInterval(0), "CommitInterval"},
		{kstream.CommitInterval(-time.Second), "CommitInterval"},
		{kstream.CommitInterval(time.Millisecond), ""},
		{kstream.MaxTaskIdle(-2 * time.Millisecond), "MaxTaskIdle"},
		{kstream.MaxTaskIdle(-time.Hour), "MaxTaskIdle"},
		{kstream.MaxTaskIdle(kstream.NoTaskIdle), ""},
		{kstream.MaxTaskIdle(0), ""},
		{kstream.ProbingRebalanceInterval(0), "ProbingRebalanceInterval"},
		{kstream.ProbingRebalanceInterval(-time.Minute), "ProbingRebalanceInterval"},
		{kstream.ProbingRebalanceInterval(99 * time.Millisecond), "ProbingRebalanceInterval"},
		{kstream.ProbingRebalanceInterval(100 * time.Millisecond), ""},
	} {
		_, err := kstream.New(topo, append(base, tc.opt)...)
		switch {
		case tc.name == "" && err != nil:
			t.Errorf("valid option: New returned %v", err)
		case tc.name != "" && (!errors.Is(err, kstream.ErrConfig) || !strings.Contains(err.Error(), tc.name)):
			t.Errorf("New returned %v, want an error wrapping ErrConfig that names %s", err, tc.name)
		}
	}
}

// Every duration a DSL operator takes rejects negative values (and zero
// where zero means nothing) at Build with an error wrapping ErrTopology
// that names the operator, the option and the parameter; a negative duration shorter
// than a millisecond is negative too, not rounded to zero.
func TestBuildRejectsBadDurations(t *testing.T) {
	windowed := func(w kstream.Windows) func(*kstream.Builder) {
		return func(b *kstream.Builder) {
			kstream.WindowedCount(kstream.WindowedBy(kstream.GroupByKey(kstream.From(b, "in", serde.String, serde.Int64), serde.String, serde.Int64), w))
		}
	}
	joined := func(w kstream.JoinWindows) func(*kstream.Builder) {
		return func(b *kstream.Builder) {
			kstream.Join(kstream.From(b, "l", serde.String, serde.String), kstream.From(b, "r", serde.String, serde.String),
				func(_ string, l, r string) string { return l + r }, w,
				kstream.StreamJoined[string, string, string]{Key: serde.String, Left: serde.String, Right: serde.String})
		}
	}
	tableJoin := func(history, grace time.Duration) func(*kstream.Builder) {
		return func(b *kstream.Builder) {
			kstream.JoinTable(kstream.From(b, "o", serde.String, serde.String),
				kstream.TableFrom(b, "p", serde.String, serde.String, kstream.Versioned(history)),
				func(_ string, a, b string) string { return a + b },
				kstream.StreamJoined[string, string, string]{Key: serde.String, Left: serde.String, Right: serde.String},
				kstream.JoinGrace(grace))
		}
	}
	idle := func(d time.Duration) func(*kstream.Builder) {
		return func(b *kstream.Builder) {
			g := kstream.GroupByKey(kstream.From(b, "in", serde.String, serde.Int64), serde.String, serde.Int64)
			kstream.WindowedCount(kstream.WindowedBy(g, kstream.Tumbling(time.Second, 0)), kstream.CloseWindowsWhenIdle(d))
		}
	}
	suppressed := func(d time.Duration) func(*kstream.Builder) {
		return func(b *kstream.Builder) {
			tbl := kstream.TableFrom(b, "t", serde.String, serde.String)
			kstream.SuppressUntilTimeLimit(tbl, d, kstream.BufferLimit{})
		}
	}
	for _, tc := range []struct {
		name  string
		add   func(*kstream.Builder)
		wants []string // what the error names; nil when valid
	}{
		{"Tumbling size 0", windowed(kstream.Tumbling(0, 0)), []string{"COUNT", "Tumbling", "size"}},
		{"Tumbling size < 0", windowed(kstream.Tumbling(-time.Second, 0)), []string{"COUNT", "Tumbling", "size"}},
		{"Tumbling grace < 0", windowed(kstream.Tumbling(time.Second, -time.Second)), []string{"COUNT", "Tumbling", "grace"}},
		{"Tumbling grace -1µs", windowed(kstream.Tumbling(time.Second, -time.Microsecond)), []string{"COUNT", "Tumbling", "grace"}},
		{"Tumbling valid", windowed(kstream.Tumbling(time.Second, 0)), nil},
		{"Hopping advance 0", windowed(kstream.Hopping(time.Second, 0, 0)), []string{"COUNT", "Hopping", "advance"}},
		{"Hopping advance < 0", windowed(kstream.Hopping(time.Second, -time.Millisecond, 0)), []string{"COUNT", "Hopping", "advance"}},
		{"Hopping grace < 0", windowed(kstream.Hopping(time.Second, time.Millisecond, -time.Millisecond)), []string{"COUNT", "Hopping", "grace"}},
		{"Sliding difference 0", windowed(kstream.Sliding(0, 0)), []string{"COUNT", "Sliding", "difference"}},
		{"Sliding difference < 0", windowed(kstream.Sliding(-time.Second, 0)), []string{"COUNT", "Sliding", "difference"}},
		{"Sliding grace < 0", windowed(kstream.Sliding(time.Second, -time.Nanosecond)), []string{"COUNT", "Sliding", "grace"}},
		{"Session gap 0", windowed(kstream.Session(0, 0)), []string{"COUNT", "Session", "gap"}},
		{"Session gap < 0", windowed(kstream.Session(-time.Second, 0)), []string{"COUNT", "Session", "gap"}},
		{"Session grace < 0", windowed(kstream.Session(time.Second, -time.Second)), []string{"COUNT", "Session", "grace"}},
		{"Join difference 0", joined(kstream.JoinTimeDifference(0, 0)), []string{"JOIN", "before", "after"}},
		{"Join difference < 0", joined(kstream.JoinTimeDifference(-time.Second, 0)), []string{"JOIN", "before"}},
		{"Join grace < 0", joined(kstream.JoinTimeDifference(time.Second, -time.Microsecond)), []string{"JOIN", "grace"}},
		{"Join before < 0", joined(kstream.JoinTimeDifference(time.Second, 0).Before(-time.Second)), []string{"JOIN", "before"}},
		{"Join valid", joined(kstream.JoinTimeDifference(time.Second, 0)), nil},
		{"Versioned 0", tableJoin(0, 0), []string{"Versioned"}},
		{"Versioned < 0", tableJoin(-time.Minute, 0), []string{"Versioned"}},
		{"JoinGrace < 0", tableJoin(time.Minute, -time.Second), []string{"JoinGrace"}},
		{"JoinGrace > history", tableJoin(time.Minute, time.Hour), []string{"JoinGrace"}},
		{"JoinGrace valid", tableJoin(time.Minute, time.Second), nil},
		{"CloseWindowsWhenIdle < 0", idle(-time.Second), []string{"CloseWindowsWhenIdle"}},
		{"CloseWindowsWhenIdle valid", idle(time.Second), nil},
		{"SuppressUntilTimeLimit < 0", suppressed(-time.Second), []string{"SuppressUntilTimeLimit"}},
		{"SuppressUntilTimeLimit -1µs", suppressed(-time.Microsecond), []string{"SuppressUntilTimeLimit"}},
		{"SuppressUntilTimeLimit 0", suppressed(0), nil},
	} {
		b := kstream.NewBuilder()
		tc.add(b)
		_, err := b.Build()
		if tc.wants == nil {
			if err != nil {
				t.Errorf("%s: Build returned %v", tc.name, err)
			}
			continue
		}
		if !errors.Is(err, kstream.ErrTopology) {
			t.Errorf("%s: Build returned %v, want an error wrapping ErrTopology", tc.name, err)
			continue
		}
		for _, w := range tc.wants {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: Build error %q does not name %q", tc.name, err, w)
			}
		}
	}
}

// An application id must make legal Kafka topic names of every internal
// topic: New rejects other characters, and an id so long that a derived
// topic name passes Kafka's 249 characters, naming the id and the rule.
func TestNewRejectsIllegalApplicationIDs(t *testing.T) {
	store := "counts"
	topo := limitsTopology(t, store)
	changelogSuffix := len("-" + store + "-changelog")
	for _, tc := range []struct {
		id    string
		wants []string // nil when valid
	}{
		{"orders app", []string{`"orders app"`, "[a-zA-Z0-9._-]"}},
		{"orders/app", []string{`"orders/app"`, "[a-zA-Z0-9._-]"}},
		{"orders:app", []string{`"orders:app"`, "[a-zA-Z0-9._-]"}},
		{"ordres-é", []string{`"ordres-é"`, "[a-zA-Z0-9._-]"}},
		{"orders\napp", []string{"[a-zA-Z0-9._-]"}},
		{"Orders_app-1.2", nil},
		{strings.Repeat("a", 249-changelogSuffix), nil},
		{strings.Repeat("a", 250-changelogSuffix), []string{"249", store + "-changelog"}},
		{strings.Repeat("a", 300), []string{"249"}},
	} {
		_, err := kstream.New(topo, kstream.ApplicationID(tc.id), kstream.Brokers("127.0.0.1:1"))
		if tc.wants == nil {
			if err != nil {
				t.Errorf("ApplicationID(%q): New returned %v", tc.id, err)
			}
			continue
		}
		if !errors.Is(err, kstream.ErrConfig) {
			t.Errorf("ApplicationID(%.20q...): New returned %v, want an error wrapping ErrConfig", tc.id, err)
			continue
		}
		for _, w := range append(tc.wants, "ApplicationID") {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("ApplicationID(%.20q...): New error %q does not name %q", tc.id, err, w)
			}
		}
	}
}
