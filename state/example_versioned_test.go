package state_test

import (
	"fmt"
	"time"

	"github.com/streamwork-go/streamwork/serde"
	"github.com/streamwork-go/streamwork/state"
	"github.com/streamwork-go/streamwork/state/memory"
)

// A price table that a stream-table join looks up as of each order's
// time: price changes may arrive late, and a change older than the history
// retention is dropped, and reported.
func ExampleNewVersionedStore() {
	s := memory.New("prices")
	defer s.Close()
	vs, err := state.NewVersionedStore(s, state.VersionedStoreConfig{HistoryRetention: time.Hour})
	if err != nil {
		panic(err)
	}
	prices := state.TypedVersioned(vs, serde.String, serde.Int64)

	const minute = int64(60_000)
	changes := []struct {
		item  string
		price int64
		ts    int64 // milliseconds
	}{{"tea", 300, 0}, {"tea", 350, 30 * minute}, {"tea", 320, 10 * minute}, {"tea", 999, 100 * minute}, {"tea", 1, 20 * minute}}
	for _, c := range changes {
		validTo, dropped, err := prices.Put(c.item, c.price, c.ts)
		switch {
		case err != nil:
			panic(err)
		case dropped:
			fmt.Printf("%d at minute %d: dropped\n", c.price, c.ts/minute)
		case validTo == state.LatestValidTo:
			fmt.Printf("%d at minute %d: latest\n", c.price, c.ts/minute)
		default:
			fmt.Printf("%d at minute %d: valid until minute %d\n", c.price, c.ts/minute, validTo/minute)
		}
	}
	for _, at := range []int64{45, 90, 100} {
		r, ok, err := prices.GetAsOf("tea", at*minute)
		if err != nil {
			panic(err)
		}
		fmt.Printf("as of minute %d: %d (from minute %d) %v\n", at, r.Value, r.ValidFrom/minute, ok)
	}
	// Output:
	// 300 at minute 0: latest
	// 350 at minute 30: latest
	// 320 at minute 10: valid until minute 30
	// 999 at minute 100: latest
	// 1 at minute 20: dropped
	// as of minute 45: 350 (from minute 30) true
	// as of minute 90: 350 (from minute 30) true
	// as of minute 100: 999 (from minute 100) true
}
