package kstream

import (
	"fmt"
	"time"

	"github.com/streamwork-go/streamwork/state"
)

// Windowed is a key together with its window: the key of a windowed
// aggregation's results. Times are milliseconds since the epoch. For time
// windows End is exclusive ([Start, End)); for sliding and session windows
// both bounds are inclusive ([Start, End]); for count windows they are
// record numbers of the key, [Start, End) (see TumblingCount).
type Windowed[K any] = state.Windowed[K]

// NoGrace is a grace period of zero: a window closes as soon as stream time
// reaches its end, and every record that arrives after that is late. Every
// window constructor takes the grace explicitly; pass NoGrace to choose
// none.
const NoGrace time.Duration = 0

// Windows says how a windowed aggregation assigns records to windows. Make
// one with Tumbling, Hopping, Sliding, Session, TumblingCount or
// HoppingCount.
type Windows interface {
	// String describes the windows, for Describe and errors.
	String() string
	kind() windowKind
}

type windowKind int

const (
	kindTime windowKind = iota
	kindSliding
	kindSession
	kindCount
)

// TimeWindows are fixed-size windows aligned to the epoch: tumbling (one
// window per record) or hopping (overlapping, a new one every advance).
// A window is [start, start+size); a record at t belongs to every window
// with start <= t < start+size, and windows never start before 0.
type TimeWindows struct {
	size, advance, grace int64 // ms
}

// Tumbling returns tumbling time windows of size: [0, size), [size,
// 2*size), ... A window accepts records until stream time reaches its end
// plus grace (see NoGrace).
func Tumbling(size, grace time.Duration) TimeWindows {
	return TimeWindows{size: millis(size), advance: millis(size), grace: millis(grace)}
}

// Hopping returns hopping time windows of size that start every advance
// (advance <= size): with size 5s and advance 3s, a record at 4s belongs
// to [0s, 5s) and [3s, 8s).
func Hopping(size, advance, grace time.Duration) TimeWindows {
	return TimeWindows{size: millis(size), advance: millis(advance), grace: millis(grace)}
}

func (w TimeWindows) kind() windowKind { return kindTime }

// String implements Windows.
func (w TimeWindows) String() string {
	if w.advance == w.size {
		return fmt.Sprintf("tumbling windows of %v, grace %v", ms(w.size), ms(w.grace))
	}
	return fmt.Sprintf("hopping windows of %v advancing by %v, grace %v", ms(w.size), ms(w.advance), ms(w.grace))
}

func (w TimeWindows) validate() error {
	switch {
	case w.size <= 0:
		return fmt.Errorf("Tumbling/Hopping: window size %v must be at least 1ms", ms(w.size))
	case w.advance <= 0 || w.advance > w.size:
		return fmt.Errorf("Hopping: window advance %v must be in [1ms, size %v]", ms(w.advance), ms(w.size))
	case w.grace < 0:
		return fmt.Errorf("Tumbling/Hopping: grace %v is negative", ms(w.grace))
	}
	return nil
}

// starts calls fn with the start of every window that holds a record at
// ts, ascending.
func (w TimeWindows) starts(ts int64, fn func(start int64)) {
	first := max(0, ts-w.size+w.advance) / w.advance * w.advance
	for s := first; s <= ts; s += w.advance {
		fn(s)
	}
}

// SlidingWindows are windows of a maximum time difference between records,
// both bounds inclusive, defined by the records themselves (Kafka Streams'
// sliding windows): a record at t creates the window [t-difference, t]
// that it ends, and, once a later record is within reach, the window
// [t+1, t+1+difference] that starts just after it. Every distinct set of
// records that fit within the difference is one window's aggregate.
type SlidingWindows struct {
	diff, grace int64
}

// Sliding returns sliding windows with the maximum time difference between
// records of one window.
func Sliding(difference, grace time.Duration) SlidingWindows {
	return SlidingWindows{diff: millis(difference), grace: millis(grace)}
}

func (w SlidingWindows) kind() windowKind { return kindSliding }

// String implements Windows.
func (w SlidingWindows) String() string {
	return fmt.Sprintf("sliding windows of difference %v, grace %v", ms(w.diff), ms(w.grace))
}

func (w SlidingWindows) validate() error {
	switch {
	case w.diff <= 0:
		return fmt.Errorf("Sliding: window difference %v must be at least 1ms", ms(w.diff))
	case w.grace < 0:
		return fmt.Errorf("Sliding: grace %v is negative", ms(w.grace))
	}
	return nil
}

// SessionWindows group a key's records into sessions of activity: records
// less than gap apart (inclusive) are in one session, [first, last]. A
// record that falls between two sessions within gap of both merges them.
type SessionWindows struct {
	gap, grace int64
}

// Session returns session windows with the inactivity gap.
func Session(gap, grace time.Duration) SessionWindows {
	return SessionWindows{gap: millis(gap), grace: millis(grace)}
}

func (w SessionWindows) kind() windowKind { return kindSession }

// retention is how long the session store keeps a session after stream
// time passes its end: gap + grace (Kafka Streams'), one more millisecond
// with EmitFinal, so that a session is still there when it becomes final
// (stream time past end + gap + grace).
func (w SessionWindows) retention(emitFinal bool) int64 {
	if emitFinal {
		return w.gap + w.grace + 1
	}
	return w.gap + w.grace
}

// String implements Windows.
func (w SessionWindows) String() string {
	return fmt.Sprintf("session windows with gap %v, grace %v", ms(w.gap), ms(w.grace))
}

