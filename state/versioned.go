package state

import (
	"fmt"
	"math"
	"time"
)

// VersionedStore keeps, per key, the versions of its value over time, over
// a byte-level Store: Kafka Streams' VersionedKeyValueStore (KIPs 889 and
// 914), the state of versioned tables and of stream-table joins that look
// a table up as of a record's timestamp.
//
// Each Put of key at timestamp ts starts a version valid from ts until the
// next version of key (by timestamp, not by arrival): versions are
// half-open intervals [validFrom, validTo), the latest one open-ended
// (validTo [LatestValidTo], math.MaxInt64). A nil value is a tombstone:
// the key has no value from ts on, until its next version. Puts may come out of order; a Put at
// a timestamp that already has a version replaces it.
//
// Times are milliseconds. Stream time is the greatest timestamp Put (or
// Delete) has accepted. The history retention bounds how far back the
// store answers: as-of queries for a time at or after stream time minus
// the history retention get exact answers; for earlier times only the
// latest version is returned, when it is valid then (the latest version of
// a key never expires). Puts older than stream time minus the history
// retention are dropped and reported, as in Kafka Streams, where the
// history retention is also the grace period. Old versions are filed in
// segments by their validTo and dropped a whole segment at a time with one
// Store.DeleteRange (see "Versioned stores" in the package doc).
//
// Like WindowStore it is a layer over a Store that holds only its keys:
// open it with NewVersionedStore after the store is restored, and open a
// new one whenever the store's contents are replaced. Only stream time is
// kept in memory. Concurrency and lifetime are the Store's: one goroutine
// writes (Put, Delete), any number read, and using it after the store is
// closed panics with ErrClosed. A Put writes up to three keys of the
// Store, in an order such that a concurrent Get or GetAsOf between them
// returns what it would before or after the Put.
type VersionedStore interface {
	// Name returns the name of the underlying store.
	Name() string

	// Put adds a version of key valid from ts; a nil value is a tombstone.
	// It reports dropped, and writes nothing, when ts < stream time -
	// history retention. Otherwise it returns the new version's validTo:
	// LatestValidTo if it is the latest version of key, else the timestamp
	// of the next version (Kafka Streams returns -1 for the first case and
	// Long.MIN_VALUE for a dropped put). The store copies key and value.
	Put(key, value []byte, ts int64) (validTo int64, dropped bool, err error)

	// Delete puts a tombstone for key at ts and returns the value valid at
	// ts before it, and that value's validFrom; prev is nil if there was
	// none. A dropped delete (ts too old, as for Put) returns nil and
	// dropped.
	Delete(key []byte, ts int64) (prev []byte, prevFrom int64, dropped bool, err error)

	// Get returns a copy of key's latest value and its timestamp, or ok
	// false when key has none (never put, or its latest version is a
	// tombstone).
	Get(key []byte) (value []byte, ts int64, ok bool, err error)

	// GetAsOf returns a copy of the value of key valid at asOf, with its
	// validity [validFrom, validTo) (validTo LatestValidTo for the latest
	// version), or ok false when there is none: asOf is before key's first
	// version, in a tombstone's validity, or before stream time - history
	// retention while the latest version starts after asOf.
	GetAsOf(key []byte, asOf int64) (value []byte, validFrom, validTo int64, ok bool, err error)

	// Versions returns the versions of key valid at some time in [from,
	// to] that GetAsOf would return for such a time, ascending by
	// validFrom: Kafka Streams' get(key, fromTime, toTime) (tombstones are
	// not returned). Empty if from > to. Unlike Kafka Streams, which also
	// returns versions that ended before the horizon until their segment
	// is dropped, it returns only what GetAsOf could, so results do not
	// depend on when segments go.
	Versions(key []byte, from, to int64) VersionedIterator

	// BackwardVersions is Versions in descending order.
	BackwardVersions(key []byte, from, to int64) VersionedIterator

	// StreamTime returns the greatest timestamp accepted (or that the
	// store held when it was opened), math.MinInt64 before any.
	StreamTime() int64

	// Config returns the store's configuration, with the segment interval
	// resolved.
	Config() VersionedStoreConfig

	// Store returns the underlying byte-level store.
	Store() Store
}

