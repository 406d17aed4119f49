package state

import (
	"bytes"
	"fmt"
	"math"
	"sync/atomic"
	"time"
)

// Segments: window and session stores file their keys under segments of
// segInterval milliseconds of the timestamp they expire by (window start,
// session end). Stream time is the greatest such timestamp the store has
// seen; a timestamp is live while it is greater than stream time minus the
// retention period. A segment expires when all its timestamps are no longer
// live, and then the store drops it, together with every segment below it,
// with one DeleteRange.

const (
	// DefaultMinSegmentInterval is the smallest default segment interval:
	// by default a store's segment interval is the greater of half its
	// retention period and this (Kafka Streams' rule), so at most three
	// segments are live at a time.
	DefaultMinSegmentInterval = 60 * time.Second

	// MaxLiveSegments bounds retention / segment interval. A fetch opens one
	// iterator per live segment it spans.
	MaxLiveSegments = 1024

	// seqBlock is how many sequence numbers a duplicates window store
	// reserves at a time in its meta key.
	seqBlock = 1 << 16
)

// segmented is what window and session stores share: the store, the
// layout, stream time, segment expiry, recovery and the meta key.
type segmented struct {
	s         Store
	tag       byte
	retention int64 // ms
	interval  int64 // ms
	// field is the timestamp that segments and expiry go by: 0 for a (the
	// window start, the end of a version's validity), 1 for b (the
	// session end).
	field int
	// extraTag, when not 0, is a second tag of the layout's keys, tag+1,
	// kept outside the segments (the latest values of a versioned store).
	extraTag byte

	// streamTime is written by the writer, read by everyone.
	streamTime atomic.Int64

	// Writer only.
	liveFrom    int64 // the segments below it are known to be empty
	metaSt      int64 // stream time in the meta key
	seq         int64 // next sequence number (tagWindowDups)
	seqReserved int64 // sequence numbers below it are reserved in the meta key
	buf         []byte
}

// floorDiv returns a / b rounded toward negative infinity; b > 0.
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b < 0 {
		q--
	}
	return q
}

func (g *segmented) segment(ts int64) int64 { return floorDiv(ts, g.interval) }

// minLive returns the smallest live timestamp at stream time st.
func (g *segmented) minLive(st int64) int64 {
	if st < math.MinInt64+g.retention-1 {
		return math.MinInt64
	}
	return st - g.retention + 1
}

// live returns the bounds of the live timestamps, [lo, hi], clipped to
// [from, to]; lo > hi when there are none.
func (g *segmented) live(from, to int64) (lo, hi int64) {
	st := g.streamTime.Load()
	return max(from, g.minLive(st)), min(to, st)
}

func (g *segmented) metaKey() []byte { return []byte{g.tag | metaBit} }

// dataStart and dataEnd bound the data keys of the layout.
func (g *segmented) dataStart() []byte { return []byte{g.tag} }
func (g *segmented) dataEnd() []byte   { return []byte{g.tag + 1} }

// segStart returns the first key of segment seg, and segEnd the first key
// after it.
func (g *segmented) segStart(seg int64) []byte { return appendSegPrefix(nil, g.tag, seg) }
func (g *segmented) segEnd(seg int64) []byte {
	if seg == math.MaxInt64 {
		return g.dataEnd()
	}
	return g.segStart(seg + 1)
}

// observe advances stream time to ts if ts is later, and returns the stream
// time before and after.
func (g *segmented) observe(ts int64) (prev, st int64) {
	prev = g.streamTime.Load()
	if ts > prev {
		g.streamTime.Store(ts)
		return prev, ts
	}
	return prev, prev
}

// expire drops the segments that hold no live timestamp at stream time st,
// all of them with one DeleteRange, when st has moved into a later segment
// since the last call and there is anything to drop.
func (g *segmented) expire(st int64) error {
	minSeg := g.segment(g.minLive(st))
	if minSeg <= g.liveFrom {
		return nil
	}
	bound := g.segStart(minSeg)
	it := g.s.Range(g.dataStart(), bound)
	found := it.Next()
	if err := it.Close(); err != nil {
		return err
	}
	if found {
		if err := g.s.DeleteRange(g.dataStart(), bound); err != nil {
			return err
		}
	}
	g.liveFrom = minSeg
	return nil
}

// writeMeta records stream time st and the sequence numbers reserved in the
// meta key, which goes to the changelog like any key. Stores write it only
// when their data alone would not tell a later open the stream time (a
// delete of a window or session at stream time) or the next sequence
// number (once every seqBlock duplicates).
func (g *segmented) writeMeta(st int64) error {
	v := appendInt64(appendInt64(make([]byte, 0, 16), st), g.seqReserved)
	if err := g.s.Put(g.metaKey(), v); err != nil {
		return err
	}
	g.metaSt = st
	return nil
}

