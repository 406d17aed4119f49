package kstream_test

import (
	"errors"
	"testing"
	"time"

	"github.com/streamwork-go/streamwork/kstream"
	"github.com/streamwork-go/streamwork/kstream/kstreamtest"
	"github.com/streamwork-go/streamwork/serde"
)

// Records whose event time is invalid — negative, or an extractor error —
// go to the deserialization error handler: skipped and counted, or failing
// the App; the others are processed.
func TestInvalidEventTimes(t *testing.T) {
	build := func(opts ...kstream.Opt) (*kstreamtest.Driver, *kstreamtest.InputTopic[string, int64]) {
		b := kstream.NewBuilder()
		kstream.From(b, "in", serde.String, serde.Int64,
			kstream.WithTimestamps(func(r kstream.Record[string, int64]) (time.Time, error) {
				if r.Value == 0 {
					return time.Time{}, errors.New("no time in the record")
				}
				return time.UnixMilli(r.Value), nil
			})).To("out", serde.String, serde.Int64)
		d := mustDriver(t, b, opts...)
		return d, kstreamtest.Input(d, "in", serde.String, serde.Int64)
	}
	d, in := build(kstream.DeserializationErrorHandler(kstream.LogAndSkip))
	for _, v := range []int64{5, -7, 0, 9} {
		if err := in.Pipe("k", v, ts(1)); err != nil {
			t.Fatalf("value %d: %v", v, err)
		}
	}
	equal(t, "processed", kstreamtest.Output(d, "out", serde.String, serde.Int64).KeyValues(), []kvi{{Key: "k", Value: 5}, {Key: "k", Value: 9}})
	equal(t, "skipped", d.Metrics().Skipped[kstream.DeserializationErrorKind], int64(2))

	_, in = build()
	if err := in.Pipe("k", -7, ts(1)); !errors.Is(err, kstream.ErrInvalidTimestamp) {
		t.Fatalf("negative event time with the default handler: %v, want ErrInvalidTimestamp", err)
	}
}
