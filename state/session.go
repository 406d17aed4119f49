package state

import (
	"fmt"
	"math"
	"time"
)

// SessionStore keeps one value per key and session, a session being a
// window [start, end] (both inclusive) of varying length, over a
// byte-level Store: the state of session-windowed aggregations. Kafka
// Streams' SessionStore, with its ReadOnlySessionStore fetches.
//
// Keys and values are bytes, as in Store; a nil value is Kafka's null.
// Times are milliseconds. Sessions are kept by end: stream time is the
// greatest session end Put and Remove have seen, and a session is live
// while its end is greater than stream time minus the retention period.
// Puts of sessions that are no longer live are dropped and reported;
// fetches never return them; segments of expired sessions are dropped with
// one Store.DeleteRange (see "Window and session stores" in the package
// doc).
//
// Like WindowStore it is a layer over a Store that holds only its keys:
// open it with NewSessionStore after the store is restored. Concurrency and
// lifetime are the Store's: one goroutine writes (Put, Remove), any number
// read, and using it after the store is closed panics with ErrClosed.
type SessionStore interface {
	// Name returns the name of the underlying store.
	Name() string

	// Put sets the value of key's session [start, end]. A nil value
	// removes it. Put first advances stream time to end if it is later,
	// dropping the segments that expire. It reports dropped, and writes
	// nothing, when the session is no longer live: end <= stream time -
	// retention. It fails with ErrInvalidSession if start > end. The store
	// copies key and value.
	Put(key []byte, start, end int64, value []byte) (dropped bool, err error)

	// Remove removes key's session [start, end]: Put with a nil value.
	Remove(key []byte, start, end int64) error

	// Fetch returns a copy of the value of key's session [start, end], or
	// nil, nil if there is none or it is no longer live. Kafka Streams'
	// fetchSession.
	Fetch(key []byte, start, end int64) ([]byte, error)

	// FindSessions returns key's live sessions that end at or after
	// earliestEnd and start at or before latestStart: those that overlap
	// [earliestEnd, latestStart] when earliestEnd <= latestStart, which is
	// how session windowing finds the sessions a record merges. They come
	// ascending by start, then end, across segments.
	FindSessions(key []byte, earliestEnd, latestStart int64) WindowIterator

	// BackwardFindSessions is FindSessions in descending order.
	BackwardFindSessions(key []byte, earliestEnd, latestStart int64) WindowIterator

	// FetchKey returns all of key's live sessions, ascending by start, then
	// end: Kafka Streams' fetch(key).
	FetchKey(key []byte) WindowIterator

	// BackwardFetchKey is FetchKey in descending order.
	BackwardFetchKey(key []byte) WindowIterator

	// FetchAll returns the live sessions of every key that end in
	// [earliestEnd, latestEnd] (Kafka Streams' findSessions over end
	// times), ordered by segment (the end divided by the segment interval,
	// rounded down), then key bytes, then start, then end.
	FetchAll(earliestEnd, latestEnd int64) WindowIterator

	// BackwardFetchAll is FetchAll in exactly the reverse order.
	BackwardFetchAll(earliestEnd, latestEnd int64) WindowIterator

	// All returns every live session, in FetchAll's order.
	All() WindowIterator

	// BackwardAll returns every live session in the reverse order.
	BackwardAll() WindowIterator

	// StreamTime returns the greatest session end Put or Remove has seen
	// (or that the store held when it was opened), math.MinInt64 before
	// any.
	StreamTime() int64

	// Config returns the store's configuration, with the segment interval
	// resolved.
	Config() SessionStoreConfig

	// Store returns the underlying byte-level store.
	Store() Store
}

// SessionStoreConfig configures a SessionStore. Durations are whole
// numbers of milliseconds.
type SessionStoreConfig struct {
	// Retention is how long sessions are kept: a session is dropped once
	// stream time passes its end by Retention. Required; at least
	// InactivityGap + Grace.
	Retention time.Duration

	// InactivityGap is the session windows' gap. Only Validate uses it.
	InactivityGap time.Duration

	// Grace is how long after a session ends records may still update it.
	// Only Validate uses it.
	Grace time.Duration

	// SegmentInterval is the span of session ends filed under one segment.
	// 0 means the greater of Retention/2 and DefaultMinSegmentInterval. As
	// for windows, it is part of the stored layout and Retention /
	// SegmentInterval may be at most MaxLiveSegments.
	SegmentInterval time.Duration
}

