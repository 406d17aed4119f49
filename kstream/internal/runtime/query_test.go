package runtime

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/streamwork-go/streamwork/kstream/internal/engine"
	"github.com/streamwork-go/streamwork/state/memory"
)

// javaMurmur2 is Kafka's Utils.murmur2, transcribed from the Java client.
func javaMurmur2(data []byte) uint32 {
	const seed, m, r = uint32(0x9747b28c), uint32(0x5bd1e995), 24
	n := len(data)
	h := seed ^ uint32(n)
	for i := 0; i+4 <= n; i += 4 {
		k := uint32(data[i]) | uint32(data[i+1])<<8 | uint32(data[i+2])<<16 | uint32(data[i+3])<<24
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
	}
	tail := data[n&^3:]
	switch len(tail) {
	case 3:
		h ^= uint32(tail[2]) << 16
		fallthrough
	case 2:
		h ^= uint32(tail[1]) << 8
		fallthrough
	case 1:
		h ^= uint32(tail[0])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return h
}

// PartitionOf is the Java producer's key partitioning:
// toPositive(murmur2(key)) % partitions.
func TestPartitionOfMatchesJavaProducer(t *testing.T) {
	for i := range 1000 {
		k := fmt.Appendf(nil, "key-%d", i)
		for _, n := range []int32{1, 2, 3, 7, 12} {
			want := int32(javaMurmur2(k)&0x7fffffff) % n
			if got := PartitionOf(k, n); got != want {
				t.Fatalf("PartitionOf(%s, %d) = %d, Java gives %d", k, n, got, want)
			}
		}
	}
}

// A standby's stores are read only by GetStandby, with the lag its worker
// stores, and not after the standby is deregistered; ownership-checked
// reads and a task registered as active never see a standby's store.
func TestQueryRegistryKeepsStandbysApart(t *testing.T) {
	var q queryRegistry
	spec := &engine.StoreSpec{Name: "counts", Changelog: true}
	sbStore, activeStore := memory.New("counts"), memory.New("counts")
	if err := sbStore.Put([]byte("k"), []byte("standby")); err != nil {
		t.Fatal(err)
	}
	if err := activeStore.Put([]byte("k"), []byte("active")); err != nil {
		t.Fatal(err)
	}
	sb := &task{ID: engine.TaskID{Partition: 1}, StateStores: []*taskStore{
		{Spec: spec, Engine: sbStore, Logged: &engine.ChangelogStore{}, Top: sbStore},
		// Not changelogged: a standby holds nothing of it.
		{Spec: &engine.StoreSpec{Name: "scratch"}, Engine: memory.New("scratch"), Top: memory.New("scratch")},
	}}
	lag := new(atomic.Int64)
	lag.Store(7)
	q.RegisterStandby(sb, lag)
	if _, owned, _ := q.GetOwned("counts", 1, []byte("k")); owned {
		t.Fatal("GetOwned read a standby's store")
	}
	if v, l, held, err := q.GetStandby("counts", 1, []byte("k")); string(v) != "standby" || l != 7 || !held || err != nil {
		t.Fatalf("GetStandby = %q, %d, %v, %v; want standby, 7, true", v, l, held, err)
	}
	if _, _, held, _ := q.GetStandby("scratch", 1, []byte("k")); held {
		t.Fatal("a store without changelog is readable from a standby")
	}
	if _, _, held, _ := q.GetStandby("counts", 0, []byte("k")); held {
		t.Fatal("GetStandby of a partition no standby holds")
	}
	lag.Store(0)
	if _, l, _, _ := q.GetStandby("counts", 1, []byte("k")); l != 0 {
		t.Fatalf("lag %d after the worker stored 0", l)
	}
	// The standby becomes active here: deregistered, then the task opened
	// again and registered as active.
	q.DeregisterStandby(sb)
	if _, _, held, _ := q.GetStandby("counts", 1, []byte("k")); held {
		t.Fatal("GetStandby read a deregistered standby")
	}
	active := &task{ID: engine.TaskID{Partition: 1}, StateStores: []*taskStore{{Spec: spec, Engine: activeStore, Logged: &engine.ChangelogStore{}, Top: activeStore}}}
	q.Register(active)
	if v, owned, err := q.GetOwned("counts", 1, []byte("k")); string(v) != "active" || !owned || err != nil {
		t.Fatalf("GetOwned = %q, %v, %v; want active", v, owned, err)
	}
	if _, _, held, _ := q.GetStandby("counts", 1, []byte("k")); held {
		t.Fatal("GetStandby read an active task's store")
	}
	// Deregistering a standby that is no longer registered leaves a newer
	// standby registration of the partition alone.
	sb2 := &task{ID: engine.TaskID{Partition: 1}, StateStores: []*taskStore{{Spec: spec, Engine: memory.New("counts"), Logged: &engine.ChangelogStore{}}}}
	q.RegisterStandby(sb2, lag)
	q.DeregisterStandby(sb)
	if _, _, held, _ := q.GetStandby("counts", 1, []byte("k")); !held {
		t.Fatal("deregistering an old standby removed the new one")
	}
}