// LatestValidTo is the validTo of a key's latest version: its validity
// has no end.
const LatestValidTo = math.MaxInt64

// VersionedIterator walks versions of one key, pull style like Iterator.
// Value is valid until the next call to Next or Close and must not be
// modified. Err reports the error that ended the iteration and stays
// readable after Close; Close is idempotent. The iterator reads the latest
// value and opens its store iterators (one per segment it spans) when it is
// created; backward iterators re-read segments in passes as WindowIterator
// does. It is not safe for concurrent use.
type VersionedIterator interface {
	// Next advances to the next version and reports whether there is one.
	Next() bool
	// Value returns the current version's value (never nil).
	Value() []byte
	// ValidFrom returns the current version's timestamp.
	ValidFrom() int64
	// ValidTo returns the timestamp of the next version of the key, the
	// end (exclusive) of the current one's validity: LatestValidTo for the
	// latest version.
	ValidTo() int64
	// Err returns the error that stopped the iteration early, or nil.
	Err() error
	// Close releases the iterator and returns Err.
	Close() error
}

// VersionedStoreConfig configures a VersionedStore. Durations are whole
// numbers of milliseconds.
type VersionedStoreConfig struct {
	// HistoryRetention is how far behind stream time as-of queries are
	// answered and puts are accepted. Required: positive. Kafka Streams'
	// historyRetention.
	HistoryRetention time.Duration

	// SegmentInterval is the span of validTo timestamps filed under one
	// segment, the unit in which old versions are dropped. 0 means a
	// default tiered by HistoryRetention: max(HistoryRetention/3, 2s) up to
	// one minute, max(/5, 20s) up to five minutes, max(/12, 1min) up to an
	// hour, else max(/24, 5min). It is part of the stored layout:
	// reopening a store with another interval fails with
	// ErrCorruptWindowKey. HistoryRetention/SegmentInterval may be at most
	// MaxLiveSegments.
	SegmentInterval time.Duration
}

// Validate reports a configuration that NewVersionedStore would refuse,
// with an error wrapping ErrWindowConfig.
func (c VersionedStoreConfig) Validate() error {
	_, _, err := c.resolve()
	return err
}

func (c VersionedStoreConfig) resolve() (ret, ival int64, err error) {
	if c.HistoryRetention <= 0 {
		return 0, 0, fmt.Errorf("%w: HistoryRetention %v must be positive", ErrWindowConfig, c.HistoryRetention)
	}
	interval := c.SegmentInterval
	if interval == 0 {
		interval = defaultVersionedInterval(c.HistoryRetention)
	}
	return segmentConfig(c.HistoryRetention, interval, 0, "")
}

// defaultVersionedInterval returns the default segment interval for a
// history retention r, truncated to milliseconds.
func defaultVersionedInterval(r time.Duration) time.Duration {
	var d time.Duration
	switch {
	case r <= time.Minute:
		d = max(r/3, 2*time.Second)
	case r <= 5*time.Minute:
		d = max(r/5, 20*time.Second)
	case r <= time.Hour:
		d = max(r/12, time.Minute)
	default:
		d = max(r/24, 5*time.Minute)
	}
	return d.Truncate(time.Millisecond)
}

// versionedStore is the VersionedStore over a Store. Its history keys are
// the segmented layout tagVersioned with timestamps validTo, validFrom;
// latest values are keys tagLatest|user key (see the package doc).
type versionedStore struct {
	segmented
	cfg  VersionedStoreConfig
	hist int64  // history retention, ms
	lbuf []byte // latest key (writer only)
	vbuf []byte // value (writer only)
}

// version is one decoded history entry: [from, to) with its value, nil for
// a tombstone. from == to marks a tombstone that is the latest version of
// its key.
type version struct {
	from, to int64
	value    []byte
}

// History values start with a byte telling a value from a tombstone.
const (
	histTombstone byte = 0x00
	histValue     byte = 0x01
)

