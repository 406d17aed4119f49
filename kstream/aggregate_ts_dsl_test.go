package kstream_test

import (
	"testing"

	"github.com/streamwork-go/streamwork/kstream"
	"github.com/streamwork-go/streamwork/kstream/kstreamtest"
	"github.com/streamwork-go/streamwork/serde"
)

type tsOut struct {
	Key   string
	Value int64
	TS    int64
}

func tsOutputs(t *testing.T, d *kstreamtest.Driver, topic string) []tsOut {
	t.Helper()
	recs, err := kstreamtest.Output(d, topic, serde.String, serde.Int64).Records()
	if err != nil {
		t.Fatal(err)
	}
	out := make([]tsOut, len(recs))
	for i, r := range recs {
		out[i] = tsOut{r.Key, r.Value, r.Timestamp.UnixMilli()}
	}
	return out
}

// An aggregation's result timestamp is the larger of the new record's and
// the previous aggregate's (Kafka Streams' KStreamAggregate), with the
// record cache on and off, and across a stream and a table aggregation.
func TestAggregateResultTimestampIsMax(t *testing.T) {
	for _, cache := range []int64{0, 1 << 20} {
		b := kstream.NewBuilder()
		in := kstream.From(b, "in", serde.String, serde.Int64)
		kstream.Count(kstream.GroupByKey(in, serde.String, serde.Int64)).ToStream().To("counts", serde.String, serde.Int64)
		users := kstream.TableFrom(b, "users", serde.String, serde.String)
		kstream.TableCount(kstream.TableGroupBy(users, func(_, city string) (string, string) { return city, city }, serde.String, serde.String)).
			ToStream().To("per-city", serde.String, serde.Int64)
		d := mustDriver(t, b, kstream.CacheMaxBytes(cache))
		nums := kstreamtest.Input(d, "in", serde.String, serde.Int64)
		pipe(t, nums, "a", 1, 7000)
		pipe(t, nums, "a", 1, 2000)
		pipe(t, nums, "a", 1, 9000)
		equal(t, "stream aggregation", tsOutputs(t, d, "counts"), []tsOut{{"a", 1, 7000}, {"a", 2, 7000}, {"a", 3, 9000}})

		u := kstreamtest.Input(d, "users", serde.String, serde.String)
		for _, r := range []struct {
			user, city string
			at         int64
		}{{"ann", "oslo", 5000}, {"bob", "oslo", 3000}, {"ann", "rome", 4000}} {
			if err := u.Pipe(r.user, r.city, ts(r.at)); err != nil {
				t.Fatal(err)
			}
		}
		// bob joins oslo at 3000: oslo's aggregate keeps 5000. ann moves to
		// rome at 4000: oslo is subtracted (still 5000), rome starts at 4000.
		equal(t, "table aggregation", tsOutputs(t, d, "per-city"), []tsOut{
			{"oslo", 1, 5000}, {"oslo", 2, 5000}, {"oslo", 1, 5000}, {"rome", 1, 4000},
		})
		d.Close()
	}
}
