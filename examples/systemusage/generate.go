package main

import (
	"fmt"
	"math/rand/v2"
	"time"
)

// Usage is one usage event, the input's value (its key is User): a job of
// User that used CPUMillis milliseconds of CPU. ID is unique across the
// input, so the output tells which events were counted.
type Usage struct {
	ID        string    `json:"id"`
	User      string    `json:"user"`
	CPUMillis int64     `json:"cpu_ms"`
	TS        time.Time `json:"ts"`
}

// users and their share of the events, in percent.
var users = []struct {
	name  string
	share int
}{
	{"alice", 35}, {"bob", 25}, {"carol", 20}, {"dave", 12}, {"erin", 8},
}

// Generate returns n usage events for seed, in the order they are written:
// a random user (by share) each, 1 ms to 5 s of CPU, a second after the
// one before, from three hours before now (brokers delete records by
// timestamp). The same seed gives the same events, but for the start time.
func Generate(seed uint64, n int) []Usage {
	rng := rand.New(rand.NewPCG(seed, 0x5_75_e0))
	t := time.Now().UTC().Add(-3 * time.Hour).Truncate(time.Second)
	out := make([]Usage, n)
	for i := range out {
		x, u := rng.IntN(100), users[len(users)-1].name
		for _, c := range users {
			if x < c.share {
				u = c.name
				break
			}
			x -= c.share
		}
		out[i] = Usage{ID: fmt.Sprintf("u%06d", i+1), User: u, CPUMillis: 1 + rng.Int64N(5000), TS: t.Add(time.Duration(i) * time.Second)}
	}
	return out
}

// Totals sums each user's CPU milliseconds.
func Totals(events []Usage) map[string]int64 {
	t := map[string]int64{}
	for _, e := range events {
		t[e.User] += e.CPUMillis
	}
	return t
}
