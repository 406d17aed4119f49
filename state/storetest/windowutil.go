package storetest

import (
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/streamwork-go/streamwork/state"
)

// win is a window or session copied out of a state.WindowIterator.
type win struct {
	k          string
	start, end int64
	v          string
}

func (w win) String() string { return fmt.Sprintf("%q[%d,%d]=%q", w.k, w.start, w.end, w.v) }

// collectWindows drains it, closes it and fails t on an error.
func collectWindows(t testing.TB, it state.WindowIterator) []win {
	t.Helper()
	var out []win
	for it.Next() {
		out = append(out, win{string(it.Key()), it.Start(), it.End(), string(it.Value())})
	}
	if err := it.Close(); err != nil {
		t.Fatalf("window iterator: %v", err)
	}
	return out
}

func reversed[T any](s []T) []T {
	out := slices.Clone(s)
	slices.Reverse(out)
	return out
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b < 0 {
		q--
	}
	return q
}

// countingStore counts the writes that reach the store under a window or
// session store, to check that expiry drops segments with DeleteRange and
// never key by key.
type countingStore struct {
	state.Store
	puts, deletes, deleteRanges int
}

func (c *countingStore) Put(k, v []byte) error {
	if v == nil {
		c.deletes++
	} else {
		c.puts++
	}
	return c.Store.Put(k, v)
}

func (c *countingStore) Delete(k []byte) error {
	c.deletes++
	return c.Store.Delete(k)
}

func (c *countingStore) DeleteRange(from, to []byte) error {
	c.deleteRanges++
	return c.Store.DeleteRange(from, to)
}

// dataKeys counts the store's keys below 0x80: the data keys of a window or
// session store (its meta key is a single byte >= 0x80; see the package doc
// of state).
func dataKeys(t testing.TB, s state.Store) int {
	t.Helper()
	return len(collect(t, s.Range(nil, []byte{0x80})))
}

// Window test configuration, in milliseconds: retention 100, windows of 10,
// segments of 50 (floor(start/50)), so three segments are live at most.
const (
	tRetention = 100
	tSize      = 10
	tInterval  = 50
)

func ms(n int64) time.Duration { return time.Duration(n) * time.Millisecond }

var testWindowCfg = state.WindowStoreConfig{
	Retention:       ms(tRetention),
	WindowSize:      ms(tSize),
	SegmentInterval: ms(tInterval),
}

var testSessionCfg = state.SessionStoreConfig{
	Retention:       ms(tRetention),
	InactivityGap:   ms(tSize),
	SegmentInterval: ms(tInterval),
}

func openWindows(t testing.TB, s state.Store, cfg state.WindowStoreConfig) state.WindowStore {
	t.Helper()
	ws, err := state.NewWindowStore(s, cfg)
	if err != nil {
		t.Fatalf("NewWindowStore: %v", err)
	}
	return ws
}

func openSessions(t testing.TB, s state.Store, cfg state.SessionStoreConfig) state.SessionStore {
	t.Helper()
	ss, err := state.NewSessionStore(s, cfg)
	if err != nil {
		t.Fatalf("NewSessionStore: %v", err)
	}
	return ss
}

func mustPutWindow(t testing.TB, ws state.WindowStore, k string, start int64, v string) {
	t.Helper()
	var vb []byte
	if v != "<nil>" {
		vb = []byte(v)
	}
	dropped, err := ws.Put([]byte(k), start, vb)
	if err != nil || dropped {
		t.Fatalf("Put(%q, %d): dropped %v, err %v", k, start, dropped, err)
	}
}

func mustPutSession(t testing.TB, ss state.SessionStore, k string, start, end int64, v string) {
	t.Helper()
	dropped, err := ss.Put([]byte(k), start, end, []byte(v))
	if err != nil || dropped {
		t.Fatalf("Put(%q, %d, %d): dropped %v, err %v", k, start, end, dropped, err)
	}
}

// adversarialKeys are user keys that are prefixes of each other, contain
// the escape bytes, or end with what looks like an escaped key's terminator
// and timestamp bytes: no scan of one may return another's windows.
var adversarialKeys = []string{
	"", "\x00", "\x00\x00", "\x00\x01", "\x00\xff", "\x01",
	"a", "a\x00", "a\x00\x01", "a\x00\xff", "a\x00\x01\x80\x00\x00\x00\x00\x00\x00\x14",
	"a\x00\x01\x80\x00\x00\x00\x00\x00\x00\x00\x80\x00\x00\x00\x00\x00\x00\x14",
	"a\x01", "a\xff", "ab", "\xff", "\xff\xff",
}

const minT, maxT = math.MinInt64, math.MaxInt64
