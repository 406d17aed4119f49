// Package state is the local state layer of stateful operators: the byte
// store interface the runtime writes, typed views over it, and the two small
// files a state directory holds besides the stores.
//
// # Stores
//
// A [Store] is an ordered, byte-level key-value store owned by one task. Its
// engines live in sub-packages: state/pebble (on disk, the default) and
// state/memory. Every change the runtime makes to a store it also writes to
// the store's Kafka changelog topic, which is the store's write-ahead log:
// engines run without one, and after a crash or a move to another instance
// the runtime restores the store from the changelog. Flush makes a store's
// writes durable on local disk so that restoring can start where the local
// data ends.
//
// Iteration is pull style, as in Pebble: [Iterator] has Next, Key, Value,
// Err and Close. [Seq] and [SeqErr] adapt an Iterator to a range-over-func
// loop. Keys order bytewise.
//
// # Typed views
//
// [Typed] wraps a Store with a key and a value serde.Serde. The result,
// [*KeyValue], is what operators use; its read side, [ReadOnlyKeyValue], is
// what interactive queries get.
//
// # Window and session stores
//
// [WindowStore] (windowed aggregations, and with RetainDuplicates
// stream-stream joins) and [SessionStore] (session windows) are layers over
// a Store, opened with [NewWindowStore] and [NewSessionStore]: their data
// is ordinary keys of the Store, so both engines and any wrapper (changelog,
// record cache) work under them, and a changelogged store restores them
// like any other. [TypedWindows] and [TypedSessions] are their typed views,
// iterating [Windowed] keys with iter.Seq2.
//
// Retention. Times are milliseconds. A window store files each window by
// its start, a session store each session by its end. Stream time is the
// greatest such timestamp written; a window (session) is live while its
// start (end) is greater than stream time minus the retention period.
// Writes of windows that are no longer live are dropped and reported;
// fetches never return them.
//
// Segments. The timestamp divided by the segment interval (rounded down) is
// the segment id, the first part of every key. The segment interval
// defaults to Kafka Streams' max(retention/2, 60s), so at most three
// segments are live. When stream time moves so that a whole segment holds
// no live timestamp any more, the store removes it, and every segment below
// it, with a single Store.DeleteRange: one range tombstone on Pebble, never
// a delete per key. Retention / segment interval may be at most
// [MaxLiveSegments].
//
// Layout. A data key is
//
//	tag (1 byte) | segment id (8) | escaped user key | timestamps (8 each)
//
// The tag is 0x01 for windows, 0x02 for windows with duplicates, 0x03 for
// sessions, 0x04 for the history of versioned stores (see below). Timestamps and segment ids are big-endian with the sign bit
// flipped, so bytes order as numbers do. The user key is escaped, 0x00
// becoming 0x00 0xff, and ended by 0x00 0x01: that keeps user keys in
// bytewise order and makes them prefix-free, so the keys of one user key in
// a segment are exactly the range that starts with tag|segment|escaped key,
// and no key can be taken for another key followed by timestamp bytes. The
// timestamps are the window start; the start and a sequence number
// (duplicates, kept in insertion order); or the session start and end.
// Within a segment, keys thus order by user key, then timestamps.
//
// Recovery. Opening a store recovers stream time from the newest segment
// (found by binary search over segment ids, then read in full), and checks
// there that the keys agree with the configured segment interval. The
// single-byte meta key tag|0x80 holds what the data cannot tell: stream time
// when a delete removed the newest window, and a block of reserved sequence
// numbers for duplicates. Expired segments are not written to the
// changelog; as in Kafka Streams, the changelog's own retention drops them,
// and a store restored with expired data drops it when opened.
//
// Order. Fetches of one key return its windows by start (sessions by start,
// then end, merged across segments); scans over all keys go by segment,
// then key, then timestamps, as Kafka Streams' do. Backward variants return
// the exact reverse. Store iterators only go forward, so backward scans
// re-read their range in passes of a bounded number of pairs.
//
// # Versioned stores
//
// [VersionedStore] keeps the versions of each key's value over time: Kafka
// Streams' VersionedKeyValueStore (KIPs 889 and 914). A Put of a key at
// timestamp ts starts a version valid in [ts, next), next being the
// timestamp of the key's next version; a nil value is a tombstone. Puts may
// come in any order. [VersionedStore.GetAsOf] returns the version valid at
// a time, [VersionedStore.Versions] those valid in a range of times, and
// [TypedVersioned] is the typed view. It is a layer over a Store, opened
// with [NewVersionedStore], like the window store.
//
// History retention. Stream time is the greatest timestamp put. Puts
// before stream time minus the history retention (the horizon) are dropped
// and reported; as-of queries before the horizon return only a key's
// latest version, when it is valid then: the latest version never expires.
// This is Kafka Streams' rule, where the history retention is also the
// grace period.
//
// Layout. A key's latest value, when it is not a tombstone, is the key
//
//	0x05 | user key
//
// with the value: validFrom (8 bytes, as timestamps are encoded above) |
// value bytes. These keys are outside the segments and never expire. Every
// other version, and a tombstone that is a key's latest version, is a
// history entry, a data key of the segmented layout with tag 0x04:
//
//	0x04 | segment id (8) | escaped user key | validTo (8) | validFrom (8)
//
// filed by validTo, its value a byte 0x01 and the value bytes, or the byte
// 0x00 alone for a tombstone. A tombstone that is its key's latest version
// has validFrom == validTo; a later version closes it. A history entry is
// needed while its validTo is at or after the horizon (a query at or after
// it may return it, a put at the horizon may replace the tombstone at it);
// a segment is dropped with one Store.DeleteRange when the horizon has
// passed all its validTo timestamps, as window segments are. The segment
// interval defaults to a tier of the history retention (see
// [VersionedStoreConfig]).
//
// Recovery. Opening a versioned store checks that the Store holds no key
// outside 0x04 and 0x05 but its meta key 0x84, and recovers stream time
// from the greatest validTo of the newest segment and the meta key, which
// a Put writes only when it moves stream time without writing a history
// entry that ends there (the first version of a key, say). Latest values
// are read only when asked for.
//
// # Concurrency and errors
//
// One goroutine writes a store; others may read it concurrently. Using a
// closed store is a programming error and panics with [ErrClosed]; runtime
// failures are returned as errors. Sentinels are in errors.go and are
// matched with errors.Is.
//
// # Testing
//
// Package state/storetest is the conformance suite every engine passes,
// with suites for the window, session and versioned stores over each
// engine.
package state