// NewVersionedStore opens a versioned store over s, which must hold nothing
// but the keys of a versioned store with the same segment interval (or
// nothing). It validates cfg (errors wrap ErrWindowConfig), checks that the
// store has no keys of other layouts (ErrCorruptWindowKey), recovers stream
// time from the newest segment and the meta key, and drops expired
// segments.
func NewVersionedStore(s Store, cfg VersionedStoreConfig) (VersionedStore, error) {
	ret, ival, err := cfg.resolve()
	if err != nil {
		return nil, err
	}
	cfg.SegmentInterval = time.Duration(ival) * time.Millisecond
	vs := &versionedStore{cfg: cfg, hist: ret}
	// Segments keep the entries whose validTo is at or after the horizon
	// (segmented keeps timestamps above stream time - retention): a
	// tombstone at the horizon is still the latest version of its key, and
	// a put at the horizon is accepted and must find it.
	vs.s, vs.retention, vs.interval, vs.tag, vs.extraTag = s, ret+1, ival, tagVersioned, tagLatest
	if err := vs.open(); err != nil {
		return nil, fmt.Errorf("state: versioned store %q: %w", s.Name(), err)
	}
	return vs, nil
}

// Name implements VersionedStore.Name.
func (vs *versionedStore) Name() string { return vs.s.Name() }

// Store implements VersionedStore.Store.
func (vs *versionedStore) Store() Store { return vs.s }

// Config implements VersionedStore.Config.
func (vs *versionedStore) Config() VersionedStoreConfig { return vs.cfg }

// StreamTime implements VersionedStore.StreamTime.
func (vs *versionedStore) StreamTime() int64 { return vs.streamTime.Load() }

// horizon returns stream time st minus the history retention, saturating:
// puts before it are dropped and as-of queries before it see only latest
// values.
func (vs *versionedStore) horizon(st int64) int64 {
	if st < math.MinInt64+vs.hist {
		return math.MinInt64
	}
	return st - vs.hist
}

func appendLatestKey(dst, key []byte) []byte { return append(append(dst, tagLatest), key...) }

func (vs *versionedStore) histKey(dst, key []byte, from, to int64) []byte {
	return appendTimeKey(dst, tagVersioned, vs.segment(to), key, to, from)
}

// Put implements VersionedStore.Put. A Put that makes the first version of
// a key (no latest value) looks for a tombstone to close in every segment
// from its timestamp's down to the horizon's, one short scan each (Kafka
// Streams' RocksDBVersionedStore similarly reads a key's entry segment by
// segment when its latest value store does not decide a put).
func (vs *versionedStore) Put(key, value []byte, ts int64) (int64, bool, error) {
	if ts < vs.horizon(vs.streamTime.Load()) {
		checkOpen(vs.s)
		return 0, true, nil
	}
	prev, st := vs.observe(ts)
	if err := vs.expire(st); err != nil {
		return 0, false, err
	}
	validTo, wroteAt, removedAt, err := vs.put(key, value, ts)
	if err != nil {
		return 0, false, err
	}
	// Stream time must be recoverable from the newest segment (the
	// greatest validTo there) or the meta key.
	if (ts > prev && !wroteAt) || (removedAt && ts == st && vs.metaSt < st) {
		if err := vs.writeMeta(st); err != nil {
			return 0, false, err
		}
	}
	return validTo, false, nil
}

