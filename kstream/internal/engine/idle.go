package engine

import (
	"slices"
	"time"
)

// Idle waits: Kafka Streams' max.task.idle.ms. A task that reads several
// partitions (co-partitioned topics) processes its records in timestamp
// order across them only as far as it has records of every partition: when
// one of them is empty, its next record may be older than what the task
// would process now. So, as PartitionGroup.readyToProcess in Kafka Streams
// 4.x, a task with an empty partition
//
//   - waits while that partition's lag is unknown (no fetch and no offset
//     lookup has told where it ends) or positive (Kafka has records the
//     task has not fetched yet);
//   - when the partition is caught up, waits up to Env.MaxTaskIdle from when
//     it first found it empty and caught up, then processes without it
//     (enforced processing: counted, and logged once per wait);
//   - with a negative MaxTaskIdle, or a single input partition, never
//     waits.
//
// The wall clock is Env.Now. The lag of a partition is its end offset (the
// last stable offset, as fetches and offset lookups report it:
// SetEndOffset) minus the task's position in it (the next buffered record,
// else one past the last processed one, else where fetching starts:
// SetStartOffset).

// position returns the offset of the next record the task will take from
// the partition, or -1 when unknown.
func (q *RecordQueue) position() int64 {
	switch {
	case q.Len() > 0:
		return q.recs[q.head].Offset
	case q.next >= 0:
		return q.next
	default:
		return q.start
	}
}

// lag returns how many records of the partition Kafka holds past the
// task's position, and false when the task does not know.
func (q *RecordQueue) lag() (int64, bool) {
	pos := q.position()
	if q.end < 0 || pos < 0 {
		return 0, false
	}
	return max(0, q.end-pos), true
}

// readiness is the outcome of one readiness check.
type readiness struct {
	ready    bool      // a record may be taken now
	enforced bool      // ready only because the idle wait for an empty partition is over
	until    time.Time // not ready: when an idle wait ends by itself (zero: none does)
}

// readiness checks whether the task may take a record at now, starting
// the idle wait of empty caught-up partitions that have none running and
// ending those of the others.
func (t *Task) readiness(now time.Time) readiness {
	if t.Env.MaxTaskIdle < 0 || len(t.Queues) == 1 {
		return readiness{ready: t.TotalBuffered() > 0}
	}
	var r readiness
	buffered, blocked := false, false
	for _, q := range t.Queues {
		if q.Len() > 0 {
			buffered = true
			q.idleDeadline, q.enforced = time.Time{}, false
			continue
		}
		if lag, known := q.lag(); !known || lag > 0 {
			blocked = true
			q.idleDeadline, q.enforced = time.Time{}, false
			continue
		}
		if q.idleDeadline.IsZero() {
			q.idleDeadline = now.Add(t.Env.MaxTaskIdle)
		}
		if now.Before(q.idleDeadline) {
			if r.until.IsZero() || q.idleDeadline.Before(r.until) {
				r.until = q.idleDeadline
			}
		} else {
			r.enforced = true
		}
	}
	switch {
	case !buffered || blocked:
		return readiness{}
	case !r.until.IsZero():
		return readiness{until: r.until}
	}
	r.ready = true
	return r
}

// enforce counts a record processed without the task's empty partitions
// and logs the partitions it newly gave up waiting for.
func (t *Task) enforce(now time.Time) {
	t.Env.Counters.EnforcedProcessing.Add(1)
	var empty, buffered []string
	for _, q := range t.Queues {
		switch {
		case q.Len() > 0:
			buffered = append(buffered, q.Topic)
		case !q.enforced && !q.idleDeadline.IsZero() && !now.Before(q.idleDeadline):
			q.enforced = true
			empty = append(empty, q.Topic)
		}
	}
	if len(empty) > 0 && t.Env.MaxTaskIdle > 0 {
		t.Env.Logger.Debug("kstream: idle time over; processing without the empty partitions, possibly out of timestamp order",
			"task", t.ID.String(), "partition", t.ID.Partition, "empty", empty, "buffered", buffered,
			"max_task_idle", t.Env.MaxTaskIdle)
	}
}

// Ready reports whether Process would take a record now. When it would not
// only because of idle waits, until is when the first of them ends by
// itself; zero when nothing but records or news of an end offset
// (SetEndOffset) can make the task ready.
func (t *Task) Ready() (ok bool, until time.Time) {
	r := t.readiness(t.Env.Now())
	return r.ready, r.until
}

// AwaitingLag returns the source topics of the task's empty partitions
// whose lag it does not know or knows to be positive, sorted: while one of
// them stays so, the task processes nothing (see Process). Nil when the
// task never waits (a negative Env.MaxTaskIdle, a single input partition).
func (t *Task) AwaitingLag() []string {
	if t.Env.MaxTaskIdle < 0 || len(t.Queues) == 1 {
		return nil
	}
	var out []string
	for _, q := range t.Queues {
		if q.Len() > 0 {
			continue
		}
		if lag, known := q.lag(); !known || lag > 0 {
			out = append(out, q.Topic)
		}
	}
	slices.Sort(out)
	return out
}

// SetEndOffset records the end offset of topic's partition as Kafka last
// reported it: the last stable offset of a fetch that returned records, or
// of an offset lookup. It only moves forward.
func (t *Task) SetEndOffset(topic string, end int64) {
	if q := t.ByTopic[topic]; q != nil && end > q.end {
		q.end = end
	}
}

// SetStartOffset records where fetching topic's partition starts (its
// committed offset, or where the consumer starts without one), while the
// task has taken no record of it; later it is ignored.
func (t *Task) SetStartOffset(topic string, start int64) {
	if q := t.ByTopic[topic]; q != nil && q.Len() == 0 && q.next < 0 {
		q.start = start
	}
}
