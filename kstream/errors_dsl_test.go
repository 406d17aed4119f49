package kstream_test

import (
	"errors"
	"testing"
	"time"

	"github.com/streamwork-go/streamwork/kstream"
	"github.com/streamwork-go/streamwork/kstream/kstreamtest"
	"github.com/streamwork-go/streamwork/serde"
)

func errorTopology(t *testing.T, opts ...kstream.Opt) (*kstreamtest.Driver, *kstreamtest.OutputTopic[string, int64]) {
	b := kstream.NewBuilder()
	s := kstream.From(b, "in", serde.String, serde.Int64)
	s = kstream.MapValues(s, func(v int64) int64 {
		if v == 13 {
			panic("unlucky")
		}
		return v
	}, kstream.Named("unlucky"))
	kstream.Process(s, func() kstream.Processor[string, int64, string, int64] { return &evenOnly{} }, kstream.Named("even-only")).
		To("out", serde.String, serde.Int64)
	d := mustDriver(t, b, opts...)
	return d, kstreamtest.Output(d, "out", serde.String, serde.Int64)
}

// evenOnly returns an error for odd values.
type evenOnly struct {
	ctx kstream.ProcessorContext[string, int64]
}

func (p *evenOnly) Init(ctx kstream.ProcessorContext[string, int64]) error { p.ctx = ctx; return nil }
func (p *evenOnly) Close() error                                           { return nil }
func (p *evenOnly) Process(r kstream.Record[string, int64]) error {
	if r.Value%2 != 0 {
		return errors.New("odd value")
	}
	p.ctx.Forward(r)
	return nil
}

// pipeMixed pipes: 2, a 3-byte poison value, 4, 7 (odd), 13 (panics), 6.
func pipeMixed(d *kstreamtest.Driver) []error {
	var errs []error
	i64 := func(v int64) []byte { b, _ := serde.Int64.Serialize("in", v); return b }
	for i, v := range [][]byte{i64(2), {1, 2, 3}, i64(4), i64(7), i64(13), i64(6)} {
		errs = append(errs, d.PipeRaw("in", []byte("k"), v, ts(int64(i))))
	}
	return errs
}

func TestPoisonPillFails(t *testing.T) {
	d, out := errorTopology(t)
	errs := pipeMixed(d)
	if errs[0] != nil {
		t.Fatalf("first record: %v", errs[0])
	}
	var pe *kstream.ProcessingError
	if !errors.As(errs[1], &pe) {
		t.Fatalf("poison pill error = %v, want *ProcessingError", errs[1])
	}
	if pe.Topic != "in" || pe.Partition != 0 || pe.Offset != 1 {
		t.Errorf("coordinates = %s/%d/%d, want in/0/1", pe.Topic, pe.Partition, pe.Offset)
	}
	var de *serde.DecodeError
	if !errors.As(errs[1], &de) || de.Key || !errors.Is(errs[1], serde.ErrInvalidLength) {
		t.Errorf("cause = %v, want a value DecodeError wrapping ErrInvalidLength", errs[1])
	}
	if !errors.As(errs[3], &pe) || pe.Node != "even-only" || pe.Offset != 3 {
		t.Errorf("odd value error = %v, want a ProcessingError at node even-only offset 3", errs[3])
	}
	if !errors.Is(errs[4], kstream.ErrPanic) || !errors.As(errs[4], &pe) || pe.Node != "unlucky" {
		t.Errorf("panic error = %v, want ErrPanic at node unlucky", errs[4])
	}
	equal(t, "out", out.KeyValues(), []kstream.KeyValue[string, int64]{{Key: "k", Value: 2}, {Key: "k", Value: 4}, {Key: "k", Value: 6}})
}

func TestPoisonPillSkipped(t *testing.T) {
	d, out := errorTopology(t,
		kstream.DeserializationErrorHandler(kstream.LogAndSkip),
		kstream.ProcessingErrorHandler(kstream.LogAndSkip))
	for i, err := range pipeMixed(d) {
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
	}
	equal(t, "out", out.KeyValues(), []kstream.KeyValue[string, int64]{{Key: "k", Value: 2}, {Key: "k", Value: 4}, {Key: "k", Value: 6}})
	m := d.Metrics()
	equal(t, "skipped", m.Skipped, map[kstream.ErrorKind]int64{
		kstream.DeserializationErrorKind: 1, kstream.ProcessingErrorKind: 2, kstream.ProductionErrorKind: 0})
	equal(t, "processed", m.RecordsProcessed, int64(6))
}

