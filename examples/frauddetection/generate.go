package main

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"
)

// Txn is one card transaction, the input's value (its key is Card). ID
// names it uniquely: the DAG's verdicts are keyed by it.
type Txn struct {
	ID          string    `json:"id"`
	Card        string    `json:"card"`
	AmountCents int64     `json:"amount_cents"`
	Merchant    string    `json:"merchant"`
	Lat         float64   `json:"lat"`
	Lon         float64   `json:"lon"`
	TS          time.Time `json:"ts"`
}

// dayStart is the event time the generated day starts at: 09:00 UTC
// yesterday. Brokers delete records by their timestamps (retention.ms), so
// event times are recent; the output shows times of day only.
var dayStart = func() time.Time {
	y := time.Now().UTC().AddDate(0, 0, -1)
	return time.Date(y.Year(), y.Month(), y.Day(), 9, 0, 0, 0, time.UTC)
}()

// Generator spacing. A card's transactions come in episodes: one
// transaction, or a burst of them at most burstGap apart; episodes are at
// least episodeGap apart. A transaction is written on time, out of order
// (a single one, written just after the next transaction in event time,
// when that is less than maxDisorder later) or late (at least lateBy after
// its event time).
//
// Bursts are tighter than the session grace (30s), and written in order, so
// that which transactions form a session never depends on when stream time
// closes one (a session closes once stream time passes its end plus gap
// plus grace) and the test's model stays simple.
const (
	burstGap    = 25 * time.Second
	episodeGap  = 3 * time.Minute
	maxDisorder = 25 * time.Second
	outOfOrder  = 4
	lateBy      = 6 * time.Minute
	// dayLength: episodes start before dayStart + dayLength.
	dayLength = 18 * time.Minute
	// closingAfter: the last transaction comes this long after all others,
	// so that stream time passes every window's end plus grace and the
	// windows emit their final results (see the package doc).
	closingAfter = 5 * time.Minute
)

// city is where a card lives or is used, with the merchants there.
type city struct {
	name     string
	lat, lon float64
}

var cities = []city{
	{"paris", 48.8566, 2.3522}, {"lyon", 45.7640, 4.8357}, {"london", 51.5074, -0.1278},
	{"madrid", 40.4168, -3.7038}, {"berlin", 52.5200, 13.4050}, {"milan", 45.4642, 9.1900},
	{"amsterdam", 52.3676, 4.9041}, {"new-york", 40.7128, -74.0060},
}

var merchantKinds = []string{"bakery", "grocer", "pharmacy", "bookshop", "cafe", "fuel"}

// merchant is a shop at a fixed place.
type merchant struct {
	name     string
	lat, lon float64
}

// cards and their home cities (indexes into cities).
var cards = []struct {
	id   string
	home int
}{
	{"card-01", 0}, {"card-02", 1}, {"card-03", 2}, {"card-04", 3},
	{"card-05", 0}, {"card-06", 4}, {"card-07", 5}, {"card-08", 6},
}

// Generated is the input: the transactions in the order they are written
// to the topic (which is not their event-time order), and the merchants
// they were made at.
type Generated struct {
	Txns []Txn
	// Merchants: every merchant of every city, in city order. The
	// merchants table holds those of the European cities only (see
	// MerchantTable).
	Merchants []Merchant
}

// Merchant is a shop: its name, kind and city.
type Merchant struct {
	Name string `json:"name"`
	Kind string `json:"kind"`
	City string `json:"city"`
}

