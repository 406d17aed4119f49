package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Suppression-buffer entries: what a suppression keeps per key until it
// emits.
//
//	version (1 byte, 1) | deadline (8 bytes, big-endian: the stream time
//	at which the entry is emitted) | flags (1 byte: bit 0 set for a
//	tombstone) | a stamped value (see AppendStamped): the record's
//	timestamp, headers and value bytes (empty for a tombstone)
const suppressVersion byte = 1

// ErrSuppressed is wrapped by the errors of DecodeSuppressed.
var ErrSuppressed = errors.New("wire: malformed suppression-buffer entry")

// AppendSuppressed appends the encoding of a buffered record to dst.
func AppendSuppressed(dst []byte, deadline int64, tombstone bool, ts int64, headers []Header, value []byte) []byte {
	dst = append(dst, suppressVersion)
	dst = binary.BigEndian.AppendUint64(dst, uint64(deadline))
	var flags byte
	if tombstone {
		flags = 1
	}
	dst = append(dst, flags)
	return AppendStamped(dst, ts, headers, value)
}

// DecodeSuppressed decodes a buffered record; value and header values alias
// b.
func DecodeSuppressed(b []byte) (deadline int64, tombstone bool, ts int64, headers []Header, value []byte, err error) {
	if len(b) < 10 || b[0] != suppressVersion || b[9] > 1 {
		return 0, false, 0, nil, nil, fmt.Errorf("%w: %d bytes", ErrSuppressed, len(b))
	}
	deadline = int64(binary.BigEndian.Uint64(b[1:9]))
	tombstone = b[9] == 1
	ts, headers, value, err = DecodeStamped(b[10:])
	if err != nil {
		return 0, false, 0, nil, nil, fmt.Errorf("%w: %w", ErrSuppressed, err)
	}
	return deadline, tombstone, ts, headers, value, nil
}
