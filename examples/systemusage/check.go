package main

import (
	"fmt"
	"maps"
	"slices"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamwork-go/streamwork/kstream"
	"github.com/streamwork-go/streamwork/serde"
)

// Outcome is what one guarantee's output says about the input: how many
// deltas, which events were lost or counted more than once, and each
// user's last total against the expected one.
type Outcome struct {
	Guarantee kstream.DeliveryGuarantee
	Deltas    int
	// Lost counts the events with no delta; Twice those with more than
	// one (counted twice, or more).
	Lost, Twice int
	// Totals are each user's total in its last delta; Expected the sums
	// of the input.
	Totals, Expected map[string]int64
}

// TotalsExact reports whether every user's last total is the expected one.
func (o Outcome) TotalsExact() bool { return maps.Equal(o.Totals, o.Expected) }

// TotalsOff returns the sum of the users' totals minus the expected sum,
// in milliseconds.
func (o Outcome) TotalsOff() int64 {
	var d int64
	for _, t := range o.Totals {
		d += t
	}
	for _, t := range o.Expected {
		d -= t
	}
	return d
}

// check counts each event's deltas in recs (the output topic, read
// committed, in partition order) and takes each user's last total. A
// delta that matches no event, or whose key or contribution differs from
// its event's, is an error: the output is not what the topology writes.
func check(g kstream.DeliveryGuarantee, events []Usage, recs []*kgo.Record) (Outcome, error) {
	o := Outcome{Guarantee: g, Deltas: len(recs), Totals: map[string]int64{}, Expected: Totals(events)}
	byID := make(map[string]Usage, len(events))
	for _, e := range events {
		byID[e.ID] = e
	}
	seen := make(map[string]int, len(events))
	for _, r := range recs {
		d, err := serde.JSON[Delta]().Deserialize(r.Topic, r.Value)
		if err != nil {
			return o, fmt.Errorf("%s/%d offset %d: %w", r.Topic, r.Partition, r.Offset, err)
		}
		e, ok := byID[d.Event]
		if !ok || e.User != string(r.Key) || e.CPUMillis != d.CPUMillis {
			return o, fmt.Errorf("%s/%d offset %d: delta %+v of %q matches no input event", r.Topic, r.Partition, r.Offset, d, r.Key)
		}
		seen[d.Event]++
		o.Totals[e.User] = d.TotalMillis
	}
	for _, e := range events {
		switch n := seen[e.ID]; {
		case n == 0:
			o.Lost++
		case n > 1:
			o.Twice++
		}
	}
	return o, nil
}

// outcomeLine is one guarantee's line of the summary.
func outcomeLine(o Outcome) string {
	totals := "exact"
	if !o.TotalsExact() {
		totals = fmt.Sprintf("off by %+.3f s", float64(o.TotalsOff())/1000)
	}
	return fmt.Sprintf("  %-14s %6d %6d %14d  %s", o.Guarantee, o.Deltas, o.Lost, o.Twice, totals)
}

// summaryLines are the table of outcomes and the users' totals.
func summaryLines(outcomes []Outcome) []string {
	lines := []string{fmt.Sprintf("  %-14s %6s %6s %14s  %s", "guarantee", "deltas", "lost", "counted twice", "totals")}
	for _, o := range outcomes {
		lines = append(lines, outcomeLine(o))
	}
	if len(outcomes) == 0 {
		return lines
	}
	head := fmt.Sprintf("  %-8s %14s", "CPU s", "expected")
	for _, o := range outcomes {
		head += fmt.Sprintf(" %14s", o.Guarantee)
	}
	lines = append(lines, head)
	for _, u := range slices.Sorted(maps.Keys(outcomes[0].Expected)) {
		l := fmt.Sprintf("  %-8s %14.3f", u, float64(outcomes[0].Expected[u])/1000)
		for _, o := range outcomes {
			l += fmt.Sprintf(" %14.3f", float64(o.Totals[u])/1000)
		}
		lines = append(lines, l)
	}
	return lines
}
