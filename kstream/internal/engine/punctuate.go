package engine

import (
	"container/heap"
	"time"
)

// Punctuator is a scheduled callback. ts is the stream time or wall-clock
// time at which it fired.
type Punctuator func(ts time.Time)

// PunctuationType selects the clock a punctuator follows.
type PunctuationType int

const (
	// StreamTime punctuators follow the task's stream time. The first one
	// fires at the first record (schedules align to multiples of the
	// interval from the epoch); when stream time jumps over several
	// intervals, the punctuator fires once and re-aligns to the next
	// multiple of the interval.
	StreamTime PunctuationType = iota
	// WallClockTime punctuators fire an interval after they were scheduled
	// and then every interval; a delay of several intervals fires once and
	// re-aligns.
	WallClockTime
)

// String returns "stream-time" or "wall-clock-time".
func (p PunctuationType) String() string {
	if p == WallClockTime {
		return "wall-clock-time"
	}
	return "stream-time"
}

// Cancellable cancels a scheduled punctuator.
type Cancellable interface {
	// Cancel stops the punctuator. It is safe to call more than once, also
	// from inside the punctuator itself.
	Cancel()
}

// punctuationSchedule is one scheduled punctuator.
type punctuationSchedule struct {
	node      string
	next      int64 // ms
	interval  int64 // ms
	fn        Punctuator
	cancelled bool
	seq       int // tie-break: scheduling order
}

// Cancel implements Cancellable.
func (s *punctuationSchedule) Cancel() { s.cancelled = true }

// punctuationQueue orders schedules by their next time.
type punctuationQueue struct {
	items []*punctuationSchedule
	seq   int
}

func (q *punctuationQueue) Len() int { return len(q.items) }
func (q *punctuationQueue) Less(i, j int) bool {
	a, b := q.items[i], q.items[j]
	if a.next != b.next {
		return a.next < b.next
	}
	return a.seq < b.seq
}
func (q *punctuationQueue) Swap(i, j int) { q.items[i], q.items[j] = q.items[j], q.items[i] }
func (q *punctuationQueue) Push(x any)    { q.items = append(q.items, x.(*punctuationSchedule)) }
func (q *punctuationQueue) Pop() any {
	n := len(q.items) - 1
	it := q.items[n]
	q.items[n] = nil
	q.items = q.items[:n]
	return it
}

func (q *punctuationQueue) schedule(s *punctuationSchedule) {
	s.seq = q.seq
	q.seq++
	heap.Push(q, s)
}

// mayPunctuate fires every schedule due at now (ms). A schedule that missed
// several intervals fires once and moves to the first multiple of its
// interval after now.
func (q *punctuationQueue) mayPunctuate(t *Task, now int64, typ PunctuationType) error {
	for len(q.items) > 0 && q.items[0].next <= now {
		s := heap.Pop(q).(*punctuationSchedule)
		if s.cancelled {
			continue
		}
		t.Env.Counters.Punctuations.Add(1)
		t.TxnDirty = true
		t.CurNode = s.node
		t.CurTs = now
		t.Failure = nil
		t.GuardRecord(func() { s.fn(time.UnixMilli(now)) })
		t.CurNode = ""
		if !s.cancelled {
			next := s.next + s.interval
			if now >= next {
				next += s.interval * ((now-next)/s.interval + 1)
			}
			s.next = next
			s.seq = q.seq
			q.seq++
			heap.Push(q, s)
		}
		if t.Failure != nil {
			if err := t.HandleFailure(nil); err != nil {
				return err
			}
		}
	}
	return nil
}

// schedulePunctuator registers fn for node. Stream-time schedules start at 0
// (so they fire at the first record); wall-clock ones an interval from now.
func (t *Task) SchedulePunctuator(node string, interval time.Duration, typ PunctuationType, fn Punctuator) Cancellable {
	iv := interval.Milliseconds()
	if iv < 1 {
		iv = 1
	}
	s := &punctuationSchedule{node: node, interval: iv, fn: fn}
	if typ == WallClockTime {
		s.next = Millis(t.Env.Now()) + iv
		t.wallPunct.schedule(s)
	} else {
		s.next = 0
		t.streamPunct.schedule(s)
	}
	return s
}
