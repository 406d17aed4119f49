package kstream_test

import (
	"strconv"
	"testing"

	"github.com/streamwork-go/streamwork/kstream"
	"github.com/streamwork-go/streamwork/kstream/kstreamtest"
	"github.com/streamwork-go/streamwork/serde"
	"github.com/streamwork-go/streamwork/state"
)

// countReader forwards, for each record, the count its key has in the
// aggregation store "clicks", read through the processor API.
type countReader struct {
	ctx    kstream.ProcessorContext[string, string]
	counts *state.KeyValue[string, int64]
}

func (p *countReader) Init(ctx kstream.ProcessorContext[string, string]) error {
	p.ctx = ctx
	var err error
	p.counts, err = kstream.StoreOf(ctx, "clicks", serde.String, serde.Int64)
	return err
}

func (p *countReader) Process(r kstream.Record[string, string]) error {
	n, ok, err := p.counts.Get(r.Key)
	if err != nil {
		return err
	}
	v := "none"
	if ok {
		v = strconv.FormatInt(n, 10)
	}
	all := 0
	for range p.counts.All() {
		all++
	}
	p.ctx.Forward(kstream.Record[string, string]{Key: r.Key, Value: v + "/" + strconv.Itoa(all), Timestamp: r.Timestamp})
	return nil
}

func (p *countReader) Close() error { return nil }

// A processor reading an aggregation's store (which keeps a timestamp with
// each value) sees the values alone.
func TestProcessorReadsAggregationStore(t *testing.T) {
	b := kstream.NewBuilder()
	clicks := kstream.From(b, "clicks", serde.String, serde.String)
	kstream.Count(kstream.GroupByKey(clicks, serde.String, serde.String), kstream.StoreName("clicks"))
	kstream.Process(kstream.From(b, "asks", serde.String, serde.String),
		func() kstream.Processor[string, string, string, string] { return &countReader{} }, kstream.UseStores("clicks")).
		To("out", serde.String, serde.String)
	d := mustDriver(t, b)
	c := kstreamtest.Input(d, "clicks", serde.String, serde.String)
	a := kstreamtest.Input(d, "asks", serde.String, serde.String)
	pipeS(t, c, "u", "x", 1)
	pipeS(t, c, "u", "y", 2)
	pipeS(t, c, "v", "z", 3)
	pipeS(t, a, "u", "?", 4)
	pipeS(t, a, "w", "?", 5)
	equal(t, "read", kstreamtest.Output(d, "out", serde.String, serde.String).KeyValues(), []kv{{Key: "u", Value: "2/2"}, {Key: "w", Value: "none/2"}})
}
