// Package memory is the in-memory engine of state.Store: an ordered B-tree
// (github.com/google/btree) behind a read-write mutex.
//
// It suits small stores, tests, and stores whose durability comes entirely
// from their changelog: nothing is written to disk, so after a restart the
// runtime restores a memory store from the start of its changelog.
//
// One goroutine writes while others read. Iterators scan a copy-on-write
// clone of the tree taken when they are created, so they never block the
// writer, never see a half-applied write, and are not disturbed by writes
// made while they run. Taking the clone is O(1); the writer then copies the
// few tree nodes it changes.
//
// Usage:
//
//	s := memory.New("counts")
//	defer s.Close()
//	_ = s.Put([]byte("a"), []byte("1"))
//	for k, v := range state.Seq(s.All()) { ... }
package memory