// put writes the version and returns its validTo, whether it wrote a
// history key with validTo ts, and whether it removed one without
// replacing it.
func (vs *versionedStore) put(key, value []byte, ts int64) (validTo int64, wroteAt, removedAt bool, err error) {
	vs.lbuf = appendLatestKey(vs.lbuf[:0], key)
	lv, lfrom, hasL, err := vs.readLatest(vs.lbuf)
	if err != nil {
		return 0, false, false, err
	}
	if hasL && ts >= lfrom {
		if ts > lfrom {
			// The latest version ends at ts.
			if err := vs.putHist(key, lfrom, ts, lv); err != nil {
				return 0, false, false, err
			}
			wroteAt = true
		}
		if value != nil {
			return maxInt64, wroteAt, false, vs.putLatest(key, ts, value)
		}
		vs.lbuf = appendLatestKey(vs.lbuf[:0], key)
		if err := vs.s.Delete(vs.lbuf); err != nil {
			return 0, false, false, err
		}
		return maxInt64, true, false, vs.putHist(key, ts, ts, nil)
	}
	// The first version that ends after ts, or is a tombstone at ts.
	e, found, err := vs.next(key, ts, func(e *version) bool { return e.to == ts && e.from < ts })
	if err != nil {
		return 0, false, false, err
	}
	if found {
		switch {
		case e.from == ts && e.to == ts:
			// The latest version is a tombstone at ts.
			if value == nil {
				return maxInt64, false, false, nil
			}
			if err := vs.s.Delete(vs.histKey(nil, key, ts, ts)); err != nil {
				return 0, false, false, err
			}
			return maxInt64, false, true, vs.putLatest(key, ts, value)
		case e.from == ts:
			return e.to, false, false, vs.putHist(key, ts, e.to, value)
		case e.from < ts:
			// ts splits e. The new entries go first, so that readers in
			// between find e or its parts.
			if err := vs.putHist(key, e.from, ts, e.value); err != nil {
				return 0, false, false, err
			}
			if err := vs.putHist(key, ts, e.to, value); err != nil {
				return 0, false, false, err
			}
			return e.to, false, false, vs.s.Delete(vs.histKey(nil, key, e.from, e.to))
		default:
			return e.from, false, false, vs.putHist(key, ts, e.from, value)
		}
	}
	if hasL {
		return lfrom, false, false, vs.putHist(key, ts, lfrom, value)
	}
	// A new latest version: a tombstone that was the latest ends at ts.
	p, found, err := vs.prevVersion(key, ts)
	if err != nil {
		return 0, false, false, err
	}
	if found && p.from == p.to {
		if err := vs.putHist(key, p.from, ts, nil); err != nil {
			return 0, false, false, err
		}
		if err := vs.s.Delete(vs.histKey(nil, key, p.from, p.to)); err != nil {
			return 0, false, false, err
		}
		wroteAt = true
	}
	if value != nil {
		return maxInt64, wroteAt, false, vs.putLatest(key, ts, value)
	}
	return maxInt64, true, false, vs.putHist(key, ts, ts, nil)
}

func (vs *versionedStore) putLatest(key []byte, from int64, value []byte) error {
	vs.lbuf = appendLatestKey(vs.lbuf[:0], key)
	vs.vbuf = append(appendInt64(vs.vbuf[:0], from), value...)
	return vs.s.Put(vs.lbuf, vs.vbuf)
}

// putHist writes the history entry [from, to) of key; a nil value is a
// tombstone.
func (vs *versionedStore) putHist(key []byte, from, to int64, value []byte) error {
	vs.buf = vs.histKey(vs.buf[:0], key, from, to)
	if value == nil {
		vs.vbuf = append(vs.vbuf[:0], histTombstone)
	} else {
		vs.vbuf = append(append(vs.vbuf[:0], histValue), value...)
	}
	return vs.s.Put(vs.buf, vs.vbuf)
}

// latest reads key's latest value.
func (vs *versionedStore) latest(key []byte) (value []byte, from int64, ok bool, err error) {
	return vs.readLatest(appendLatestKey(nil, key))
}

// readLatest reads the latest value at lkey, a key tagLatest|user key.
func (vs *versionedStore) readLatest(lkey []byte) (value []byte, from int64, ok bool, err error) {
	v, err := vs.s.Get(lkey)
	if err != nil || v == nil {
		return nil, 0, false, err
	}
	if len(v) < 8 {
		return nil, 0, false, fmt.Errorf("%w: latest value of %x has %d bytes", ErrCorruptWindowKey, lkey[1:], len(v))
	}
	return v[8:], readInt64(v), true, nil
}

// decodeHist decodes a history entry; value aliases v.
func decodeHist(k, v []byte) (version, error) {
	tk, err := decodeTimeKey(k, tagVersioned)
	if err != nil {
		return version{}, err
	}
	e := version{from: tk.b, to: tk.a}
	switch {
	case len(v) == 1 && v[0] == histTombstone:
	case len(v) >= 1 && v[0] == histValue:
		e.value = v[1:]
	default:
		return version{}, corruptKey(k, "bad history value")
	}
	if e.from == e.to && e.value != nil {
		return version{}, corruptKey(k, "empty version with a value")
	}
	return e, nil
}