func TestPoisonPillDeadLettered(t *testing.T) {
	var seen []kstream.ErrorKind
	d, out := errorTopology(t,
		kstream.DeserializationErrorHandler(kstream.LogAndDeadLetter("dlq")),
		kstream.ProcessingErrorHandler(func(ec *kstream.ErrorContext) kstream.Decision {
			seen = append(seen, ec.Kind)
			return kstream.DeadLetter("dlq")
		}))
	for i, err := range pipeMixed(d) {
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
	}
	equal(t, "out", out.KeyValues(), []kstream.KeyValue[string, int64]{{Key: "k", Value: 2}, {Key: "k", Value: 4}, {Key: "k", Value: 6}})
	equal(t, "handler kinds", seen, []kstream.ErrorKind{kstream.ProcessingErrorKind, kstream.ProcessingErrorKind})
	dlq := d.TakeRaw("dlq")
	if len(dlq) != 3 {
		t.Fatalf("dlq has %d records, want 3", len(dlq))
	}
	type meta struct{ kind, node, topic, part, offset, task string }
	var got []meta
	for _, r := range dlq {
		h := map[string]string{}
		for _, x := range r.Headers {
			h[x.Key] = string(x.Value)
		}
		if string(r.Key) != "k" {
			t.Errorf("dlq key = %q, want original key", r.Key)
		}
		if h[kstream.HeaderError] == "" {
			t.Errorf("dlq record has no error header: %v", h)
		}
		got = append(got, meta{h[kstream.HeaderErrorKind], h[kstream.HeaderErrorNode], h[kstream.HeaderSourceTopic],
			h[kstream.HeaderSourcePart], h[kstream.HeaderSourceOffset], h[kstream.HeaderSourceTask]})
	}
	equal(t, "dlq headers", got, []meta{
		{"deserialization", "KSTREAM-SOURCE-0000000000", "in", "0", "1", "0_0"},
		{"processing", "even-only", "in", "0", "3", "0_0"},
		{"processing", "unlucky", "in", "0", "4", "0_0"},
	})
	equal(t, "poison bytes kept", dlq[0].Value, []byte{1, 2, 3})
	m := d.Metrics()
	equal(t, "dead-lettered", m.DeadLettered, map[kstream.ErrorKind]int64{
		kstream.DeserializationErrorKind: 1, kstream.ProcessingErrorKind: 2, kstream.ProductionErrorKind: 0})
}

func TestSerializationFailureGoesToProductionHandler(t *testing.T) {
	failing := serde.Func(func(string, string) ([]byte, error) { return nil, errors.New("no") },
		func(_ string, b []byte) (string, error) { return string(b), nil })
	b := kstream.NewBuilder()
	kstream.From(b, "in", serde.String, serde.String).To("out", serde.String, failing)
	var kinds []kstream.ErrorKind
	d := mustDriver(t, b, kstream.ProductionErrorHandler(func(ec *kstream.ErrorContext) kstream.Decision {
		kinds = append(kinds, ec.Kind)
		return kstream.Skip
	}))
	if err := kstreamtest.Input(d, "in", serde.String, serde.String).Pipe("a", "b", ts(1)); err != nil {
		t.Fatal(err)
	}
	equal(t, "kinds", kinds, []kstream.ErrorKind{kstream.ProductionErrorKind})
	equal(t, "skipped production", d.Metrics().Skipped[kstream.ProductionErrorKind], int64(1))
}

func TestPunctuatorPanicGoesToProcessingHandler(t *testing.T) {
	b := kstream.NewBuilder()
	kstream.Process(kstream.From(b, "in", serde.String, serde.String),
		func() kstream.Processor[string, string, string, string] { return &panicTick{} }, kstream.Named("ticker")).
		To("out", serde.String, serde.String)
	var got *kstream.ErrorContext
	d := mustDriver(t, b, kstream.ProcessingErrorHandler(func(ec *kstream.ErrorContext) kstream.Decision {
		c := *ec
		got = &c
		return kstream.Skip
	}))
	if err := kstreamtest.Input(d, "in", serde.String, serde.String).Pipe("a", "b", ts(1)); err != nil {
		t.Fatal(err)
	}
	if got == nil || got.Node != "ticker" || got.Topic != "" || !errors.Is(got.Err, kstream.ErrPanic) {
		t.Fatalf("handler got %+v, want a panic at node ticker with no topic", got)
	}
}

type panicTick struct{}

func (p *panicTick) Init(ctx kstream.ProcessorContext[string, string]) error {
	ctx.Schedule(1, kstream.StreamTime, func(time.Time) { panic("tick") })
	return nil
}
func (p *panicTick) Process(kstream.Record[string, string]) error { return nil }
func (p *panicTick) Close() error                                 { return nil }
