package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Count-window state: what a count-windowed aggregation keeps per key.
//
//	version (1 byte, 1) | records seen (uvarint) | open windows (uvarint) |
//	per window: start (uvarint, a record number), timestamp (8 bytes,
//	big-endian), aggregate length (uvarint), aggregate
const countVersion byte = 1

// ErrCountWindows is wrapped by the errors of DecodeCountWindows.
var ErrCountWindows = errors.New("wire: malformed count-window state")

// CountWindow is one open count window: its first record number, the
// largest timestamp of its records, and its aggregate's bytes.
type CountWindow struct {
	Start int64
	TS    int64
	Agg   []byte
}

// AppendCountWindows appends the encoding of a key's count-window state.
func AppendCountWindows(dst []byte, seen int64, wins []CountWindow) []byte {
	dst = append(dst, countVersion)
	dst = binary.AppendUvarint(dst, uint64(seen))
	dst = binary.AppendUvarint(dst, uint64(len(wins)))
	for _, w := range wins {
		dst = binary.AppendUvarint(dst, uint64(w.Start))
		dst = binary.BigEndian.AppendUint64(dst, uint64(w.TS))
		dst = binary.AppendUvarint(dst, uint64(len(w.Agg)))
		dst = append(dst, w.Agg...)
	}
	return dst
}

// DecodeCountWindows decodes a key's count-window state into wins (reused);
// the aggregates alias b.
func DecodeCountWindows(b []byte, wins []CountWindow) (seen int64, out []CountWindow, err error) {
	out = wins[:0]
	if len(b) < 1 || b[0] != countVersion {
		return 0, out, fmt.Errorf("%w: bad version", ErrCountWindows)
	}
	b = b[1:]
	s, u := binary.Uvarint(b)
	if u <= 0 || s > 1<<62 {
		return 0, out, fmt.Errorf("%w: records seen", ErrCountWindows)
	}
	b = b[u:]
	n, u := binary.Uvarint(b)
	if u <= 0 || n > uint64(len(b)) {
		return 0, out, fmt.Errorf("%w: window count", ErrCountWindows)
	}
	b = b[u:]
	for i := uint64(0); i < n; i++ {
		st, u := binary.Uvarint(b)
		if u <= 0 || st > 1<<62 || len(b)-u < 8 {
			return 0, out, fmt.Errorf("%w: window %d", ErrCountWindows, i)
		}
		b = b[u:]
		ts := int64(binary.BigEndian.Uint64(b))
		b = b[8:]
		l, u := binary.Uvarint(b)
		if u <= 0 || l > uint64(len(b)-u) {
			return 0, out, fmt.Errorf("%w: window %d aggregate", ErrCountWindows, i)
		}
		out = append(out, CountWindow{Start: int64(st), TS: ts, Agg: b[u : u+int(l) : u+int(l)]})
		b = b[u+int(l):]
	}
	if len(b) != 0 {
		return 0, out, fmt.Errorf("%w: %d trailing bytes", ErrCountWindows, len(b))
	}
	return int64(s), out, nil
}
