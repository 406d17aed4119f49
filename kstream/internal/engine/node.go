package engine

import (
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamwork-go/streamwork/serde"
)

// Receiver is a node instance that takes records of type Record[K, V].
type Receiver[K, V any] interface {
	Instance
	Receive(r Record[K, V])
}

// Downstream forwards a node's output to its children, depth first.
type Downstream[K, V any] struct {
	t        *Task
	Children []Receiver[K, V]
	names    []string
	// self and kids are the statistics of the node and of its children
	// (see stats.go).
	self *NodeStats
	kids []*NodeStats
}

func (d *Downstream[K, V]) Wire(t *Task, n *Node, children []Instance) error {
	d.t = t
	d.Children = make([]Receiver[K, V], len(children))
	d.names = make([]string, len(children))
	d.self = t.NodeStat(n)
	d.kids = make([]*NodeStats, len(children))
	for i, c := range children {
		rc, ok := c.(Receiver[K, V])
		if !ok {
			return fmt.Errorf("%w: node %q cannot take the output of %q (type mismatch)", ErrTopology, n.Children[i].Name, n.Name)
		}
		d.Children[i] = rc
		d.names[i] = n.Children[i].Name
		d.kids[i] = t.NodeStat(n.Children[i])
	}
	return nil
}

// Task returns the task the node runs in.
func (d *Downstream[K, V]) Task() *Task { return d.t }

// ForwardIndex sends r to the i-th child only (if there is one and the
// record has not failed).
func (d *Downstream[K, V]) ForwardIndex(i int, r Record[K, V]) {
	if i < len(d.Children) && d.t.Failure == nil {
		d.self.Out++
		d.deliver(i, r)
	}
}

func (d *Downstream[K, V]) Forward(r Record[K, V]) {
	if d.t.Failure != nil {
		return
	}
	d.self.Out++
	for i := range d.Children {
		if d.t.Failure != nil {
			return
		}
		d.deliver(i, r)
	}
}

func (d *Downstream[K, V]) ForwardTo(from, name string, r Record[K, V]) {
	for i := range d.Children {
		if d.names[i] == name {
			if d.t.Failure == nil {
				d.self.Out++
				d.deliver(i, r)
			}
			return
		}
	}
	d.t.Fail(from, ProcessingErrorKind, fmt.Errorf("%w: %q has no child %q", ErrUnknownChild, from, name))
}

// deliver hands r to child i, counting it in; on a timed record (see
// stats.go) it charges the child's time to the child and takes it out of
// this node's own time.
func (d *Downstream[K, V]) deliver(i int, r Record[K, V]) {
	k := d.kids[i]
	k.In++
	if !d.t.timing {
		d.Children[i].Receive(r)
		return
	}
	start := time.Now()
	d.Children[i].Receive(r)
	el := time.Since(start)
	k.Time += el
	d.self.Time -= el
}

// --- source ---

type SourceNode[K, V any] struct {
	Name string
	t    *Task
	Ks   serde.Serde[K]
	Vs   serde.Serde[V]
	TS   func(Record[K, V]) (time.Time, error) // nil: the record's own timestamp
	down Downstream[K, V]
}

func (s *SourceNode[K, V]) Init(t *Task, n *Node, children []Instance) error {
	s.t, s.Name = t, n.Name
	return s.down.Wire(t, n, children)
}

func (s *SourceNode[K, V]) Close() error { return nil }

func (s *SourceNode[K, V]) Decode(r *rawRecord) (Record[K, V], error) {
	var out Record[K, V]
	k, err := s.Ks.Deserialize(r.Topic, r.Key)
	if err != nil {
		return out, &serde.DecodeError{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Key: true, Err: err}
	}
	out.Key, out.Timestamp = k, r.Timestamp
	if r.Value == nil {
		out.Tombstone = true
	} else {
		v, err := s.Vs.Deserialize(r.Topic, r.Value)
		if err != nil {
			return out, &serde.DecodeError{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Err: err}
		}
		out.Value = v
	}
	out.Headers = FromKgoHeaders(r.Headers)
	return out, nil
}

func (s *SourceNode[K, V]) Timestamp(r *rawRecord) (int64, error) {
	if s.TS == nil {
		return Millis(r.Timestamp), nil
	}
	rec, err := s.Decode(r)
	if err != nil {
		return 0, err
	}
	ts, err := s.TS(rec)
	if err != nil {
		return 0, err
	}
	return Millis(ts), nil
}

