package kstream_test

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/streamwork-go/streamwork/kstream"
	"github.com/streamwork-go/streamwork/kstream/kstreamtest"
	"github.com/streamwork-go/streamwork/serde"
)

// shedInputs reads "a" and "b" with a load-shedding policy into "out". With
// MaxTaskIdle the test driver keeps the records piped into "a" queued while
// "b" is empty, until the wall clock passes the wait: then the task takes
// them all, the first with a lag (and queue) of all of them.
func shedInputs(p kstream.ShedPolicy) *kstream.Builder {
	b := kstream.NewBuilder()
	kstream.FromTopics(b, []string{"a", "b"}, serde.String, serde.String, kstream.Named("src"), kstream.ShedLoad(p)).
		To("out", serde.String, serde.String)
	return b
}

// pipeQueued pipes v0..v(n-1) into "a" (offsets 0..n-1) with a header, and
// lets the idle wait end.
func pipeQueued(t *testing.T, d *kstreamtest.Driver, n int) {
	t.Helper()
	a := kstreamtest.Input(d, "a", serde.String, serde.String)
	for i := range n {
		r := kstream.Record[string, string]{Key: "k", Value: "v" + string(rune('0'+i)), Timestamp: ts(int64(100 + i)),
			Headers: []kstream.Header{{Key: "h", Value: []byte("x")}}}
		if err := a.PipeRecord(r); err != nil {
			t.Fatal(err)
		}
	}
	if got := values(t, d); len(got) != 0 {
		t.Fatalf("before the idle wait ended: %v", got)
	}
	if err := d.AdvanceWallClock(time.Second); err != nil {
		t.Fatal(err)
	}
}

func TestShedLoad(t *testing.T) {
	for _, c := range []struct {
		name   string
		policy kstream.ShedPolicy
		want   []string // processed
		reason string
	}{
		// lag = 10 - offset: offsets 0..5 have lag 10..5 > 4.
		{"lag", kstream.ShedPolicy{MaxLag: 4, To: "shed"}, []string{"v6", "v7", "v8", "v9"}, "lag"},
		// the queue holds 10 - offset records: offsets 0..6 have more than 3.
		{"buffered", kstream.ShedPolicy{MaxBuffered: 3, To: "shed"}, []string{"v7", "v8", "v9"}, "buffered"},
		// the lag bound is checked first.
		{"both", kstream.ShedPolicy{MaxLag: 8, MaxBuffered: 5, To: "shed"}, []string{"v5", "v6", "v7", "v8", "v9"}, ""},
		{"unbounded", kstream.ShedPolicy{To: "shed"}, []string{"v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8", "v9"}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := mustDriver(t, shedInputs(c.policy), kstream.MaxTaskIdle(time.Second))
			pipeQueued(t, d, 10)
			equal(t, "processed", values(t, d), c.want)
			shed := 10 - len(c.want)
			m := d.Metrics()
			if m.Shed != int64(shed) || m.RecordsProcessed != int64(len(c.want)) {
				t.Errorf("Shed = %d, RecordsProcessed = %d; want %d, %d", m.Shed, m.RecordsProcessed, shed, len(c.want))
			}
			got := d.TakeRaw("shed")
			if len(got) != shed {
				t.Fatalf("shed topic has %d records, want %d", len(got), shed)
			}
			for i, r := range got {
				reason := c.reason
				if reason == "" { // "both": offsets 0 and 1 for lag, 2..4 for the queue
					reason = "lag"
					if i >= 2 {
						reason = "buffered"
					}
				}
				wantHs := []kstream.Header{{Key: "h", Value: []byte("x")},
					{Key: kstream.HeaderShedReason, Value: []byte(reason)},
					{Key: kstream.HeaderShedTopic, Value: []byte("a")},
					{Key: kstream.HeaderShedPartition, Value: []byte("0")},
					{Key: kstream.HeaderShedOffset, Value: []byte(string(rune('0' + i)))}}
				equal(t, "key", string(r.Key), "k")
				equal(t, "value", string(r.Value), "v"+string(rune('0'+i)))
				equal(t, "timestamp", r.Timestamp.UnixMilli(), int64(100+i))
				equal(t, "headers", r.Headers, wantHs)
			}
		})
	}
}

// Without To nothing is written; the drops are counted and logged in a
// summary: the first at once, the rest when ShedLogInterval has passed.
func TestShedLoadLogsSummaries(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	d := mustDriver(t, shedInputs(kstream.ShedPolicy{MaxBuffered: 3}), kstream.MaxTaskIdle(time.Second), kstream.Logger(logger))
	pipeQueued(t, d, 10)
	equal(t, "processed", values(t, d), []string{"v7", "v8", "v9"})
	if err := d.AdvanceWallClock(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	if err := d.AdvanceWallClock(5 * time.Second); err != nil { // nothing new: no line
		t.Fatal(err)
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if strings.Contains(l, "load shedding") {
			_, rest, _ := strings.Cut(l, "source=")
			lines = append(lines, rest)
		}
	}
	equal(t, "log lines", lines, []string{
		"src dropped=1 lag=0 buffered=1 total=1",
		"src dropped=6 lag=0 buffered=6 total=7",
	})
	if m := d.Metrics(); m.Shed != 7 {
		t.Errorf("Shed = %d, want 7", m.Shed)
	}
}

func TestShedLoadValidation(t *testing.T) {
	for _, c := range []struct {
		name string
		add  func(b *kstream.Builder)
		want error
	}{
		{"negative lag", func(b *kstream.Builder) {
			kstream.From(b, "a", serde.String, serde.String, kstream.ShedLoad(kstream.ShedPolicy{MaxLag: -1})).To("out", serde.String, serde.String)
		}, kstream.ErrTopology},
		{"negative buffered", func(b *kstream.Builder) {
			kstream.From(b, "a", serde.String, serde.String, kstream.ShedLoad(kstream.ShedPolicy{MaxBuffered: -1})).To("out", serde.String, serde.String)
		}, kstream.ErrTopology},
		{"illegal topic", func(b *kstream.Builder) {
			kstream.From(b, "a", serde.String, serde.String, kstream.ShedLoad(kstream.ShedPolicy{MaxLag: 1, To: "no/such"})).To("out", serde.String, serde.String)
		}, kstream.ErrTopology},
		{"not a source", func(b *kstream.Builder) {
			kstream.From(b, "a", serde.String, serde.String).
				Filter(func(string, string) bool { return true }, kstream.ShedLoad(kstream.ShedPolicy{MaxLag: 1})).
				To("out", serde.String, serde.String)
		}, kstream.ErrOptionNotApplicable},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := kstream.NewBuilder()
			c.add(b)
			if _, err := b.Build(); !errors.Is(err, c.want) {
				t.Fatalf("Build: %v, want %v", err, c.want)
			}
		})
	}
}
