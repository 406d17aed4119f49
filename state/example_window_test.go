package state_test

import (
	"fmt"
	"time"

	"github.com/streamwork-go/streamwork/serde"
	"github.com/streamwork-go/streamwork/state"
	"github.com/streamwork-go/streamwork/state/memory"
)

// A tumbling-window count: one-minute windows, kept for ten minutes. Late
// records for windows past retention are dropped, and reported.
func ExampleNewWindowStore() {
	s := memory.New("clicks-per-minute")
	defer s.Close()
	ws, err := state.NewWindowStore(s, state.WindowStoreConfig{
		Retention:  10 * time.Minute,
		WindowSize: time.Minute,
	})
	if err != nil {
		panic(err)
	}
	counts := state.TypedWindows(ws, serde.String, serde.Int64)

	const minute = int64(60_000)
	clicks := []struct {
		user string
		ts   int64 // milliseconds
	}{{"ann", 5_000}, {"bob", 20_000}, {"ann", 65_000}, {"ann", 70_000}, {"ann", 15 * minute}, {"bob", 30_000}}
	for _, c := range clicks {
		start := c.ts - c.ts%minute
		n, _, err := counts.Fetch(c.user, start)
		if err != nil {
			panic(err)
		}
		dropped, err := counts.Put(c.user, start, n+1)
		if err != nil {
			panic(err)
		}
		if dropped {
			fmt.Printf("dropped %s at %d: window expired\n", c.user, c.ts)
		}
	}
	// At stream time 15:00, ann's windows of minutes 0 and 1 are past
	// retention: fetches no longer return them.
	for w, n := range counts.FetchRange("ann", 0, 20*minute) {
		fmt.Printf("%s [%d, %d): %d\n", w.Key, w.Start, w.End, n)
	}
	// Output:
	// dropped bob at 30000: window expired
	// ann [900000, 960000): 1
}

// A session store finds the sessions a new record merges with.
func ExampleNewSessionStore() {
	s := memory.New("sessions")
	defer s.Close()
	ss, err := state.NewSessionStore(s, state.SessionStoreConfig{
		Retention:     time.Hour,
		InactivityGap: 5 * time.Minute,
	})
	if err != nil {
		panic(err)
	}
	sessions := state.TypedSessions(ss, serde.String, serde.Int64)
	const minute = int64(60_000)
	for _, sess := range [][2]int64{{0, 2 * minute}, {10 * minute, 12 * minute}, {30 * minute, 30 * minute}} {
		if _, err := sessions.Put("ann", sess[0], sess[1], 1); err != nil {
			panic(err)
		}
	}
	// A record at minute 16 with a 5-minute gap merges sessions that end at
	// or after minute 11 and start at or before minute 21.
	ts, gap := 16*minute, 5*minute
	for w := range sessions.FindSessions("ann", ts-gap, ts+gap) {
		fmt.Printf("merge [%d, %d]\n", w.Start/minute, w.End/minute)
	}
	// Output:
	// merge [10, 12]
}
