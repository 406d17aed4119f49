// Package state is the local state layer of stateful operators: the byte
// store interface the runtime writes, typed views over it, and the two small
// files a state directory holds besides the stores.
//
// # Stores
//
// A [Store] is an ordered, byte-level key-value store owned by one task. Its
// engines live in sub-packages: state/pebble (on disk, the default) and
// state/memory. Every change the runtime makes to a store it also writes to
// the store's Kafka changelog topic, which is the store's write-ahead log:
// engines run without one, and after a crash or a move to another instance
// the runtime restores the store from the changelog. Flush makes a store's
// writes durable on local disk so that restoring can start where the local
// data ends.
//
// Iteration is pull style, as in Pebble: [Iterator] has Next, Key, Value,
// Err and Close. [Seq] and [SeqErr] adapt an Iterator to a range-over-func
// loop. Keys order bytewise.
//
// # Typed views
//
// [Typed] wraps a Store with a key and a value serde.Serde. The result,
// [*KeyValue], is what operators use; its read side, [ReadOnlyKeyValue], is
// what interactive queries get.
//
// # Files
//
// [WriteCheckpoint] and [ReadCheckpoint] keep a task's [Checkpoint]: for
// each changelog partition, the offset to restore from next. [LockDir] locks
// a state directory so that a second App instance pointed at it fails fast
// with [ErrLocked].
//
// # Concurrency and errors
//
// One goroutine writes a store; others may read it concurrently. Using a
// closed store is a programming error and panics with [ErrClosed]; runtime
// failures are returned as errors. Sentinels are in errors.go and are
// matched with errors.Is.
//
// # Testing
//
// Package state/storetest is the conformance suite every engine passes.
package state