// next returns key's first history entry (by validTo) with validTo >= lo
// that skip (if not nil) does not skip, with its value copied.
func (vs *versionedStore) next(key []byte, lo int64, skip func(*version) bool) (version, bool, error) {
	st := vs.streamTime.Load()
	if lo > st {
		checkOpen(vs.s)
		return version{}, false, nil
	}
	for seg, last := vs.segment(lo), vs.segment(st); ; seg++ {
		e, found, err := vs.scanKey(key, seg, lo, maxInt64, false, skip)
		if err != nil || found {
			return e, found, err
		}
		if seg == last {
			return version{}, false, nil
		}
	}
}

// prevVersion returns key's last history entry with validTo < hi among the
// segments not yet expired.
func (vs *versionedStore) prevVersion(key []byte, hi int64) (version, bool, error) {
	if hi == math.MinInt64 {
		return version{}, false, nil
	}
	low := vs.segment(vs.minLive(vs.streamTime.Load()))
	for seg := vs.segment(hi - 1); seg >= low; seg-- {
		e, found, err := vs.scanKey(key, seg, math.MinInt64, hi-1, true, nil)
		if err != nil || found {
			return e, found, err
		}
		if seg == math.MinInt64 {
			break
		}
	}
	return version{}, false, nil
}

// scanKey scans key's entries in segment seg with validTo in [lo, hi] and
// returns the first one (or, with last, the last one) that skip does not
// skip.
func (vs *versionedStore) scanKey(key []byte, seg, lo, hi int64, last bool, skip func(*version) bool) (version, bool, error) {
	p := appendKeyPrefix(nil, tagVersioned, seg, key)
	end := PrefixEnd(p)
	if hi < maxInt64 {
		end = appendInt64(p[:len(p):len(p)], hi+1)
	}
	it := vs.s.Range(appendInt64(p[:len(p):len(p)], lo), end)
	defer it.Close()
	var out version
	found := false
	for it.Next() {
		e, err := decodeHist(it.Key(), it.Value())
		if err != nil {
			return version{}, false, err
		}
		if skip != nil && skip(&e) {
			continue
		}
		if e.value != nil {
			e.value = append([]byte{}, e.value...)
		}
		out, found = e, true
		if !last {
			break
		}
	}
	return out, found, it.Close()
}

// Delete implements VersionedStore.Delete.
func (vs *versionedStore) Delete(key []byte, ts int64) ([]byte, int64, bool, error) {
	if ts < vs.horizon(vs.streamTime.Load()) {
		checkOpen(vs.s)
		return nil, 0, true, nil
	}
	v, from, _, ok, err := vs.GetAsOf(key, ts)
	if err != nil {
		return nil, 0, false, err
	}
	if !ok {
		v, from = nil, 0
	}
	if _, _, err := vs.Put(key, nil, ts); err != nil {
		return nil, 0, false, err
	}
	return v, from, false, nil
}

// Get implements VersionedStore.Get.
func (vs *versionedStore) Get(key []byte) ([]byte, int64, bool, error) {
	v, from, ok, err := vs.latest(key)
	return v, from, ok, err
}

// GetAsOf implements VersionedStore.GetAsOf.
func (vs *versionedStore) GetAsOf(key []byte, asOf int64) ([]byte, int64, int64, bool, error) {
	lv, lfrom, hasL, err := vs.latest(key)
	if err != nil {
		return nil, 0, 0, false, err
	}
	if hasL && lfrom <= asOf {
		return lv, lfrom, maxInt64, true, nil
	}
	if asOf < vs.horizon(vs.streamTime.Load()) || asOf == maxInt64 {
		return nil, 0, 0, false, nil
	}
	e, found, err := vs.next(key, asOf+1, nil)
	if err != nil || !found || e.from > asOf || e.value == nil {
		return nil, 0, 0, false, err
	}
	return e.value, e.from, e.to, true, nil
}

// Versions implements VersionedStore.Versions.
func (vs *versionedStore) Versions(key []byte, from, to int64) VersionedIterator {
	return vs.versions(key, from, to, false)
}

// BackwardVersions implements VersionedStore.BackwardVersions.
func (vs *versionedStore) BackwardVersions(key []byte, from, to int64) VersionedIterator {
	return vs.versions(key, from, to, true)
}

