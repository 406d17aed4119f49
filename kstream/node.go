package kstream

import "time"

// --- stateless operators ---

// statelessNode runs fn for each record; fn forwards through d.
type statelessNode[KIn, VIn, KOut, VOut any] struct {
	name string
	t    *task
	fn   func(r Record[KIn, VIn], d *downstream[KOut, VOut])
	down downstream[KOut, VOut]
}

func (s *statelessNode[KIn, VIn, KOut, VOut]) Init(t *task, n *node, children []nodeInstance) error {
	s.t, s.name = t, n.Name
	return s.down.Wire(t, n, children)
}

func (s *statelessNode[KIn, VIn, KOut, VOut]) Close() error { return nil }

func (s *statelessNode[KIn, VIn, KOut, VOut]) Receive(r Record[KIn, VIn]) {
	prev := s.t.CurNode
	s.t.CurNode = s.name
	s.fn(r, &s.down)
	s.t.CurNode = prev
}

// --- user processors ---

type processorNode[KIn, VIn, KOut, VOut any] struct {
	name string
	t    *task
	proc Processor[KIn, VIn, KOut, VOut]
	down downstream[KOut, VOut]
}

func (p *processorNode[KIn, VIn, KOut, VOut]) Init(t *task, n *node, children []nodeInstance) error {
	p.t, p.name = t, n.Name
	if err := p.down.Wire(t, n, children); err != nil {
		return err
	}
	return p.proc.Init(p)
}

func (p *processorNode[KIn, VIn, KOut, VOut]) Close() error { return p.proc.Close() }

func (p *processorNode[KIn, VIn, KOut, VOut]) Receive(r Record[KIn, VIn]) {
	prev := p.t.CurNode
	p.t.CurNode = p.name
	if err := p.proc.Process(r); err != nil {
		p.t.Fail(p.name, ProcessingErrorKind, err)
	}
	p.t.CurNode = prev
}

// Forward implements ProcessorContext.
func (p *processorNode[KIn, VIn, KOut, VOut]) Forward(r Record[KOut, VOut]) { p.down.Forward(r) }

// ForwardTo implements ProcessorContext.
func (p *processorNode[KIn, VIn, KOut, VOut]) ForwardTo(child string, r Record[KOut, VOut]) {
	p.down.ForwardTo(p.name, child, r)
}

// RecordMetadata implements ProcessorContext.
func (p *processorNode[KIn, VIn, KOut, VOut]) RecordMetadata() (RecordMetadata, bool) {
	if p.t.Cur == nil {
		return RecordMetadata{}, false
	}
	return RecordMetadata{Topic: p.t.Cur.Topic, Partition: p.t.Cur.Partition, Offset: p.t.Cur.Offset}, true
}

// Schedule implements ProcessorContext.
func (p *processorNode[KIn, VIn, KOut, VOut]) Schedule(interval time.Duration, typ PunctuationType, fn Punctuator) Cancellable {
	return p.t.SchedulePunctuator(p.name, interval, typ, fn)
}

// TaskID implements ProcessorContext.
func (p *processorNode[KIn, VIn, KOut, VOut]) TaskID() TaskID { return p.t.ID }

// ApplicationID implements ProcessorContext.
func (p *processorNode[KIn, VIn, KOut, VOut]) ApplicationID() string { return p.t.Env.AppID }

// StreamTime implements ProcessorContext.
func (p *processorNode[KIn, VIn, KOut, VOut]) StreamTime() time.Time {
	if p.t.StreamTime < 0 {
		return time.Time{}
	}
	return time.UnixMilli(p.t.StreamTime)
}

// WallClockTime implements ProcessorContext.
func (p *processorNode[KIn, VIn, KOut, VOut]) WallClockTime() time.Time { return p.t.Env.Now() }
