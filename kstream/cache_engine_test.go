package kstream

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamwork-go/streamwork/kstream/internal/engine"
	"github.com/streamwork-go/streamwork/serde"
	"github.com/streamwork-go/streamwork/state"
)

// cachedCounter is a DSL-style node over a cached store: it counts per key
// and forwards "<key>=<count>" itself when there is no cache, or what the
// cache flushes ("<key>=<new>(<old>)") when there is.
type cachedCounter struct {
	t      *task
	name   string
	kv     *state.KeyValue[string, int64]
	cached bool
	down   downstream[string, string]
}

func (c *cachedCounter) Init(t *task, n *node, children []nodeInstance) error {
	c.t, c.name = t, n.Name
	c.kv = state.Typed(t.Store("agg"), serde.String, serde.Int64)
	c.cached = t.OnFlush("agg", true, func(key, newB, oldB []byte, ts int64) {
		if t.CurNode != c.name || t.CurTs != ts {
			t.Fail(c.name, ProcessingErrorKind, fmt.Errorf("listener called as node %q at %d", t.CurNode, t.CurTs))
			return
		}
		nv, _ := serde.Int64.Deserialize("", newB)
		old := "-"
		if oldB != nil {
			o, _ := serde.Int64.Deserialize("", oldB)
			old = fmt.Sprint(o)
		}
		c.down.Forward(Record[string, string]{Key: string(key), Value: fmt.Sprintf("%d(%s)", nv, old), Timestamp: time.UnixMilli(ts)})
	})
	return c.down.Wire(t, n, children)
}

func (c *cachedCounter) Close() error { return nil }

func (c *cachedCounter) Receive(r Record[string, string]) {
	n, _, err := c.kv.Get(r.Key)
	if err == nil {
		err = c.kv.Put(r.Key, n+1)
	}
	if err != nil {
		c.t.Fail(c.name, ProcessingErrorKind, err)
		return
	}
	if !c.cached {
		c.down.Forward(Record[string, string]{Key: r.Key, Value: fmt.Sprintf("%d", n+1), Timestamp: r.Timestamp})
	}
}

// cachedTopology: in -> cachedCounter (store "agg", cached, changelogged)
// -> out. The store is wired the way the DSL does it: addStore and
// connectStore.
func cachedTopology(t testing.TB) *Topology {
	t.Helper()
	b := NewBuilder()
	in := From(b, "in", serde.String, serde.String)
	n := b.addNode("COUNT", "count", engine.KindProcessor, []*node{in.n}, func() nodeInstance { return &cachedCounter{} })
	b.addStore(&storeSpec{Name: "agg", Changelog: true, Cached: true})
	b.connectStore(n, "agg")
	Stream[string, string]{b: b, n: n}.To("out", serde.String, serde.String)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

func outValues(recs []*kgo.Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = string(r.Key) + "=" + string(r.Value)
	}
	return out
}

// With a cache, the updates of a key between two commits reach downstream
// and the changelog once, merged, with the old value the store had; with
// CacheMaxBytes(0) every update does.
func TestCacheMergesUpdatesBetweenCommits(t *testing.T) {
	// Fresh records each time: kgo keeps the produce context in them.
	input := func() []*kgo.Record {
		return []*kgo.Record{
			stRecord("a", "", 0, 1), stRecord("a", "", 0, 2), stRecord("b", "", 0, 3),
			stRecord("a", "", 0, 4), stRecord("c", "", 0, 5), stRecord("b", "", 0, 6),
		}
	}
	for _, tc := range []struct {
		name      string
		cache     int64
		out       []string
		changelog int64
	}{
		// Flushed at the shutdown commit in least-recently-written order:
		// a (last written 4th), c, b.
		{"cached", DefaultCacheMaxBytes, []string{"a=3(-)", "c=1(-)", "b=2(-)"}, 3},
		{"uncached", 0, []string{"a=1", "a=2", "b=1", "a=3", "c=1", "b=2"}, 6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			brokers := rtCluster(t, map[string]int32{"in": 1, "out": 1})
			rtProduce(t, brokers, input())
			app, err := New(cachedTopology(t), stOpts(t, brokers, "cache", t.TempDir(),
				CacheMaxBytes(tc.cache), CommitInterval(time.Hour))...)
			if err != nil {
				t.Fatal(err)
			}
			stop := rtRun(t, app)
			stWaitProcessed(t, app, 6)
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			if got := outValues(stReadAll(t, brokers, "out")); !slices.Equal(got, tc.out) {
				t.Fatalf("out = %v, want %v", got, tc.out)
			}
			if n := rtEndOffsets(t, brokers, "cache-agg-changelog"); n != tc.changelog {
				t.Fatalf("changelog has %d records, want %d", n, tc.changelog)
			}
		})
	}
	// A second run continues from the restored store: the old values are
	// what the store held.
	t.Run("old values", func(t *testing.T) {
		brokers := rtCluster(t, map[string]int32{"in": 1, "out": 1})
		rtProduce(t, brokers, input()[:3])
		dir := t.TempDir()
		run := func(n int64) {
			app, err := New(cachedTopology(t), stOpts(t, brokers, "cache", dir, CommitInterval(time.Hour))...)
			if err != nil {
				t.Fatal(err)
			}
			stop := rtRun(t, app)
			stWaitProcessed(t, app, n)
			if err := stop(); err != nil {
				t.Fatal(err)
			}
		}
		run(3)
		rtProduce(t, brokers, input()[3:])
		run(3)
		want := []string{"a=2(-)", "b=1(-)", "a=3(2)", "c=1(-)", "b=2(1)"}
		if got := outValues(stReadAll(t, brokers, "out")); !slices.Equal(got, want) {
			t.Fatalf("out = %v, want %v", got, want)
		}
	})
}

// The test driver flushes after every record: one output per input.
func TestDriverFlushesCacheAfterEveryRecord(t *testing.T) {
	d, err := newTestDriver(cachedTopology(t), time.UnixMilli(0), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for i, k := range []string{"a", "a", "b"} {
		if err := d.Pipe(&kgo.Record{Topic: "in", Key: []byte(k), Value: []byte{}, Timestamp: time.UnixMilli(int64(i))}); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := outValues(d.TakeOutput("out")), []string{"a=1(-)", "a=2(1)", "b=1(-)"}; !slices.Equal(got, want) {
		t.Fatalf("out = %v, want %v", got, want)
	}
	if n := len(d.TakeOutput("kstreamtest-agg-changelog")); n != 3 {
		t.Fatalf("changelog got %d records, want 3", n)
	}
}
