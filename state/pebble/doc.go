// Package pebble is the on-disk engine of state.Store, and the default: a
// store is a Pebble database (github.com/cockroachdb/pebble/v2) in its own
// directory.
//
// All the stores of one App instance are opened through one [Env], which
// they share a block cache, a file cache and a memtable budget through, so
// that memory and open files stay bounded as the instance gets more tasks
// and stores:
//
//	env, err := pebble.NewEnv(pebble.BlockCacheSize(128<<20))
//	defer env.Close()
//	s, err := env.Open(filepath.Join(stateDir, "0_3", "counts"), "counts")
//	defer s.Close()
//
// Stores run without Pebble's write-ahead log: the runtime writes every
// change to the store's Kafka changelog, which is the log. [Store.Flush]
// makes the writes so far durable; the runtime writes the task's checkpoint
// into the store, then flushes.
//
// A store opened [Transactional] (the runtime's, under exactly-once) holds
// its writes in an open transaction that its reads see, until
// [Store.Commit] applies them to the database in one atomic write, synced
// to a write-ahead log, or [Store.Abort] drops them: the database only ever
// holds committed transactions, whole, and the checkpoint written in a
// transaction commits with its data. A damaged store is removed with
// [Env.Destroy] and restored from its changelog.
//
// Tests use an in-memory filesystem: pebble.NewEnv(pebble.FS(vfs.NewMem())).
package pebble