// Validate reports a configuration that NewSessionStore would refuse, with
// an error wrapping ErrWindowConfig.
func (c SessionStoreConfig) Validate() error {
	_, _, err := c.resolve()
	return err
}

func (c SessionStoreConfig) resolve() (ret, ival int64, err error) {
	switch {
	case c.InactivityGap < 0:
		return 0, 0, fmt.Errorf("%w: InactivityGap %v is negative", ErrWindowConfig, c.InactivityGap)
	case c.Grace < 0:
		return 0, 0, fmt.Errorf("%w: Grace %v is negative", ErrWindowConfig, c.Grace)
	case c.InactivityGap > math.MaxInt64-c.Grace:
		return 0, 0, fmt.Errorf("%w: InactivityGap %v plus Grace %v overflows", ErrWindowConfig, c.InactivityGap, c.Grace)
	}
	return segmentConfig(c.Retention, c.SegmentInterval, c.InactivityGap+c.Grace, "InactivityGap + Grace")
}

// sessionStore is the SessionStore over a Store.
type sessionStore struct {
	segmented
	cfg SessionStoreConfig
}

// NewSessionStore opens a session store over s, which must hold nothing but
// the keys of a session store with the same segment interval (or nothing).
// It validates cfg (errors wrap ErrWindowConfig), checks the store's keys
// (ErrCorruptWindowKey), recovers stream time from the stored sessions,
// reading the newest segment in full, and drops expired segments.
func NewSessionStore(s Store, cfg SessionStoreConfig) (SessionStore, error) {
	ret, ival, err := cfg.resolve()
	if err != nil {
		return nil, err
	}
	cfg.SegmentInterval = time.Duration(ival) * time.Millisecond
	ss := &sessionStore{cfg: cfg}
	ss.s, ss.retention, ss.interval, ss.tag, ss.field = s, ret, ival, tagSession, 1
	if err := ss.open(); err != nil {
		return nil, fmt.Errorf("state: session store %q: %w", s.Name(), err)
	}
	return ss, nil
}

// Name implements SessionStore.Name.
func (ss *sessionStore) Name() string { return ss.s.Name() }

// Store implements SessionStore.Store.
func (ss *sessionStore) Store() Store { return ss.s }

// Config implements SessionStore.Config.
func (ss *sessionStore) Config() SessionStoreConfig { return ss.cfg }

// StreamTime implements SessionStore.StreamTime.
func (ss *sessionStore) StreamTime() int64 { return ss.streamTime.Load() }

// Put implements SessionStore.Put.
func (ss *sessionStore) Put(key []byte, start, end int64, value []byte) (bool, error) {
	if start > end {
		return false, fmt.Errorf("%w: [%d, %d] in store %q", ErrInvalidSession, start, end, ss.s.Name())
	}
	prev, st := ss.observe(end)
	if end < ss.minLive(st) {
		checkOpen(ss.s)
		return true, nil
	}
	if err := ss.expire(st); err != nil {
		return false, err
	}
	if value == nil && end >= prev && st > ss.metaSt {
		// Removing the newest session: record stream time, which the
		// remaining sessions may no longer tell.
		if err := ss.writeMeta(st); err != nil {
			return false, err
		}
	}
	ss.buf = appendTimeKey(ss.buf[:0], tagSession, ss.segment(end), key, start, end)
	return false, ss.s.Put(ss.buf, value)
}

// Remove implements SessionStore.Remove.
func (ss *sessionStore) Remove(key []byte, start, end int64) error {
	_, err := ss.Put(key, start, end, nil)
	return err
}

