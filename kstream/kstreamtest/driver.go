package kstreamtest

import (
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamwork-go/streamwork/kstream"
	"github.com/streamwork-go/streamwork/kstream/internal/testhook"
	"github.com/streamwork-go/streamwork/serde"
)

// Driver runs one topology. It is not safe for concurrent use.
type Driver struct {
	d testhook.Driver
}

// DefaultStart is the driver's wall-clock time at New unless StartAt is
// given: 2020-01-01T00:00:00Z.
var DefaultStart = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)

// New starts a driver for t. opts are kstream App options: the application
// id (default "kstreamtest"), error handlers, the logger, CacheMaxBytes and
// MaxTaskIdle apply; options about brokers, workers and commits are
// accepted and ignored.
//
// Every input is caught up with what was piped into it, so with
// MaxTaskIdle 0 (the default) or NoTaskIdle a piped record is processed at
// once. With a positive MaxTaskIdle, a task that reads several topics keeps
// a piped record while one of its topics has nothing buffered, until that
// topic gets a record (then both are processed in timestamp order) or
// AdvanceWallClock passes the end of the wait, as in Kafka Streams'
// TopologyTestDriver.
func New(t *kstream.Topology, opts ...kstream.Opt) (*Driver, error) {
	return NewAt(t, DefaultStart, opts...)
}

// NewAt is New with the wall clock starting at start.
func NewAt(t *kstream.Topology, start time.Time, opts ...kstream.Opt) (*Driver, error) {
	anyOpts := make([]any, len(opts))
	for i, o := range opts {
		anyOpts[i] = o
	}
	d, err := testhook.NewDriver(t, start, anyOpts)
	if err != nil {
		return nil, err
	}
	return &Driver{d: d}, nil
}

// PipeRaw feeds one record of raw bytes to topic and processes it fully
// (unless a MaxTaskIdle wait keeps it; see New). It returns the error of a
// record whose error handler decided to fail.
func (d *Driver) PipeRaw(topic string, key, value []byte, ts time.Time, headers ...kstream.Header) error {
	r := &kgo.Record{Topic: topic, Key: key, Value: value, Timestamp: ts}
	for _, h := range headers {
		r.Headers = append(r.Headers, kgo.RecordHeader{Key: h.Key, Value: h.Value})
	}
	return d.d.Pipe(r)
}

// AdvanceWallClock moves the wall clock forward by dur, fires the
// wall-clock punctuators that are due (each at most once, as in the
// runtime) and processes the records whose MaxTaskIdle wait is over.
func (d *Driver) AdvanceWallClock(dur time.Duration) error { return d.d.AdvanceWallClock(dur) }

// Now returns the driver's wall-clock time.
func (d *Driver) Now() time.Time { return d.d.Now() }

// Metrics returns the counters of the driver's tasks.
func (d *Driver) Metrics() kstream.Metrics { return d.d.Metrics().(kstream.Metrics) }

// Close closes every task (and so every processor).
func (d *Driver) Close() error { return d.d.Close() }

// RawRecord is a record as written to an output topic.
type RawRecord struct {
	Key, Value []byte
	Timestamp  time.Time
	Headers    []kstream.Header
}

// TakeRaw removes and returns every record written to topic so far.
func (d *Driver) TakeRaw(topic string) []RawRecord {
	recs := d.d.TakeOutput(topic)
	out := make([]RawRecord, len(recs))
	for i, r := range recs {
		out[i] = RawRecord{Key: r.Key, Value: r.Value, Timestamp: r.Timestamp}
		for _, h := range r.Headers {
			out[i].Headers = append(out[i].Headers, kstream.Header{Key: h.Key, Value: h.Value})
		}
	}
	return out
}

// InputTopic pipes typed records into one topic.
type InputTopic[K, V any] struct {
	d     *Driver
	topic string
	ks    serde.Serde[K]
	vs    serde.Serde[V]
}

// Input returns a typed writer for topic.
func Input[K, V any](d *Driver, topic string, ks serde.Serde[K], vs serde.Serde[V]) *InputTopic[K, V] {
	return &InputTopic[K, V]{d: d, topic: topic, ks: ks, vs: vs}
}

// PipeTombstone feeds a record with a null value (a delete, for tables).
func (in *InputTopic[K, V]) PipeTombstone(key K, ts time.Time) error {
	return in.PipeRecord(kstream.Record[K, V]{Key: key, Timestamp: ts, Tombstone: true})
}

// Pipe feeds one record and processes it fully.
func (in *InputTopic[K, V]) Pipe(key K, value V, ts time.Time) error {
	return in.PipeRecord(kstream.Record[K, V]{Key: key, Value: value, Timestamp: ts})
}

// PipeRecord feeds one record, with its headers, and processes it fully.
func (in *InputTopic[K, V]) PipeRecord(r kstream.Record[K, V]) error {
	k, err := in.ks.Serialize(in.topic, r.Key)
	if err != nil {
		return fmt.Errorf("kstreamtest: serialize key for %q: %w", in.topic, err)
	}
	var v []byte
	if !r.Tombstone {
		v, err = in.vs.Serialize(in.topic, r.Value)
		if err != nil {
			return fmt.Errorf("kstreamtest: serialize value for %q: %w", in.topic, err)
		}
		if v == nil {
			v = []byte{}
		}
	}
	return in.d.PipeRaw(in.topic, k, v, r.Timestamp, r.Headers...)
}

// OutputTopic reads typed records from one topic.
type OutputTopic[K, V any] struct {
	d     *Driver
	topic string
	ks    serde.Serde[K]
	vs    serde.Serde[V]
}

// Output returns a typed reader for topic.
func Output[K, V any](d *Driver, topic string, ks serde.Serde[K], vs serde.Serde[V]) *OutputTopic[K, V] {
	return &OutputTopic[K, V]{d: d, topic: topic, ks: ks, vs: vs}
}

// Records removes and returns every record written to the topic so far,
// decoded, in the order written. It fails the decoding loudly: a record
// that does not decode is an error.
func (out *OutputTopic[K, V]) Records() ([]kstream.Record[K, V], error) {
	raw := out.d.TakeRaw(out.topic)
	res := make([]kstream.Record[K, V], 0, len(raw))
	for i, r := range raw {
		k, err := out.ks.Deserialize(out.topic, r.Key)
		if err != nil {
			return nil, fmt.Errorf("kstreamtest: decode key of output %d of %q: %w", i, out.topic, err)
		}
		rec := kstream.Record[K, V]{Key: k, Timestamp: r.Timestamp, Headers: r.Headers, Tombstone: r.Value == nil}
		if !rec.Tombstone {
			if rec.Value, err = out.vs.Deserialize(out.topic, r.Value); err != nil {
				return nil, fmt.Errorf("kstreamtest: decode value of output %d of %q: %w", i, out.topic, err)
			}
		}
		res = append(res, rec)
	}
	return res, nil
}

// KeyValues is Records without timestamps, headers and tombstone flags (a
// tombstone shows as the zero value). It panics on a
// record that does not decode (a test bug).
func (out *OutputTopic[K, V]) KeyValues() []kstream.KeyValue[K, V] {
	recs, err := out.Records()
	if err != nil {
		panic(err)
	}
	kvs := make([]kstream.KeyValue[K, V], len(recs))
	for i, r := range recs {
		kvs[i] = kstream.KeyValue[K, V]{Key: r.Key, Value: r.Value}
	}
	return kvs
}