func (s *SourceNode[K, V]) ReceiveRaw(r *rawRecord, ts int64) {
	rec, err := s.Decode(r)
	if err == nil && s.TS != nil {
		var t time.Time
		t, err = s.TS(rec)
		if err == nil && t.UnixMilli() < 0 {
			err = fmt.Errorf("%w: %d", ErrInvalidTimestamp, t.UnixMilli())
		}
	}
	if err != nil {
		s.t.Fail(s.Name, DeserializationErrorKind, err)
		return
	}
	rec.Timestamp = time.UnixMilli(ts)
	prev := s.t.CurNode
	s.t.CurNode = s.Name
	s.down.Forward(rec)
	s.t.CurNode = prev
}

// --- sink ---

type SinkNode[K, V any] struct {
	// internal: topic is an internal topic's short name, resolved at init.
	Internal bool
	// roundRobin: spread records over the partitions in turn, whatever
	// their key (shuffle grouping).
	RoundRobin bool
	Name       string
	t          *Task
	Topic      string
	TopicFn    func(Record[K, V]) string
	Ks         serde.Serde[K]
	Vs         serde.Serde[V]
	stats      *NodeStats
	// ka and va are Ks and Vs when they implement serde.Appender: their
	// encodings go into the buffer allocated with the record.
	ka serde.Appender[K]
	va serde.Appender[V]
	// hint is how many bytes the previous record's appended key and value
	// took.
	hint int
}

// sinkRecordN is a produced record and the buffer its key and value are
// appended to, allocated together: one allocation per record instead of
// three when both serdes are serde.Appenders. The sink picks the smallest
// that held its previous record (newRecord).
type (
	sinkRecord64 struct {
		rec kgo.Record
		buf [64]byte
	}
	sinkRecord128 struct {
		rec kgo.Record
		buf [128]byte
	}
	sinkRecord256 struct {
		rec kgo.Record
		buf [256]byte
	}
)

// newRecord returns a record to produce and an empty buffer for its key and
// value, sized for the sink's previous record: in the record's own
// allocation up to 256 bytes, in one of its own beyond.
func newRecord(hint int) (*kgo.Record, []byte) {
	switch {
	case hint <= 64:
		r := new(sinkRecord64)
		return &r.rec, r.buf[:0]
	case hint <= 128:
		r := new(sinkRecord128)
		return &r.rec, r.buf[:0]
	case hint <= 256:
		r := new(sinkRecord256)
		return &r.rec, r.buf[:0]
	default:
		return new(kgo.Record), make([]byte, 0, hint)
	}
}

func (s *SinkNode[K, V]) Init(t *Task, n *Node, _ []Instance) error {
	s.t, s.Name = t, n.Name
	s.ka, _ = s.Ks.(serde.Appender[K])
	s.va, _ = s.Vs.(serde.Appender[V])
	s.stats = t.NodeStat(n)
	s.Topic = ResolveTopic(t.Env.AppID, s.Internal, s.Topic)
	return nil
}

func (s *SinkNode[K, V]) Close() error { return nil }

func (s *SinkNode[K, V]) Receive(r Record[K, V]) {
	prev := s.t.CurNode
	s.t.CurNode = s.Name
	defer func() { s.t.CurNode = prev }()
	topic := s.Topic
	if s.TopicFn != nil {
		topic = s.TopicFn(r)
		if topic == "" {
			s.t.Fail(s.Name, ProductionErrorKind, fmt.Errorf("%w: topic extractor returned an empty topic", ErrMissingTopic))
			return
		}
	}
	rec, buf := newRecord(s.hint)
	var k, v []byte
	var err error
	kEnd := -1 // where the key ends in buf, when it was appended there
	if s.ka != nil {
		buf, err = s.ka.Append(buf, topic, r.Key)
		kEnd = len(buf)
	} else {
		k, err = s.Ks.Serialize(topic, r.Key)
	}
	if err != nil {
		s.t.Fail(s.Name, ProductionErrorKind, fmt.Errorf("serialize key for topic %q: %w", topic, err))
		return
	}
	if !r.Tombstone {
		if s.va != nil {
			start := len(buf)
			buf, err = s.va.Append(buf, topic, r.Value)
			v = buf[start:len(buf):len(buf)] // non-nil: a value, even an empty one
		} else {
			v, err = s.Vs.Serialize(topic, r.Value)
		}
		if err != nil {
			s.t.Fail(s.Name, ProductionErrorKind, fmt.Errorf("serialize value for topic %q: %w", topic, err))
			return
		}
		if v == nil {
			v = []byte{} // a value, not a tombstone
		}
	}
	if kEnd >= 0 {
		k = buf[:kEnd:kEnd] // after the value's append, which may have moved buf
	}
	s.hint = len(buf)
	part := int32(-1)
	if s.RoundRobin {
		part = PartitionRoundRobin
	}
	*rec = kgo.Record{
		Topic: topic, Partition: part, Key: k, Value: v,
		Timestamp: r.Timestamp, Headers: ToKgoHeaders(r.Headers),
	}
	s.t.Env.Collector.Send(s.t, rec)
	s.stats.Out++
}