// versions reads the latest value, then opens one source per segment that
// may hold history entries ending after max(from, horizon): those entries
// overlap [from, to] when they start at or before to.
func (vs *versionedStore) versions(key []byte, from, to int64, backward bool) VersionedIterator {
	if from > to {
		checkOpen(vs.s)
		return &versionIter{}
	}
	lv, lfrom, hasL, err := vs.latest(key)
	if err != nil {
		return &versionIter{err: err}
	}
	it := &versionIter{backward: backward, hi: to}
	if hasL && lfrom <= to {
		it.latest = &version{from: lfrom, to: maxInt64, value: lv}
	}
	st := vs.streamTime.Load()
	lo := max(from, vs.horizon(st))
	if lo > to || lo >= st {
		// No history entry ends after lo: they all end at or before st.
		return it
	}
	it.lo = lo
	for seg, last := vs.segment(lo+1), vs.segment(st); ; seg++ {
		p := appendKeyPrefix(nil, tagVersioned, seg, key)
		start, end := appendInt64(p[:len(p):len(p)], lo+1), PrefixEnd(p)
		if backward {
			it.srcs = append(it.srcs, newRevSource(vs.s, start, end))
		} else {
			it.srcs = append(it.srcs, fwdSource{vs.s.Range(start, end)})
		}
		if seg == last {
			break
		}
	}
	if backward {
		for i, j := 0, len(it.srcs)-1; i < j; i, j = i+1, j-1 {
			it.srcs[i], it.srcs[j] = it.srcs[j], it.srcs[i]
		}
	}
	return it
}

// versionIter concatenates the history sources of one key, keeping the
// entries that are not tombstones, end after lo and start at or before hi,
// and returns the latest version last (forward) or first (backward).
type versionIter struct {
	srcs     []source
	i        int
	backward bool
	lo, hi   int64
	latest   *version
	done     bool // latest returned
	cur      version
	err      error
	closed   bool
}

// Next advances to the next version.
func (it *versionIter) Next() bool {
	if it.closed || it.err != nil {
		return false
	}
	if it.backward && it.latest != nil && !it.done {
		it.done, it.cur = true, *it.latest
		return true
	}
	for it.i < len(it.srcs) {
		s := it.srcs[it.i]
		if !s.next() {
			if it.err = s.err(); it.err != nil {
				return false
			}
			it.i++
			continue
		}
		e, err := decodeHist(s.key(), s.value())
		if err != nil {
			it.err = err
			return false
		}
		if e.value == nil || e.to <= it.lo || e.from > it.hi {
			continue
		}
		it.cur = e
		return true
	}
	if !it.backward && it.latest != nil && !it.done {
		it.done, it.cur = true, *it.latest
		return true
	}
	return false
}

// Value returns the current version's value.
func (it *versionIter) Value() []byte { return it.cur.value }

// ValidFrom returns the current version's start.
func (it *versionIter) ValidFrom() int64 { return it.cur.from }

// ValidTo returns the current version's end.
func (it *versionIter) ValidTo() int64 { return it.cur.to }

// Err returns the error that stopped the iteration.
func (it *versionIter) Err() error { return it.err }

// Close closes the sources and returns Err.
func (it *versionIter) Close() error {
	if it.closed {
		return it.err
	}
	it.closed = true
	for _, s := range it.srcs {
		if err := s.close(); err != nil && it.err == nil {
			it.err = err
		}
	}
	it.srcs, it.latest, it.cur = nil, nil, version{}
	return it.err
}

// VersionedKeyOf decodes a key of a versioned store's underlying Store: the
// user key, and for a history entry its validity [validFrom, validTo)
// (validFrom == validTo for a tombstone that is the key's latest version);
// latest is true for a key's latest value, whose validFrom is in the value.
// ok is false for the store's meta key and keys of other layouts. The user
// key is a new slice.
func VersionedKeyOf(raw []byte) (key []byte, validFrom, validTo int64, latest, ok bool) {
	if len(raw) >= 1 && raw[0] == tagLatest {
		return append([]byte{}, raw[1:]...), 0, 0, true, true
	}
	k, err := decodeTimeKey(raw, tagVersioned)
	if err != nil {
		return nil, 0, 0, false, false
	}
	return appendUnescaped(nil, k.esc), k.b, k.a, false, true
}