// Fetch implements SessionStore.Fetch.
func (ss *sessionStore) Fetch(key []byte, start, end int64) ([]byte, error) {
	if start > end {
		return nil, fmt.Errorf("%w: [%d, %d] in store %q", ErrInvalidSession, start, end, ss.s.Name())
	}
	if lo, _ := ss.live(end, end); lo != end {
		checkOpen(ss.s)
		return nil, nil
	}
	return ss.s.Get(appendTimeKey(nil, tagSession, ss.segment(end), key, start, end))
}

// FindSessions implements SessionStore.FindSessions.
func (ss *sessionStore) FindSessions(key []byte, earliestEnd, latestStart int64) WindowIterator {
	return ss.find(key, earliestEnd, latestStart, false)
}

// BackwardFindSessions implements SessionStore.BackwardFindSessions.
func (ss *sessionStore) BackwardFindSessions(key []byte, earliestEnd, latestStart int64) WindowIterator {
	return ss.find(key, earliestEnd, latestStart, true)
}

// FetchKey implements SessionStore.FetchKey.
func (ss *sessionStore) FetchKey(key []byte) WindowIterator {
	return ss.find(key, math.MinInt64, math.MaxInt64, false)
}

// BackwardFetchKey implements SessionStore.BackwardFetchKey.
func (ss *sessionStore) BackwardFetchKey(key []byte) WindowIterator {
	return ss.find(key, math.MinInt64, math.MaxInt64, true)
}

// find scans key's sessions starting at or before latestStart in each live
// segment from earliestEnd's on, and merges them by start and end: a
// session of a later segment (a later end) may start earlier.
func (ss *sessionStore) find(key []byte, earliestEnd, latestStart int64, backward bool) WindowIterator {
	lo, hi := ss.live(earliestEnd, math.MaxInt64)
	if lo > hi {
		checkOpen(ss.s)
		return emptyWindows{}
	}
	var srcs []source
	for seg, last := ss.segment(lo), ss.segment(hi); ; seg++ {
		p := appendKeyPrefix(nil, tagSession, seg, key)
		end := PrefixEnd(appendInt64(p[:len(p):len(p)], latestStart))
		if backward {
			srcs = append(srcs, newRevSource(ss.s, p, end))
		} else {
			srcs = append(srcs, fwdSource{ss.s.Range(p, end)})
		}
		if seg == last {
			break
		}
	}
	keep := func(k *timeKey) bool { return k.b >= lo }
	return &timeIter{tag: tagSession, srcs: srcs, merge: len(srcs) > 1, backward: backward, keep: keep, session: true}
}

// FetchAll implements SessionStore.FetchAll.
func (ss *sessionStore) FetchAll(earliestEnd, latestEnd int64) WindowIterator {
	return ss.fetchAll(earliestEnd, latestEnd, false)
}

// BackwardFetchAll implements SessionStore.BackwardFetchAll.
func (ss *sessionStore) BackwardFetchAll(earliestEnd, latestEnd int64) WindowIterator {
	return ss.fetchAll(earliestEnd, latestEnd, true)
}

// All implements SessionStore.All.
func (ss *sessionStore) All() WindowIterator {
	return ss.fetchAll(math.MinInt64, math.MaxInt64, false)
}

// BackwardAll implements SessionStore.BackwardAll.
func (ss *sessionStore) BackwardAll() WindowIterator {
	return ss.fetchAll(math.MinInt64, math.MaxInt64, true)
}

// fetchAll scans the segments between earliestEnd and latestEnd in one
// range, keeping the sessions that end in [lo, hi].
func (ss *sessionStore) fetchAll(earliestEnd, latestEnd int64, backward bool) WindowIterator {
	lo, hi := ss.live(earliestEnd, latestEnd)
	if lo > hi {
		checkOpen(ss.s)
		return emptyWindows{}
	}
	start, end := ss.segStart(ss.segment(lo)), ss.segEnd(ss.segment(hi))
	var src source
	if backward {
		src = newRevSource(ss.s, start, end)
	} else {
		src = fwdSource{ss.s.Range(start, end)}
	}
	keep := func(k *timeKey) bool { return k.b >= lo && k.b <= hi }
	return &timeIter{tag: tagSession, srcs: []source{src}, backward: backward, keep: keep, session: true}
}
