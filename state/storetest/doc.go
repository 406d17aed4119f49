// Package storetest checks that a state.Store engine behaves as the
// interface documents. Every engine runs the same suite:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(tb testing.TB) state.Store { return memory.New("s") })
//	}
//
// Run covers reads and writes, nil and empty values, range bounds, prefixes
// with 0xff bytes, ordering, iterator lifetime, iteration while writing,
// concurrent readers (run it with -race), ApproximateCount, typed views and
// use after Close. Metamorphic applies one random sequence of operations to
// several stores and fails on the first difference. Benchmark measures Get,
// Put and a 1000-key range scan.
//
// The package is for tests: it imports testing.
package storetest
