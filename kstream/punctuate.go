package kstream

import (
	"container/heap"
	"time"
)

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
func (q *punctuationQueue) mayPunctuate(t *task, now int64, typ PunctuationType) error {
	for len(q.items) > 0 && q.items[0].next <= now {
		s := heap.Pop(q).(*punctuationSchedule)
		if s.cancelled {
			continue
		}
		t.env.metrics.punctuations.Add(1)
		t.txnDirty = true
		t.curNode = s.node
		t.curTs = now
		t.failure = nil
		t.guardRecord(func() { s.fn(time.UnixMilli(now)) })
		t.curNode = ""
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
		if t.failure != nil {
			if err := t.handleFailure(nil); err != nil {
				return err
			}
		}
	}
	return nil
}

// schedulePunctuator registers fn for node. Stream-time schedules start at 0
// (so they fire at the first record); wall-clock ones an interval from now.
func (t *task) schedulePunctuator(node string, interval time.Duration, typ PunctuationType, fn Punctuator) Cancellable {
	iv := interval.Milliseconds()
	if iv < 1 {
		iv = 1
	}
	s := &punctuationSchedule{node: node, interval: iv, fn: fn}
	if typ == WallClockTime {
		s.next = millis(t.env.now()) + iv
		t.wallPunct.schedule(s)
	} else {
		s.next = 0
		t.streamPunct.schedule(s)
	}
	return s
}