// open checks that the store holds keys of this layout only and recovers
// stream time: the greater of the meta key's and the greatest timestamp in
// the newest segment, whose keys it checks against the segment interval.
// Then it drops the expired segments. For tagWindowDups it also recovers
// the next sequence number.
func (g *segmented) open() error {
	g.liveFrom, g.metaSt = math.MinInt64, math.MinInt64
	if err := g.checkForeign(); err != nil {
		return err
	}
	st := int64(math.MinInt64)
	mv, err := g.s.Get(g.metaKey())
	if err != nil {
		return err
	}
	if mv != nil {
		if len(mv) != 16 {
			return fmt.Errorf("%w: meta value of %d bytes", ErrCorruptWindowKey, len(mv))
		}
		st, g.seqReserved = readInt64(mv), readInt64(mv[8:])
		g.metaSt, g.seq = st, g.seqReserved
	}
	last, found, err := g.lastSegment()
	if err != nil {
		return err
	}
	if found {
		end := g.segEnd(last)
		err := g.scan(g.segStart(last), end, func(k timeKey) {
			st = max(st, g.ts(k))
		})
		if err != nil {
			return err
		}
	}
	if g.tag == tagWindowDups && found && mv == nil {
		// Duplicates without a meta key: find the greatest sequence number
		// the slow way, reading every key.
		err := g.scan(g.dataStart(), g.dataEnd(), func(k timeKey) {
			g.seq = max(g.seq, k.b+1)
		})
		if err != nil {
			return err
		}
		g.seqReserved = g.seq
	}
	g.streamTime.Store(st)
	return g.expire(st)
}

// ts returns the timestamp k expires by.
func (g *segmented) ts(k timeKey) int64 {
	if g.field == 0 {
		return k.a
	}
	return k.b
}

// scan decodes the keys in [from, to), checks that each is in the segment
// of its timestamp, and passes it to fn.
func (g *segmented) scan(from, to []byte, fn func(timeKey)) error {
	it := g.s.Range(from, to)
	defer it.Close()
	for it.Next() {
		k, err := decodeTimeKey(it.Key(), g.tag)
		if err != nil {
			return err
		}
		if want := g.segment(g.ts(k)); k.seg != want {
			return fmt.Errorf("%w: key %x is in segment %d, its timestamp %d in %d: written with another segment interval than %dms?",
				ErrCorruptWindowKey, it.Key(), k.seg, g.ts(k), want, g.interval)
		}
		fn(k)
	}
	return it.Close()
}

// checkForeign fails if the store has keys outside the layout's data range
// other than its meta key.
func (g *segmented) checkForeign() error {
	it := g.s.Range(nil, g.dataStart())
	found := it.Next()
	var k []byte
	if found {
		k = bytes.Clone(it.Key())
	}
	if err := it.Close(); err != nil {
		return err
	}
	if found {
		return g.foreign(k)
	}
	end := g.dataEnd()
	if g.extraTag != 0 {
		end = []byte{g.extraTag + 1}
	}
	it = g.s.Range(end, nil)
	defer it.Close()
	for it.Next() {
		if !bytes.Equal(it.Key(), g.metaKey()) {
			return g.foreign(it.Key())
		}
	}
	return it.Close()
}

func (g *segmented) foreign(k []byte) error {
	return corruptKey(k, fmt.Sprintf("store %q holds a key of another layout than 0x%02x", g.s.Name(), g.tag))
}

// lastSegment returns the greatest segment id with a key, found by binary
// search over segment ids with one short scan per step.
func (g *segmented) lastSegment() (seg int64, found bool, err error) {
	first := func(from []byte) (int64, bool, error) {
		it := g.s.Range(from, g.dataEnd())
		defer it.Close()
		if !it.Next() {
			return 0, false, it.Close()
		}
		seg, err := segmentOf(it.Key(), g.tag)
		return seg, err == nil, err
	}
	lo, found, err := first(g.dataStart())
	if !found || err != nil {
		return 0, false, err
	}
	// A key is in segment lo; none is above hi.
	hi := int64(math.MaxInt64)
	for lo < hi {
		mid := lo + int64((uint64(hi)-uint64(lo))/2) + 1 // in (lo, hi]
		s, ok, err := first(g.segStart(mid))
		if err != nil {
			return 0, false, err
		}
		if ok {
			lo = s
		} else {
			hi = mid - 1
		}
	}
	return lo, true, nil
}

// toMillis converts d to milliseconds for a config field, refusing
// fractions of a millisecond.
func toMillis(field string, d time.Duration) (int64, error) {
	if d%time.Millisecond != 0 {
		return 0, fmt.Errorf("%w: %s %v is not a whole number of milliseconds", ErrWindowConfig, field, d)
	}
	return d.Milliseconds(), nil
}

// segmentConfig validates retention and the segment interval (0: the
// default) and returns both in milliseconds. minRetention is what retention
// must cover (window size or inactivity gap, plus grace), described by
// what.
func segmentConfig(retention, interval, minRetention time.Duration, what string) (ret, ival int64, err error) {
	switch {
	case retention <= 0:
		return 0, 0, fmt.Errorf("%w: Retention %v must be positive", ErrWindowConfig, retention)
	case retention < minRetention:
		return 0, 0, fmt.Errorf("%w: Retention %v is shorter than %s (%v)", ErrWindowConfig, retention, what, minRetention)
	case interval < 0:
		return 0, 0, fmt.Errorf("%w: SegmentInterval %v is negative", ErrWindowConfig, interval)
	}
	if ret, err = toMillis("Retention", retention); err != nil {
		return 0, 0, err
	}
	if interval == 0 {
		interval = max(retention/2, DefaultMinSegmentInterval).Truncate(time.Millisecond)
	}
	if ival, err = toMillis("SegmentInterval", interval); err != nil {
		return 0, 0, err
	}
	if ret/ival > MaxLiveSegments {
		return 0, 0, fmt.Errorf("%w: SegmentInterval %v is too short for Retention %v: at most %d segments may be live",
			ErrWindowConfig, interval, retention, MaxLiveSegments)
	}
	return ret, ival, nil
}
