package engine

import (
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// ShedPolicy is a source's load-shedding policy (kstream.ShedLoad): a
// record is dropped, when it is taken from its partition's queue for
// processing, if the partition's lag then exceeds MaxLag or its queue holds
// more than MaxBuffered records (zero: no bound). To, when set, is the topic
// the dropped records are written to.
type ShedPolicy struct {
	MaxLag      int64
	MaxBuffered int
	To          string
}

// Reasons a record was shed (the value of HeaderShedReason).
const (
	ShedReasonLag      = "lag"
	ShedReasonBuffered = "buffered"
)

// Header names of records written to a load-shedding topic, beside the
// original headers.
const (
	HeaderShedReason    = "streamwork.shed.reason"
	HeaderShedTopic     = "streamwork.shed.topic"
	HeaderShedPartition = "streamwork.shed.partition"
	HeaderShedOffset    = "streamwork.shed.offset"
)

// ShedLogInterval is the least time between two summary lines the App logs
// for one shedding source.
const ShedLogInterval = 5 * time.Second

// reason returns why r, just taken from q (so q holds q.Len()+1 records
// counting r), is to be shed, or "" when it is to be processed. The lag is
// the partition's known end minus r's offset: r and the records after it.
func (p *ShedPolicy) reason(q *RecordQueue, r *rawRecord) string {
	if p.MaxLag > 0 && q.end >= 0 && q.end-r.Offset > p.MaxLag {
		return ShedReasonLag
	}
	if p.MaxBuffered > 0 && q.Len()+1 > p.MaxBuffered {
		return ShedReasonBuffered
	}
	return ""
}

// shed drops r, taken from q, for reason: its offset is committed as if it
// had been processed, it is counted, logged in a summary, and written to
// the policy's topic through the task's collector (so under exactly-once
// it is in the transaction with the outputs).
func (t *Task) shed(q *RecordQueue, r *rawRecord, reason string) {
	q.next = r.Offset + 1
	q.epoch = r.LeaderEpoch
	t.Env.Counters.Shed.Add(1)
	if t.Env.OnShed != nil {
		t.Env.OnShed(q.Topic, q.Partition)
	}
	t.Env.ShedLog.note(t.Env.Logger, t.Env.Now(), q.sourceName, reason)
	if q.shed.To != "" {
		t.TxnDirty = true
		t.Env.Collector.Send(t, ShedRecord(q.shed.To, reason, r))
	}
}

// ShedRecord is the record written to topic for the shed record r: its key,
// value, headers and timestamp, and the HeaderShed* headers.
func ShedRecord(topic, reason string, r *kgo.Record) *kgo.Record {
	hs := make([]kgo.RecordHeader, 0, len(r.Headers)+4)
	hs = append(hs, r.Headers...)
	hs = append(hs,
		kgo.RecordHeader{Key: HeaderShedReason, Value: []byte(reason)},
		kgo.RecordHeader{Key: HeaderShedTopic, Value: []byte(r.Topic)},
		kgo.RecordHeader{Key: HeaderShedPartition, Value: []byte(strconv.FormatInt(int64(r.Partition), 10))},
		kgo.RecordHeader{Key: HeaderShedOffset, Value: []byte(strconv.FormatInt(r.Offset, 10))},
	)
	return &kgo.Record{Topic: topic, Partition: -1, Key: r.Key, Value: r.Value, Headers: hs, Timestamp: r.Timestamp}
}

// ShedLog logs what load shedding dropped: per source node, one line at
// most every ShedLogInterval, with the records dropped since the previous
// line. One per App, shared by its workers; a nil *ShedLog logs nothing.
type ShedLog struct {
	mu      sync.Mutex
	sources map[string]*shedSource
}

type shedSource struct {
	last          time.Time
	lag, buffered int64 // since the last line
	total         int64
}

// note counts one record shed by source for reason and logs the summary
// when the previous line is ShedLogInterval old (the first drop logs at
// once). Its mutex is a leaf lock.
func (l *ShedLog) note(logger *slog.Logger, now time.Time, source, reason string) {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.sources == nil {
		l.sources = make(map[string]*shedSource)
	}
	s := l.sources[source]
	if s == nil {
		s = new(shedSource)
		l.sources[source] = s
	}
	s.total++
	if reason == ShedReasonLag {
		s.lag++
	} else {
		s.buffered++
	}
	if !s.last.IsZero() && now.Sub(s.last) < ShedLogInterval {
		return
	}
	s.log(logger, now, source)
}

// Flush logs the summary of every source with drops not yet logged whose
// previous line is ShedLogInterval old, so that the end of a burst is
// reported without waiting for the next drop. The runtime calls it with its
// periodic stats, the test driver when its wall clock moves.
func (l *ShedLog) Flush(logger *slog.Logger, now time.Time) {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for name, s := range l.sources {
		if s.lag+s.buffered > 0 && now.Sub(s.last) >= ShedLogInterval {
			s.log(logger, now, name)
		}
	}
}

func (s *shedSource) log(logger *slog.Logger, now time.Time, source string) {
	logger.Warn("kstream: load shedding dropped records", "source", source,
		"dropped", s.lag+s.buffered, "lag", s.lag, "buffered", s.buffered, "total", s.total)
	s.last, s.lag, s.buffered = now, 0, 0
}