func (w SessionWindows) validate() error {
	switch {
	case w.gap <= 0:
		return fmt.Errorf("Session: gap %v must be at least 1ms", ms(w.gap))
	case w.grace < 0:
		return fmt.Errorf("Session: grace %v is negative", ms(w.grace))
	}
	return nil
}

// CountWindows group a key's records by number: tumbling (each window
// holds size consecutive records of its key) or hopping (a new window
// starts every advance records). A window closes when it has size records.
// Their Windowed bounds are record numbers of the key, counted from 0 in
// processing order: the first window of TumblingCount(3) is [0, 3). Count
// windows have no grace and no late records: they go by arrival, not by
// event time.
type CountWindows struct {
	size, advance int64
}

// TumblingCount returns tumbling count windows of size records.
func TumblingCount(size int) CountWindows {
	return CountWindows{size: int64(size), advance: int64(size)}
}

// HoppingCount returns count windows of size records, a new one starting
// every advance records (advance <= size).
func HoppingCount(size, advance int) CountWindows {
	return CountWindows{size: int64(size), advance: int64(advance)}
}

func (w CountWindows) kind() windowKind { return kindCount }

// String implements Windows.
func (w CountWindows) String() string {
	if w.advance == w.size {
		return fmt.Sprintf("tumbling count windows of %d records", w.size)
	}
	return fmt.Sprintf("hopping count windows of %d records advancing by %d", w.size, w.advance)
}

func (w CountWindows) validate() error {
	switch {
	case w.size <= 0:
		return fmt.Errorf("count window size %d must be positive", w.size)
	case w.advance <= 0 || w.advance > w.size:
		return fmt.Errorf("count window advance %d must be in [1, size %d]", w.advance, w.size)
	case w.size/w.advance > maxOpenCountWindows:
		return fmt.Errorf("count windows of %d advancing by %d keep more than %d windows open per key", w.size, w.advance, maxOpenCountWindows)
	}
	return nil
}

// maxOpenCountWindows bounds the windows a key has open at once under
// hopping count windows (size / advance).
const maxOpenCountWindows = 1024

func ms(v int64) time.Duration { return time.Duration(v) * time.Millisecond }

// millis converts a window's duration to whole milliseconds, rounding
// down: a negative duration shorter than a millisecond stays negative (-1),
// so validation rejects it rather than reading it as 0.
func millis(d time.Duration) int64 {
	v := d.Milliseconds()
	if d < 0 && d%time.Millisecond != 0 {
		v--
	}
	return v
}

// EmitFinal makes a windowed aggregation emit one result per window, when
// the window closes (stream time reaches its end plus grace; for a session,
// when stream time passes its end + gap + grace, after which no record
// merges into it; for count windows, when it has all its records), instead
// of every update: Kafka
// Streams' EmitStrategy.onWindowClose. Which windows were emitted is kept
// in a changelogged store of its own ("<store>-emit"), so that a window is
// emitted once across restarts and rebalances. Only windowed aggregations
// read this option.
func EmitFinal() NodeOpt {
	return nodeOptFunc(func(c *nodeCfg) { c.emitFinal = true })
}

// LateRecordsTo makes a windowed aggregation write the records it drops as
// late to topic (a side output), as they were read, with headers saying why:
// streamwork.late.reason, streamwork.late.window.start and
// streamwork.late.window.end (ms), streamwork.late.stream.time and the
// source headers of a dead letter (topic, partition, offset, task). Late
// records are counted in Metrics.LateRecords and logged at debug level
// whether or not they are written. Only windowed aggregations read this
// option.
func LateRecordsTo(topic string) NodeOpt {
	return nodeOptFunc(func(c *nodeCfg) { c.lateTopic = topic })
}

// CloseWindowsWhenIdle lets a windowed aggregation's windows close on a
// quiet input: once no record has reached the aggregation for idle of wall
// -clock time, its stream time advances with the wall clock, as if event
// time had kept pace with it since the last record (Flink's watermark
// idleness). With EmitFinal, windows then close and are emitted even when
// traffic stops; a record that arrives later with an older timestamp may
// find its window closed, and is late. Each advance is counted in
// Metrics.IdleWindowAdvances. The check runs as a wall-clock punctuator
// every idle/4 (at least 10ms, at most 1s). Only time, sliding and session
// windows read this option.
func CloseWindowsWhenIdle(idle time.Duration) NodeOpt {
	return nodeOptFunc(func(c *nodeCfg) { c.idleClose = idle })
}

// WindowedStream is a grouped stream with windows, ready for a windowed
// aggregation: WindowedCount, WindowedReduce, WindowedAggregate, or
// SessionAggregate for session windows.
type WindowedStream[K, V any] struct {
	g GroupedStream[K, V]
	w Windows
}

// WindowedBy windows g: its aggregations aggregate each key per window.
func WindowedBy[K, V any](g GroupedStream[K, V], w Windows) WindowedStream[K, V] {
	if g.s.b == nil {
		panic("kstream: WindowedBy of a zero GroupedStream")
	}
	if w == nil {
		g.s.b.errorf("%w: WindowedBy with nil windows", ErrTopology)
	}
	return WindowedStream[K, V]{g: g, w: w}
}

// Unwindowed turns the windowed keys of s into their plain keys, for a sink
// whose readers do not decode windowed keys (to keep the window, write s
// with TimeWindowedSerde or SessionWindowedSerde instead). Like SelectKey,
// it marks the stream's keys as changed.
func Unwindowed[K, V any](s Stream[Windowed[K], V], opts ...NodeOpt) Stream[K, V] {
	return SelectKey(s, func(w Windowed[K], _ V) K { return w.Key }, opts...)
}
