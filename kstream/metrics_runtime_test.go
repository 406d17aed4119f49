package kstream

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamwork-go/streamwork/serde"
)

// thrashBound is the documented bound of pause-resume cycles within
// RateWindow past which a partition is thrashing.
const thrashBound = 10

// thrashLogs is a slog handler that keeps the partition of every
// thrashing warning, and passes everything to next.
type thrashLogs struct {
	next  slog.Handler
	mu    *sync.Mutex
	warns *[]int64 // the partition attribute of each warning
}

func (h thrashLogs) Enabled(ctx context.Context, l slog.Level) bool {
	return h.next.Enabled(ctx, l) || l >= slog.LevelWarn
}
func (h thrashLogs) WithAttrs(as []slog.Attr) slog.Handler {
	h.next = h.next.WithAttrs(as)
	return h
}
func (h thrashLogs) WithGroup(g string) slog.Handler {
	h.next = h.next.WithGroup(g)
	return h
}
func (h thrashLogs) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn && strings.Contains(r.Message, "thrashing") {
		p := int64(-1)
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "partition" {
				p = a.Value.Int64()
			}
			return true
		})
		h.mu.Lock()
		*h.warns = append(*h.warns, p)
		h.mu.Unlock()
	}
	if h.next.Enabled(ctx, r.Level) {
		return h.next.Handle(ctx, r)
	}
	return nil
}

func (h thrashLogs) partitions() []int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]int64(nil), *h.warns...)
}

// With a buffer of one record per partition, every fetch that brings
// records pauses its partition and processing it resumes it. Partition 0
// gets one record at a time, each fetched on its own: exactly one pause per
// record. It is not thrashing after 10 pauses (the bound), is after the
// 11th, and the warning is logged once for the whole episode however many
// pauses follow; once fewer than 11 pauses are left within RateWindow the
// episode ends, and the next one logs again. Partition 1, whose records all came in one
// fetch, paused once and is never flagged.
func TestAppThrashingPartitionFlaggedAndLoggedOncePerEpisode(t *testing.T) {
	brokers := rtCluster(t, map[string]int32{"in": 2})
	const steady = 5
	var recs []*kgo.Record
	for i := range steady {
		recs = append(recs, &kgo.Record{Topic: "in", Partition: 1, Key: []byte("s"), Value: []byte{byte('a' + i)}})
	}
	rtProduce(t, brokers, recs)

	b := NewBuilder()
	From(b, "in", serde.String, serde.String).Foreach(func(string, string) {})
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	logs := thrashLogs{next: rtLogger(t).Handler(), mu: new(sync.Mutex), warns: new([]int64)}
	app, err := New(topo, rtOpts(t, brokers, "thrashing", BufferedRecordsPerPartition(1), Logger(slog.New(logs)))...)
	if err != nil {
		t.Fatal(err)
	}
	rtRun(t, app)

	partition := func(m Metrics, p int32) PartitionMetrics {
		for _, pm := range m.Partitions {
			if pm.Topic == "in" && pm.Partition == p {
				return pm
			}
		}
		return PartitionMetrics{Partition: -1}
	}
	rtWaitFor(t, "the steady partition processed", func() bool {
		m := app.Metrics()
		return m.RecordsProcessed == steady && partition(m, 0).Partition == 0 && !partition(m, 1).Paused
	})

	processed, pauses := int64(steady), int64(0)
	// round produces one record to partition 0 and waits until it was
	// fetched (a pause), processed and the partition resumed.
	round := func() PartitionMetrics {
		t.Helper()
		rtProduce(t, brokers, []*kgo.Record{{Topic: "in", Partition: 0, Key: []byte("t"), Value: []byte("x")}})
		processed++
		pauses++
		var pm PartitionMetrics
		rtWaitFor(t, "the record processed", func() bool {
			m := app.Metrics()
			pm = partition(m, 0)
			return m.RecordsProcessed == processed && pm.Pauses == pauses && !pm.Paused
		})
		return pm
	}
	// afterwards checks the thrashing pauses that follow the one that
	// started an episode: still flagged, still one warning per episode, and
	// the steady partition untouched.
	afterwards := func(episode int) {
		t.Helper()
		for range 5 {
			if pm := round(); !pm.Thrashing {
				t.Fatalf("episode %d: partition 0 not thrashing at %d pauses", episode, pm.Pauses)
			}
		}
		want := make([]int64, episode) // partition 0, once per episode
		if got := logs.partitions(); !slices.Equal(got, want) {
			t.Fatalf("episode %d: thrashing warnings for partitions %v, want %v", episode, got, want)
		}
		if p1 := partition(app.Metrics(), 1); p1.Thrashing || p1.Pauses != 1 || p1.Paused {
			t.Fatalf("steady partition: %+v, want one pause, not paused, not thrashing", p1)
		}
	}

	// Episode 1: the rounds take well under RateWindow, so the 11th pause
	// and not one before it makes the partition thrash.
	for i := range thrashBound {
		if pm := round(); pm.Thrashing {
			t.Fatalf("thrashing after %d pauses within the window, want not before %d", i+1, thrashBound+1)
		}
	}
	if got := logs.partitions(); len(got) != 0 {
		t.Fatalf("thrashing warnings for partitions %v before the bound was passed", got)
	}
	if pm := round(); !pm.Thrashing {
		t.Fatalf("not thrashing after %d pauses within the window", pm.Pauses)
	}
	afterwards(1)

	// The episode ends when fewer than bound+1 pauses are left within
	// RateWindow. Episode 2 starts once every pause of episode 1 has left
	// the window (otherwise its count would mix fresh pauses with old ones
	// expiring, and a slow machine could end and restart it), and then, as
	// episode 1 did, at exactly its 11th pause.
	last := time.Now() // after the last pause of episode 1
	rtWaitFor(t, "the thrashing episode to end", func() bool { return !partition(app.Metrics(), 0).Thrashing })
	rtWaitFor(t, "episode 1's pauses to leave the window", func() bool { return time.Since(last) > RateWindow })
	for i := range thrashBound {
		if pm := round(); pm.Thrashing {
			t.Fatalf("episode 2: thrashing after %d pauses within the window, want not before %d", i+1, thrashBound+1)
		}
	}
	if pm := round(); !pm.Thrashing {
		t.Fatalf("episode 2: not thrashing after %d fresh pauses within the window", thrashBound+1)
	}
	afterwards(2)
}
