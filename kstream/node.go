package kstream

import (
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamwork-go/streamwork/serde"
)

// receiver is a node instance that takes records of type Record[K, V].
type receiver[K, V any] interface {
	nodeInstance
	receive(r Record[K, V])
}

// downstream forwards a node's output to its children, depth first.
type downstream[K, V any] struct {
	t        *task
	children []receiver[K, V]
	names    []string
}

func (d *downstream[K, V]) wire(t *task, n *node, children []nodeInstance) error {
	d.t = t
	d.children = make([]receiver[K, V], len(children))
	d.names = make([]string, len(children))
	for i, c := range children {
		rc, ok := c.(receiver[K, V])
		if !ok {
			return fmt.Errorf("%w: node %q cannot take the output of %q (type mismatch)", ErrTopology, n.children[i].name, n.name)
		}
		d.children[i] = rc
		d.names[i] = n.children[i].name
	}
	return nil
}

func (d *downstream[K, V]) forward(r Record[K, V]) {
	for _, c := range d.children {
		if d.t.failure != nil {
			return
		}
		c.receive(r)
	}
}

func (d *downstream[K, V]) forwardTo(from, name string, r Record[K, V]) {
	for i, c := range d.children {
		if d.names[i] == name {
			if d.t.failure == nil {
				c.receive(r)
			}
			return
		}
	}
	d.t.fail(from, ProcessingErrorKind, fmt.Errorf("%w: %q has no child %q", ErrUnknownChild, from, name))
}

// --- source ---

type sourceNode[K, V any] struct {
	name string
	t    *task
	ks   serde.Serde[K]
	vs   serde.Serde[V]
	ts   func(Record[K, V]) (time.Time, error) // nil: the record's own timestamp
	down downstream[K, V]
}

func (s *sourceNode[K, V]) init(t *task, n *node, children []nodeInstance) error {
	s.t, s.name = t, n.name
	return s.down.wire(t, n, children)
}

func (s *sourceNode[K, V]) close() error { return nil }

func (s *sourceNode[K, V]) decode(r *rawRecord) (Record[K, V], error) {
	var out Record[K, V]
	k, err := s.ks.Deserialize(r.Topic, r.Key)
	if err != nil {
		return out, &serde.DecodeError{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Key: true, Err: err}
	}
	out.Key, out.Timestamp = k, r.Timestamp
	if r.Value == nil {
		out.Tombstone = true
	} else {
		v, err := s.vs.Deserialize(r.Topic, r.Value)
		if err != nil {
			return out, &serde.DecodeError{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Err: err}
		}
		out.Value = v
	}
	out.Headers = fromKgoHeaders(r.Headers)
	return out, nil
}

func (s *sourceNode[K, V]) timestamp(r *rawRecord) (int64, error) {
	if s.ts == nil {
		return millis(r.Timestamp), nil
	}
	rec, err := s.decode(r)
	if err != nil {
		return 0, err
	}
	ts, err := s.ts(rec)
	if err != nil {
		return 0, err
	}
	return millis(ts), nil
}

func (s *sourceNode[K, V]) receiveRaw(r *rawRecord, ts int64) {
	rec, err := s.decode(r)
	if err == nil && s.ts != nil {
		var t time.Time
		t, err = s.ts(rec)
		if err == nil && t.UnixMilli() < 0 {
			err = fmt.Errorf("%w: %d", ErrInvalidTimestamp, t.UnixMilli())
		}
	}
	if err != nil {
		s.t.fail(s.name, DeserializationErrorKind, err)
		return
	}
	rec.Timestamp = time.UnixMilli(ts)
	prev := s.t.curNode
	s.t.curNode = s.name
	s.down.forward(rec)
	s.t.curNode = prev
}

// --- sink ---

type sinkNode[K, V any] struct {
	// internal: topic is an internal topic's short name, resolved at init.
	internal bool
	// roundRobin: spread records over the partitions in turn, whatever
	// their key (shuffle grouping).
	roundRobin bool
	name       string
	t          *task
	topic      string
	topicFn    func(Record[K, V]) string
	ks         serde.Serde[K]
	vs         serde.Serde[V]
}

func (s *sinkNode[K, V]) init(t *task, n *node, _ []nodeInstance) error {
	s.t, s.name = t, n.name
	s.topic = resolveTopic(t.env.appID, s.internal, s.topic)
	return nil
}

func (s *sinkNode[K, V]) close() error { return nil }