// Generate returns the day of transactions for seed: ordinary shopping for
// eight cards, with a spending spree (card-03), a card used in Paris and New
// York minutes apart (card-05, its New York transaction written out of
// order), a card-testing burst of small payments at many merchants
// (card-07), a harmless coffee-run burst (card-02), a few other
// transactions out of order, two late ones (card-04 and card-08), and a
// closing transaction after all others. The same seed gives the same
// transactions in the same order.
func Generate(seed uint64) Generated {
	rng := rand.New(rand.NewPCG(seed, 0x5eed_f4a0d))
	shops := make([][]merchant, len(cities))
	var known []Merchant
	for i, c := range cities {
		for _, kind := range merchantKinds {
			known = append(known, Merchant{Name: c.name + "-" + kind, Kind: kind, City: c.name})
			shops[i] = append(shops[i], merchant{
				name: c.name + "-" + kind,
				lat:  c.lat + (rng.Float64()-0.5)*0.04,
				lon:  c.lon + (rng.Float64()-0.5)*0.04,
			})
		}
	}
	cents := func(lo, hi int64) int64 { return lo + rng.Int64N(hi-lo+1) }
	// between: a whole number of seconds in [lo, hi].
	between := func(lo, hi time.Duration) time.Duration {
		return lo + time.Duration(rng.Int64N(int64((hi-lo)/time.Second)+1))*time.Second
	}

	type written struct {
		txn   Txn
		delay time.Duration // written this long after its event time
		// single: a transaction alone in its episode, which may be written
		// out of order.
		single bool
		// late: to be written just after the first transaction at least
		// lateBy after it.
		late bool
	}
	var all []written
	var lastTS time.Time
	for _, c := range cards {
		home := shops[c.home]
		t := dayStart.Add(between(0, 150*time.Second))
		emit := func(m merchant, amount int64, at time.Time, late, single bool) {
			all = append(all, written{txn: Txn{Card: c.id, AmountCents: amount, Merchant: m.name, Lat: m.lat, Lon: m.lon, TS: at},
				single: single, late: late})
			if at.After(lastTS) {
				lastTS = at
			}
		}
		for ep := 0; t.Before(dayStart.Add(dayLength)); ep++ {
			next := episodeGap + between(0, 150*time.Second)
			switch {
			case c.id == "card-02" && ep == 1:
				// A coffee run: three payments, two merchants.
				cafe, bakery := home[4], home[0]
				emit(cafe, cents(250, 600), t, false, false)
				t = t.Add(between(10*time.Second, burstGap))
				emit(bakery, cents(300, 900), t, false, false)
				t = t.Add(between(10*time.Second, burstGap))
				emit(cafe, cents(250, 600), t, false, false)
			case c.id == "card-03" && ep == 2:
				// A spending spree inside one minute: three purchases of
				// $350 to $650 from the 5th second of the next minute.
				t = t.Truncate(time.Minute).Add(time.Minute + 5*time.Second)
				for i, m := range []merchant{home[3], home[1], home[5]} {
					if i > 0 {
						t = t.Add(between(12*time.Second, 18*time.Second))
					}
					emit(m, cents(35000, 65000), t, false, false)
				}
			case c.id == "card-04" && ep == 1:
				// A large purchase that reaches the topic minutes late.
				emit(home[rng.IntN(len(home))], cents(240000, 260000), t, true, false)
			case c.id == "card-05" && ep == 2:
				emit(home[rng.IntN(len(home))], cents(400, 12000), t, false, true)
				next = between(episodeGap+10*time.Second, episodeGap+80*time.Second) // New York within 5 minutes
			case c.id == "card-05" && ep == 3:
				// The card, used in Paris in the episode before, pays in
				// New York.
				ny := shops[len(shops)-1]
				emit(ny[rng.IntN(len(ny))], cents(2000, 15000), t, false, true)
			case c.id == "card-07" && ep == 2:
				// Card testing: six tiny payments at five merchants.
				for i, k := range []int{0, 1, 2, 0, 3, 5} {
					if i > 0 {
						t = t.Add(between(8*time.Second, 20*time.Second))
					}
					emit(home[k], cents(100, 300), t, false, false)
				}
			case c.id == "card-08" && ep == 1:
				emit(home[rng.IntN(len(home))], cents(400, 12000), t, true, false)
			default:
				emit(home[rng.IntN(len(home))], cents(400, 12000), t, false, true)
			}
			t = t.Add(next)
		}
	}

	// Out of order: a few single transactions are written just after the
	// next transaction in event time, when that one is less than
	// maxDisorder later (and neither it nor the one before is moved).
	slices.SortStableFunc(all, func(a, b written) int {
		return cmp.Or(a.txn.TS.Compare(b.txn.TS), cmp.Compare(a.txn.Card, b.txn.Card))
	})
	picked := 0
	for _, i := range rng.Perm(len(all) - 1) {
		if picked == outOfOrder {
			break
		}
		w, nx := &all[i], &all[i+1]
		gap := nx.txn.TS.Sub(w.txn.TS)
		if w.single && w.delay == 0 && nx.delay == 0 && !nx.late && gap > 0 && gap < maxDisorder && (i == 0 || all[i-1].delay == 0) {
			w.delay = gap + time.Second
			picked++
		}
	}

	// The closing transaction: card-01 again, after everything else.
	closing := shops[cards[0].home][2]
	all = append(all, written{txn: Txn{Card: cards[0].id, AmountCents: cents(400, 12000), Merchant: closing.name,
		Lat: closing.lat, Lon: closing.lon, TS: lastTS.Add(closingAfter)}})

	// Late: written just after the first transaction on time at least
	// lateBy later.
	for i := range all {
		w := &all[i]
		if !w.late {
			continue
		}
		for _, nx := range all[i+1:] {
			if !nx.late && nx.delay == 0 && nx.txn.TS.Sub(w.txn.TS) >= lateBy {
				w.delay = nx.txn.TS.Sub(w.txn.TS) + time.Second
				break
			}
		}
	}

	// Write order: by the time each transaction reaches the topic, its
	// event time plus its delay; ties by event time, then card.
	slices.SortStableFunc(all, func(a, b written) int {
		return cmp.Or(a.txn.TS.Add(a.delay).Compare(b.txn.TS.Add(b.delay)), a.txn.TS.Compare(b.txn.TS), cmp.Compare(a.txn.Card, b.txn.Card))
	})
	// IDs in event-time order (ties by card): tx-001 is the first
	// transaction of the day.
	order := make([]int, len(all))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		return cmp.Or(all[a].txn.TS.Compare(all[b].txn.TS), cmp.Compare(all[a].txn.Card, all[b].txn.Card))
	})
	for n, i := range order {
		all[i].txn.ID = fmt.Sprintf("tx-%03d", n+1)
	}
	g := Generated{Txns: make([]Txn, len(all)), Merchants: known}
	for i, w := range all {
		g.Txns[i] = w.txn
	}
	return g
}

// OutOfOrder counts the transactions written after one with a later event
// time.
func (g Generated) OutOfOrder() int {
	n := 0
	var newest time.Time
	for _, t := range g.Txns {
		if t.TS.Before(newest) {
			n++
		}
		if t.TS.After(newest) {
			newest = t.TS
		}
	}
	return n
}

// Cards counts the distinct cards.
func (g Generated) Cards() int {
	seen := map[string]bool{}
	for _, t := range g.Txns {
		seen[t.Card] = true
	}
	return len(seen)
}

// dollars formats cents as $1,234.56.
func dollars(cents int64) string {
	s := fmt.Sprintf("%d", cents/100)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return fmt.Sprintf("$%s.%02d", s, cents%100)
}
