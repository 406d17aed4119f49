package kstream_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/streamwork-go/streamwork/kstream"
	"github.com/streamwork-go/streamwork/kstream/kstreamtest"
	"github.com/streamwork-go/streamwork/serde"
)

// tickProcessor emits one record per punctuation, saying which clock fired
// at what time; it cancels the stream-time schedule when it sees "stop".
type tickProcessor struct {
	ctx    kstream.ProcessorContext[string, string]
	stream kstream.Cancellable
	typ    kstream.PunctuationType
}

func (p *tickProcessor) Init(ctx kstream.ProcessorContext[string, string]) error {
	p.ctx = ctx
	p.stream = ctx.Schedule(10*time.Second, p.typ, func(at time.Time) {
		ctx.Forward(kstream.Record[string, string]{Key: p.typ.String(), Value: fmt.Sprint(at.UnixMilli()), Timestamp: at})
	})
	return nil
}

func (p *tickProcessor) Process(r kstream.Record[string, string]) error {
	if r.Value == "stop" {
		p.stream.Cancel()
	}
	return nil
}

func (p *tickProcessor) Close() error { return nil }

func tickTopology(t *testing.T, typ kstream.PunctuationType) (*kstreamtest.Driver, *kstreamtest.InputTopic[string, string], *kstreamtest.OutputTopic[string, string]) {
	b := kstream.NewBuilder()
	kstream.Process(kstream.From(b, "in", serde.String, serde.String),
		func() kstream.Processor[string, string, string, string] { return &tickProcessor{typ: typ} }).
		To("ticks", serde.String, serde.String)
	d := mustDriver(t, b)
	return d, kstreamtest.Input(d, "in", serde.String, serde.String), kstreamtest.Output(d, "ticks", serde.String, serde.String)
}

func TestStreamTimePunctuation(t *testing.T) {
	d, in, out := tickTopology(t, kstream.StreamTime)
	_ = d
	step := func(ms int64, v string, want ...string) {
		t.Helper()
		if err := in.Pipe("k", v, ts(ms)); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, kv := range out.KeyValues() {
			got = append(got, kv.Value)
		}
		equal(t, fmt.Sprintf("ticks after record at %d", ms), got, want)
	}
	// The first record fires at once (schedules start at 0).
	step(5_000, "a", "5000")
	step(9_999, "b")
	step(10_000, "c", "10000")
	// Out-of-order records do not move stream time back.
	step(3_000, "d")
	// A jump over several intervals fires once, then re-aligns to 50000.
	step(47_000, "e", "47000")
	step(49_999, "f")
	step(50_000, "g", "50000")
	step(55_000, "stop")
	step(90_000, "h")
}

func TestWallClockPunctuation(t *testing.T) {
	d, _, out := tickTopology(t, kstream.WallClockTime)
	start := d.Now().UnixMilli()
	advance := func(dur time.Duration, want ...int64) {
		t.Helper()
		if err := d.AdvanceWallClock(dur); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, kv := range out.KeyValues() {
			got = append(got, kv.Value)
		}
		var w []string
		for _, x := range want {
			w = append(w, fmt.Sprint(start+x))
		}
		equal(t, fmt.Sprintf("ticks at +%v", d.Now().UnixMilli()-start), got, w)
	}
	advance(9 * time.Second)
	advance(time.Second, 10_000)
	advance(5 * time.Second)
	// A delay of several intervals fires once and re-aligns: next at 50s.
	advance(30*time.Second, 45_000)
	advance(4 * time.Second)
	advance(time.Second, 50_000)
}