func (s *sinkNode[K, V]) receive(r Record[K, V]) {
	prev := s.t.curNode
	s.t.curNode = s.name
	defer func() { s.t.curNode = prev }()
	topic := s.topic
	if s.topicFn != nil {
		topic = s.topicFn(r)
		if topic == "" {
			s.t.fail(s.name, ProductionErrorKind, fmt.Errorf("%w: topic extractor returned an empty topic", ErrMissingTopic))
			return
		}
	}
	k, err := s.ks.Serialize(topic, r.Key)
	if err != nil {
		s.t.fail(s.name, ProductionErrorKind, fmt.Errorf("serialize key for topic %q: %w", topic, err))
		return
	}
	var v []byte
	if !r.Tombstone {
		v, err = s.vs.Serialize(topic, r.Value)
		if err != nil {
			s.t.fail(s.name, ProductionErrorKind, fmt.Errorf("serialize value for topic %q: %w", topic, err))
			return
		}
		if v == nil {
			v = []byte{} // a value, not a tombstone
		}
	}
	part := int32(-1)
	if s.roundRobin {
		part = partitionRoundRobin
	}
	s.t.env.collector.send(s.t, &kgo.Record{
		Topic: topic, Partition: part, Key: k, Value: v,
		Timestamp: r.Timestamp, Headers: toKgoHeaders(r.Headers),
	})
}

// --- stateless operators ---

// statelessNode runs fn for each record; fn forwards through d.
type statelessNode[KIn, VIn, KOut, VOut any] struct {
	name string
	t    *task
	fn   func(r Record[KIn, VIn], d *downstream[KOut, VOut])
	down downstream[KOut, VOut]
}

func (s *statelessNode[KIn, VIn, KOut, VOut]) init(t *task, n *node, children []nodeInstance) error {
	s.t, s.name = t, n.name
	return s.down.wire(t, n, children)
}

func (s *statelessNode[KIn, VIn, KOut, VOut]) close() error { return nil }

func (s *statelessNode[KIn, VIn, KOut, VOut]) receive(r Record[KIn, VIn]) {
	prev := s.t.curNode
	s.t.curNode = s.name
	s.fn(r, &s.down)
	s.t.curNode = prev
}

// --- user processors ---

type processorNode[KIn, VIn, KOut, VOut any] struct {
	name string
	t    *task
	proc Processor[KIn, VIn, KOut, VOut]
	down downstream[KOut, VOut]
}

func (p *processorNode[KIn, VIn, KOut, VOut]) init(t *task, n *node, children []nodeInstance) error {
	p.t, p.name = t, n.name
	if err := p.down.wire(t, n, children); err != nil {
		return err
	}
	return p.proc.Init(p)
}

func (p *processorNode[KIn, VIn, KOut, VOut]) close() error { return p.proc.Close() }

func (p *processorNode[KIn, VIn, KOut, VOut]) receive(r Record[KIn, VIn]) {
	prev := p.t.curNode
	p.t.curNode = p.name
	if err := p.proc.Process(r); err != nil {
		p.t.fail(p.name, ProcessingErrorKind, err)
	}
	p.t.curNode = prev
}

// Forward implements ProcessorContext.
func (p *processorNode[KIn, VIn, KOut, VOut]) Forward(r Record[KOut, VOut]) { p.down.forward(r) }

// ForwardTo implements ProcessorContext.
func (p *processorNode[KIn, VIn, KOut, VOut]) ForwardTo(child string, r Record[KOut, VOut]) {
	p.down.forwardTo(p.name, child, r)
}

// RecordMetadata implements ProcessorContext.
func (p *processorNode[KIn, VIn, KOut, VOut]) RecordMetadata() (RecordMetadata, bool) {
	if p.t.cur == nil {
		return RecordMetadata{}, false
	}
	return RecordMetadata{Topic: p.t.cur.Topic, Partition: p.t.cur.Partition, Offset: p.t.cur.Offset}, true
}

// Schedule implements ProcessorContext.
func (p *processorNode[KIn, VIn, KOut, VOut]) Schedule(interval time.Duration, typ PunctuationType, fn Punctuator) Cancellable {
	return p.t.schedulePunctuator(p.name, interval, typ, fn)
}

// TaskID implements ProcessorContext.
func (p *processorNode[KIn, VIn, KOut, VOut]) TaskID() TaskID { return p.t.id }

// ApplicationID implements ProcessorContext.
func (p *processorNode[KIn, VIn, KOut, VOut]) ApplicationID() string { return p.t.env.appID }

// StreamTime implements ProcessorContext.
func (p *processorNode[KIn, VIn, KOut, VOut]) StreamTime() time.Time {
	if p.t.streamTime < 0 {
		return time.Time{}
	}
	return time.UnixMilli(p.t.streamTime)
}

// WallClockTime implements ProcessorContext.
func (p *processorNode[KIn, VIn, KOut, VOut]) WallClockTime() time.Time { return p.t.env.now() }
