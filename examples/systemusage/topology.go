package main

import (
	"time"

	"github.com/streamwork-go/streamwork/kstream"
	"github.com/streamwork-go/streamwork/serde"
	"github.com/streamwork-go/streamwork/state"
)

// Delta is one output record (key: the user): the event counted, its
// contribution, and the user's total after it. An event that is counted
// twice has two deltas; one that is lost has none.
type Delta struct {
	Event       string `json:"event"`
	CPUMillis   int64  `json:"cpu_ms"`
	TotalMillis int64  `json:"total_ms"`
}

// totalsStore is the counter's store: the CPU milliseconds per user.
const totalsStore = "usage-totals"

// Topology sums each user's CPU milliseconds in a store and writes, per
// event, the user's Delta to output:
//
//	input (keyed by user) ─► sum (store usage-totals) ─► output
//
// The sum is not idempotent: an event processed twice is added twice. pace,
// if not nil, is called before each event (a simulated cost, so that a
// crash lands mid-stream).
func Topology(input, output string, pace func()) (*kstream.Topology, error) {
	b := kstream.NewBuilder()
	kstream.AddStore(b, totalsStore)
	usage := kstream.From(b, input, serde.String, serde.JSON[Usage](), kstream.Named("usage"),
		kstream.WithTimestamps(func(r kstream.Record[string, Usage]) (time.Time, error) { return r.Value.TS, nil }))
	kstream.Process(usage, func() kstream.Processor[string, Usage, string, Delta] {
		return &summer{pace: pace}
	}, kstream.Named("sum"), kstream.UseStores(totalsStore)).
		To(output, serde.String, serde.JSON[Delta](), kstream.Named("deltas"))
	return b.Build()
}

// summer adds each event's CPU to its user's total.
type summer struct {
	ctx    kstream.ProcessorContext[string, Delta]
	totals *state.KeyValue[string, int64]
	pace   func()
}

func (p *summer) Init(ctx kstream.ProcessorContext[string, Delta]) error {
	p.ctx = ctx
	var err error
	p.totals, err = kstream.StoreOf(ctx, totalsStore, serde.String, serde.Int64)
	return err
}

func (p *summer) Close() error { return nil }

func (p *summer) Process(r kstream.Record[string, Usage]) error {
	if p.pace != nil {
		p.pace()
	}
	total, _, err := p.totals.Get(r.Key)
	if err != nil {
		return err
	}
	total += r.Value.CPUMillis
	if err := p.totals.Put(r.Key, total); err != nil {
		return err
	}
	p.ctx.Forward(kstream.WithValue(r, Delta{Event: r.Value.ID, CPUMillis: r.Value.CPUMillis, TotalMillis: total}))
	return nil
}
