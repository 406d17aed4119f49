package state

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// Byte layout of window and session stores (see "Window and session
// stores" in the package doc). A data key is
//
//	tag | segment | escaped user key | timestamps
//
// The tag, one byte, names the layout: tagWindow, tagWindowDups or
// tagSession. A store holds keys of one layout only.
//
// The segment is the segment id, floor(timestamp / segment interval), of
// the window start (window stores) or the session end (session stores),
// encoded as the timestamps are. All the keys of one segment share
// tag|segment and no other key has it as a prefix, so one DeleteRange drops
// a segment, or every segment below one.
//
// The user key is escaped: each 0x00 byte becomes 0x00 0xff, and 0x00 0x01
// ends it. Escaping keeps the bytewise order of user keys and makes the
// encoding prefix-free: no escaped key is a prefix of another, so the keys
// of one user key are exactly those that start with tag|segment|escaped
// key, and timestamp bytes can never be read as part of a longer user key.
//
// Timestamps are 8 bytes each, big-endian with the sign bit flipped, so that
// bytewise order is numeric order, negative values included: the window
// start (tagWindow); the window start, then a sequence number
// (tagWindowDups); the session start, then the session end (tagSession);
// the end of a version's validity, then its start (tagVersioned, the
// history of versioned stores; see versioned.go, which also keeps a key
// per user key under tagLatest, outside the segments).
//
// Within a segment keys therefore order by user key, then timestamps. The
// meta key of a layout is the single byte tag|metaBit; its value is two
// timestamps: the stream time and the sequence numbers reserved (see
// segmented.writeMeta).
const (
	tagWindow     byte = 0x01
	tagWindowDups byte = 0x02
	tagSession    byte = 0x03
	tagVersioned  byte = 0x04 // history of versioned stores
	tagLatest     byte = 0x05 // latest values of versioned stores
	metaBit       byte = 0x80

	// segPrefixLen is the length of tag|segment.
	segPrefixLen = 1 + 8
)

// timeKey is a decoded data key.
type timeKey struct {
	seg int64
	// esc is the escaped user key, terminator included, aliasing the
	// decoded bytes.
	esc []byte
	// a and b are the timestamps: window start (and sequence number), or
	// session start and end.
	a, b int64
}

// fieldCount returns the number of timestamps that end a key of tag.
func fieldCount(tag byte) int {
	if tag == tagWindow {
		return 1
	}
	return 2
}

// appendInt64 appends v in 8 bytes, big-endian with the sign bit flipped.
func appendInt64(b []byte, v int64) []byte {
	return binary.BigEndian.AppendUint64(b, uint64(v)^(1<<63))
}

// readInt64 reads what appendInt64 wrote; b has at least 8 bytes.
func readInt64(b []byte) int64 {
	return int64(binary.BigEndian.Uint64(b) ^ (1 << 63))
}

// appendEscaped appends key escaped and terminated.
func appendEscaped(b, key []byte) []byte {
	for {
		i := bytes.IndexByte(key, 0)
		if i < 0 {
			b = append(b, key...)
			return append(b, 0x00, 0x01)
		}
		b = append(b, key[:i+1]...)
		b = append(b, 0xff)
		key = key[i+1:]
	}
}

// escapedLen returns the length of the escaped, terminated key at the start
// of b, or false if b does not start with one.
func escapedLen(b []byte) (int, bool) {
	for i := 0; ; {
		j := bytes.IndexByte(b[i:], 0)
		if j < 0 || i+j+1 >= len(b) {
			return 0, false
		}
		switch b[i+j+1] {
		case 0x01:
			return i + j + 2, true
		case 0xff:
			i += j + 2
		default:
			return 0, false
		}
	}
}

