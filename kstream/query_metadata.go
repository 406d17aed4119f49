package kstream

import (
	"fmt"
	"slices"

	"github.com/streamwork-go/streamwork/kstream/internal/runtime"
	"github.com/streamwork-go/streamwork/kstream/internal/wire"
	"github.com/streamwork-go/streamwork/serde"
)

// KeyQueryMetadata says where a key of a store lives in the group: the
// query address of the instance whose task holds it as active, those of
// the instances that keep a standby replica of that task, and the task
// (whose partition is the key's). Kafka Streams' KeyQueryMetadata.
type KeyQueryMetadata struct {
	// Active is the QueryAddr of the instance running the key's task.
	Active string
	// Standby are the QueryAddrs of the instances holding a standby
	// replica of the task, sorted; empty without standby replicas.
	Standby []string
	// Task is the task that owns the key; Task.Partition is the key's
	// partition.
	Task TaskID
}

// StoreHost is one instance that holds tasks of a store: its query
// address and the partitions of the store it runs as active and keeps as
// standby, sorted.
type StoreHost struct {
	Addr    string
	Active  []int32
	Standby []int32
}

// QueryMetadataForKey returns where key of store lives (see
// KeyQueryMetadata): the key is serialized with ks (the store's key serde)
// and mapped to its partition as Kafka partitions it (murmur2), which
// names its task; the task's hosts come from the group's latest
// assignment. It needs QueryAddr on every instance.
//
// While the group rebalances (a worker of this instance gave up partitions
// and waits for its next assignment), before the first assignment, and
// while the key's task moves between instances (it is on no instance for
// that moment), it returns an error wrapping ErrRebalancing: retry. The
// answer may be outdated as soon as it is returned; the QueryHandler
// checks ownership on the instance that reads. An unknown store is an
// error wrapping ErrUnknownStore. A global table's store is whole on every
// instance: its Active is this instance's address.
func QueryMetadataForKey[K any](a *App, store string, key K, ks serde.Serde[K]) (KeyQueryMetadata, error) {
	if a == nil || ks == nil {
		return KeyQueryMetadata{}, fmt.Errorf("%w: QueryMetadataForKey needs an App and a key serde", ErrConfig)
	}
	kb, err := ks.Serialize(store, key)
	if err != nil {
		return KeyQueryMetadata{}, fmt.Errorf("kstream: query metadata of store %q: encode key: %w", store, err)
	}
	return a.keyMetadata(store, kb)
}

// keyMetadata is QueryMetadataForKey for a serialized key.
func (a *App) keyMetadata(store string, kb []byte) (KeyQueryMetadata, error) {
	md, err := a.keyHosts(store, kb)
	if err == nil && md.Active == "" {
		err = fmt.Errorf("%w: store %q partition %d has no active host now", ErrRebalancing, store, md.Task.Partition)
	}
	if err != nil {
		return KeyQueryMetadata{}, err
	}
	return md, nil
}

// keyHosts is keyMetadata, but md.Active is "" (and no error) when no
// instance runs the key's task now; its standbys may still be known.
func (a *App) keyHosts(store string, kb []byte) (KeyQueryMetadata, error) {
	if a.isGlobalStore(store) {
		return KeyQueryMetadata{Active: a.rt.Config().QueryAddr, Task: TaskID{Subtopology: -1, Partition: -1}}, nil
	}
	sub, n, err := a.storeTasks(store)
	if err != nil {
		return KeyQueryMetadata{}, err
	}
	if kb == nil {
		kb = []byte{}
	}
	task := wire.Task{Sub: int32(sub), Partition: runtime.PartitionOf(kb, n)}
	hosts, err := a.rt.QueryHosts()
	if err != nil {
		return KeyQueryMetadata{}, fmt.Errorf("store %q partition %d: %w", store, task.Partition, err)
	}
	return routeKey(hosts, task), nil
}

// routeKey finds task in hosts; Active is "" when no host runs it.
func routeKey(hosts []wire.HostTasks, task wire.Task) KeyQueryMetadata {
	md := KeyQueryMetadata{Task: TaskID{Subtopology: int(task.Sub), Partition: task.Partition}}
	for _, h := range hosts {
		if slices.Contains(h.Active, task) && md.Active == "" {
			md.Active = h.Addr
		}
		if slices.Contains(h.Standby, task) {
			md.Standby = append(md.Standby, h.Addr)
		}
	}
	slices.Sort(md.Standby)
	return md
}

// StoreHosts returns the instances that hold tasks of store, sorted by
// address (Kafka Streams' streamsMetadataForStore): for each, the
// partitions of the store it runs as active and keeps as standby. Only
// instances with a QueryAddr are listed. Errors as QueryMetadataForKey's;
// a global table's store is on every instance and is not listed.
func (a *App) StoreHosts(store string) ([]StoreHost, error) {
	sub, _, err := a.storeTasks(store)
	if err != nil {
		return nil, err
	}
	hosts, err := a.rt.QueryHosts()
	if err != nil {
		return nil, fmt.Errorf("store %q: %w", store, err)
	}
	return storeHosts(hosts, int32(sub)), nil
}

// storeHosts keeps, of hosts, the partitions of sub-topology sub.
func storeHosts(hosts []wire.HostTasks, sub int32) []StoreHost {
	var out []StoreHost
	for _, h := range hosts {
		sh := StoreHost{Addr: h.Addr}
		for _, t := range h.Active {
			if t.Sub == sub {
				sh.Active = append(sh.Active, t.Partition)
			}
		}
		for _, t := range h.Standby {
			if t.Sub == sub {
				sh.Standby = append(sh.Standby, t.Partition)
			}
		}
		if len(sh.Active)+len(sh.Standby) > 0 {
			slices.Sort(sh.Active)
			slices.Sort(sh.Standby)
			out = append(out, sh)
		}
	}
	return out
}

// storeTasks returns the sub-topology of the tasks that hold store and
// their number; ErrUnknownStore for a store no task holds.
func (a *App) storeTasks(store string) (sub int, partitions int32, err error) {
	st := a.topo.t.StoreSub[store]
	if st == nil {
		return 0, 0, fmt.Errorf("%w: %q is not the store of a task", ErrUnknownStore, store)
	}
	n := a.rt.Queries().StorePartitions(store)
	if n <= 0 {
		return 0, 0, fmt.Errorf("%w: store %q: the App has not started", ErrRebalancing, store)
	}
	return st.ID, n, nil
}

// isGlobalStore reports whether store is a global table's.
func (a *App) isGlobalStore(store string) bool {
	for _, g := range a.topo.t.Globals {
		if g.Store == store {
			return true
		}
	}
	return false
}
