package main

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// Event is one vehicle passing a toll booth, the input's value (its key is
// Booth). Seq numbers each booth's events from 1 in the order the booth
// wrote them; Plate is the number plate as the booth's camera read it,
// in whatever case and spacing.
type Event struct {
	Booth string    `json:"booth"`
	Seq   int64     `json:"seq"`
	Type  string    `json:"type"`
	Plate string    `json:"plate"`
	TS    time.Time `json:"ts"`
}

// The vehicle types and the toll each pays, in cents.
var (
	VehicleTypes = []string{"car", "truck", "motorcycle", "bus"}
	TollCents    = map[string]int64{"car": 250, "truck": 700, "motorcycle": 125, "bus": 500}
)

// booths and their share of the traffic, in percent: a few busy booths
// and quiet ones, so that the input's partitions, keyed by booth, carry
// uneven loads.
var booths = []struct {
	id    string
	share int
}{
	{"booth-1", 30}, {"booth-2", 22}, {"booth-3", 18}, {"booth-4", 14}, {"booth-5", 10}, {"booth-6", 6},
}

// typeShares are the vehicle types' shares of the traffic, in percent.
var typeShares = []int{60, 20, 10, 10}

// Generate returns n vehicle events for seed, in the order the booths
// write them: each event at a random booth (weighted by its share), of a
// random type, with a random plate written in one of several styles, one
// to twenty seconds after the one before. Event times start two hours
// before now (brokers delete records by timestamp), on a whole minute. The
// same seed gives the same events, but for the start time.
func Generate(seed uint64, n int) []Event {
	rng := rand.New(rand.NewPCG(seed, 0x70_11_b0_07))
	pick := func(shares []int) int {
		x := rng.IntN(100)
		for i, s := range shares {
			if x < s {
				return i
			}
			x -= s
		}
		return len(shares) - 1
	}
	boothShares := make([]int, len(booths))
	for i, b := range booths {
		boothShares[i] = b.share
	}
	t := time.Now().UTC().Add(-2 * time.Hour).Truncate(time.Minute)
	seq := map[string]int64{}
	events := make([]Event, n)
	for i := range events {
		b := booths[pick(boothShares)].id
		seq[b]++
		t = t.Add(time.Duration(1+rng.IntN(20)) * time.Second)
		events[i] = Event{Booth: b, Seq: seq[b], Type: VehicleTypes[pick(typeShares)], Plate: rawPlate(rng), TS: t}
	}
	return events
}

// rawPlate returns a plate of the form AB123CD as a camera might read it:
// upper or lower case, with or without dashes or spaces between the
// groups.
func rawPlate(rng *rand.Rand) string {
	letter := func() byte { return byte('A' + rng.IntN(26)) }
	groups := []string{
		string([]byte{letter(), letter()}),
		fmt.Sprintf("%03d", rng.IntN(1000)),
		string([]byte{letter(), letter()}),
	}
	p := strings.Join(groups, []string{"", "-", " "}[rng.IntN(3)])
	if rng.IntN(3) == 0 {
		p = strings.ToLower(p)
	}
	return p
}

// NormalisePlate returns plate in canonical form: upper case letters and
// digits only ("ab-123 cd" becomes "AB123CD").
func NormalisePlate(plate string) string {
	var b strings.Builder
	for _, c := range strings.ToUpper(plate) {
		if c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			b.WriteRune(c)
		}
	}
	return b.String()
}