// appendUnescaped appends the user key of esc, an escaped key as
// escapedLen accepts it.
func appendUnescaped(dst, esc []byte) []byte {
	for {
		i := bytes.IndexByte(esc, 0)
		if i < 0 || i+1 >= len(esc) || esc[i+1] != 0xff {
			if i < 0 {
				i = len(esc)
			}
			return append(dst, esc[:i]...)
		}
		dst = append(dst, esc[:i+1]...)
		esc = esc[i+2:]
	}
}

// appendSegPrefix appends tag|seg.
func appendSegPrefix(b []byte, tag byte, seg int64) []byte {
	return appendInt64(append(b, tag), seg)
}

// appendKeyPrefix appends tag|seg|escaped key: the prefix of every key of
// one user key in one segment.
func appendKeyPrefix(b []byte, tag byte, seg int64, key []byte) []byte {
	return appendEscaped(appendSegPrefix(b, tag, seg), key)
}

// appendTimeKey appends the data key of tag; b is ignored for tagWindow.
func appendTimeKey(dst []byte, tag byte, seg int64, key []byte, a, b int64) []byte {
	dst = appendInt64(appendKeyPrefix(dst, tag, seg, key), a)
	if fieldCount(tag) == 2 {
		dst = appendInt64(dst, b)
	}
	return dst
}

// decodeTimeKey decodes a data key of layout tag. It never panics: any
// other input gets an error wrapping ErrCorruptWindowKey. A session key
// whose start is after its end is corrupt too.
func decodeTimeKey(k []byte, tag byte) (timeKey, error) {
	if len(k) < segPrefixLen || k[0] != tag {
		return timeKey{}, corruptKey(k, "wrong tag or too short")
	}
	n, ok := escapedLen(k[segPrefixLen:])
	if !ok {
		return timeKey{}, corruptKey(k, "bad user key escaping")
	}
	rest := k[segPrefixLen+n:]
	if len(rest) != 8*fieldCount(tag) {
		return timeKey{}, corruptKey(k, "wrong timestamp length")
	}
	tk := timeKey{seg: readInt64(k[1:]), esc: k[segPrefixLen : segPrefixLen+n], a: readInt64(rest)}
	if len(rest) == 16 {
		tk.b = readInt64(rest[8:])
	}
	if tag == tagSession && tk.a > tk.b {
		return timeKey{}, corruptKey(k, "session starts after its end")
	}
	if tag == tagVersioned && tk.b > tk.a {
		return timeKey{}, corruptKey(k, "version valid from after it is valid to")
	}
	return tk, nil
}

// segmentOf returns the segment id in a key that starts with tag|segment,
// as the keys found by scanning a layout's data range do.
func segmentOf(k []byte, tag byte) (int64, error) {
	if len(k) < segPrefixLen || k[0] != tag {
		return 0, corruptKey(k, "wrong tag or too short")
	}
	return readInt64(k[1:]), nil
}

func corruptKey(k []byte, why string) error {
	const show = 64
	if len(k) > show {
		return fmt.Errorf("%w: %s: %x...", ErrCorruptWindowKey, why, k[:show])
	}
	return fmt.Errorf("%w: %s: %x", ErrCorruptWindowKey, why, k)
}

// WindowKeyOf decodes a key of a window store's underlying Store (as a
// record cache in front of it sees them): the user key and the window
// start. ok is false for the store's other keys (its meta key) and for
// keys of other layouts. The user key is a new slice.
func WindowKeyOf(raw []byte) (key []byte, start int64, ok bool) {
	k, err := decodeTimeKey(raw, tagWindow)
	if err != nil {
		return nil, 0, false
	}
	return appendUnescaped(nil, k.esc), k.a, true
}

// SessionKeyOf decodes a key of a session store's underlying Store: the
// user key and the session's start and end. ok is false for the store's
// other keys.
func SessionKeyOf(raw []byte) (key []byte, start, end int64, ok bool) {
	k, err := decodeTimeKey(raw, tagSession)
	if err != nil {
		return nil, 0, 0, false
	}
	return appendUnescaped(nil, k.esc), k.a, k.b, true
}
