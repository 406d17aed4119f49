// Package storetest checks that a state.Store engine behaves as the
// interface documents. Every engine runs the same suite:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(tb testing.TB) state.Store { return memory.New("s") })
//	}
//
// Run covers reads and writes, nil and empty values, range bounds, prefixes
// with 0xff bytes, ordering, iterator lifetime, iteration while writing,
// concurrent readers (run it with -race), ApproximateCount, typed views,
// DeleteRange and use after Close. Metamorphic applies one random sequence
// of operations to several stores and fails on the first difference.
// Benchmark measures Get, Put and a 1000-key range scan.
//
// RunWindow and RunSession run the window and session store suites over an
// engine's stores (state.NewWindowStore and state.NewSessionStore layered on
// them), including randomized runs against a map-based reference model.
// BenchmarkWindow measures their Put and fetches, and the cost of expiring
// a segment of 100,000 windows with one DeleteRange against deleting them
// one by one.
//
// RunVersioned runs the versioned store suite (state.NewVersionedStore over
// an engine's stores), with exact cases and randomized runs against a
// reference model that keeps every version; BenchmarkVersioned measures
// Put, late Puts, Get, GetAsOf and Versions.
//
// The package is for tests: it imports testing.
package storetest
