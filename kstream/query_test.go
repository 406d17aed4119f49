package kstream

import (
	"errors"
	"fmt"
	"iter"
	"maps"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamwork-go/streamwork/kstream/internal/engine"
	"github.com/streamwork-go/streamwork/kstream/internal/runtime"
	"github.com/streamwork-go/streamwork/serde"
	"github.com/streamwork-go/streamwork/state"
	"github.com/streamwork-go/streamwork/state/memory"
)

// QueryStore answers Get for keys of both tasks of a 2-partition topic
// (routed by the key's murmur2 partition) and All over both, exactly.
func TestQueryStoreAcrossTwoTasks(t *testing.T) {
	brokers := rtCluster(t, map[string]int32{"in": 2, "out": 2})
	want := map[string]int64{}
	var recs []*kgo.Record
	parts := map[int32]bool{}
	for i := range 40 {
		k := fmt.Sprintf("key-%d", i%13)
		want[k]++
		// Partitioned by key, as a Java or kgo producer does.
		recs = append(recs, &kgo.Record{Topic: "in", Partition: -1, Key: []byte(k), Value: []byte("x")})
		parts[runtime.PartitionOf([]byte(k), 2)] = true
	}
	if len(parts) != 2 {
		t.Fatal("the keys do not cover both partitions")
	}
	rtProduce(t, brokers, recs)
	app, err := New(countTopology(t), stOpts(t, brokers, "query", t.TempDir())...)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := QueryStore(app, "nope", serde.String, serde.Int64); !errors.Is(err, ErrUnknownStore) {
		t.Fatalf("unknown store: %v", err)
	}
	kv, err := QueryStore(app, "counts", serde.String, serde.Int64)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := kv.Get("key-1"); ok || err != nil {
		t.Fatalf("Get before Run = %v, %v", ok, err)
	}
	stop := rtRun(t, app)
	stWaitProcessed(t, app, 40)
	if n := len(app.Metrics().Tasks); n != 2 {
		t.Fatalf("%d tasks, want 2", n)
	}
	for k, n := range want {
		got, ok, err := kv.Get(k)
		if err != nil || !ok || got != n {
			t.Fatalf("Get(%s) = %d, %v, %v; want %d", k, got, ok, err, n)
		}
	}
	if _, ok, err := kv.Get("absent"); ok || err != nil {
		t.Fatalf("Get(absent) = %v, %v", ok, err)
	}
	got := map[string]int64{}
	for k, v := range kv.All() {
		if _, dup := got[k]; dup {
			t.Fatalf("All returned %s twice", k)
		}
		got[k] = v
	}
	if !maps.Equal(got, want) {
		t.Fatalf("All = %v\nwant %v", got, want)
	}
	n := 0
	for range kv.Range("key-1", "key-2") { // key-1, key-10, key-11, key-12
		n++
	}
	if n != 4 {
		t.Fatalf("Range found %d keys, want 4", n)
	}
	if c := kv.ApproximateCount(); c < 13 {
		t.Fatalf("ApproximateCount = %d", c)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	// The App stopped: nothing is local any more.
	if _, ok, err := kv.Get("key-1"); ok || err != nil {
		t.Fatalf("Get after Run = %v, %v", ok, err)
	}
}

// Queries run concurrently with a writer and with registration changes
// (the race detector checks the locking); a scan whose store closes under
// it ends with ErrStoreNotAvailable.
func TestQueryRegistryConcurrentWithProcessing(t *testing.T) {
	var q runtime.Queries
	topo := countTopology(t)
	q.SetPartitions(topo.t, map[int]int32{0: 1})
	st := memory.New("counts")
	tk := &task{ID: TaskID{Subtopology: 0, Partition: 0}, StateStores: []*engine.TaskStore{{Spec: topo.t.Stores["counts"], Top: st}}}
	q.Register(tk)
	view := &storeView[string, int64]{q: &q, name: "counts", ks: serde.String, vs: serde.Int64}
	kv := state.Typed(st, serde.String, serde.Int64)
	for i := range 100 {
		if err := kv.Put(fmt.Sprint(i), int64(i)); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	stopc := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stopc:
					return
				default:
				}
				_, _, err := view.Get(fmt.Sprint(rand.IntN(100)))
				if err != nil {
					t.Error(err)
					return
				}
				seq, errf := view.AllErr()
				for range seq {
				}
				if err := errf(); err != nil && !errors.Is(err, ErrStoreNotAvailable) {
					t.Error(err)
					return
				}
			}
		})
	}
	for i := range 2000 {
		if err := kv.Put(fmt.Sprint(i%100), int64(i)); err != nil {
			t.Fatal(err)
		}
		if i%200 == 0 {
			q.Deregister(tk)
			q.Register(tk)
		}
	}
	// A scan open when the store closes.
	seq, errf := view.AllErr()
	next, stopIter := iter.Pull2(seq)
	next()
	q.Deregister(tk)
	_ = st.Close()
	for {
		if _, _, ok := next(); !ok {
			break
		}
	}
	stopIter()
	close(stopc)
	wg.Wait()
	if err := errf(); !errors.Is(err, ErrStoreNotAvailable) {
		t.Fatalf("scan over a closed store: %v, want ErrStoreNotAvailable", err)
	}
}
