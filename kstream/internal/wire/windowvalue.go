package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Stamped values: what windowed aggregations keep per window. Kafka
// Streams keeps a window's aggregate together with the largest timestamp of
// the records in it (ValueAndTimestamp), which is the timestamp of the
// window's results; Streamwork keeps the headers of the last record that
// updated the window too, so that results carry them.
//
//	version (1 byte, 1) | timestamp (8 bytes, big-endian) |
//	header count (uvarint) | per header: key length (uvarint), key,
//	value length + 1 (uvarint, 0 for a nil value), value |
//	the aggregate's bytes (the rest)
const stampedVersion byte = 1

// ErrStamped is wrapped by the errors of DecodeStamped.
var ErrStamped = errors.New("wire: malformed stamped value")

// Header is a record header as stamped values keep it.
type Header struct {
	Key   string
	Value []byte
}

// AppendStamped appends the stamped encoding of (ts, headers, value) to dst.
func AppendStamped(dst []byte, ts int64, headers []Header, value []byte) []byte {
	dst = append(dst, stampedVersion)
	dst = binary.BigEndian.AppendUint64(dst, uint64(ts))
	dst = binary.AppendUvarint(dst, uint64(len(headers)))
	for _, h := range headers {
		dst = binary.AppendUvarint(dst, uint64(len(h.Key)))
		dst = append(dst, h.Key...)
		if h.Value == nil {
			dst = binary.AppendUvarint(dst, 0)
			continue
		}
		dst = binary.AppendUvarint(dst, uint64(len(h.Value))+1)
		dst = append(dst, h.Value...)
	}
	return append(dst, value...)
}

// DecodeStamped decodes a stamped value. value and the header values alias
// b.
func DecodeStamped(b []byte) (ts int64, headers []Header, value []byte, err error) {
	if len(b) < 9 {
		return 0, nil, nil, fmt.Errorf("%w: %d bytes", ErrStamped, len(b))
	}
	if b[0] != stampedVersion {
		return 0, nil, nil, fmt.Errorf("%w: version %d", ErrStamped, b[0])
	}
	ts = int64(binary.BigEndian.Uint64(b[1:9]))
	b = b[9:]
	n, used := binary.Uvarint(b)
	if used <= 0 || n > uint64(len(b)) {
		return 0, nil, nil, fmt.Errorf("%w: header count", ErrStamped)
	}
	b = b[used:]
	if n > 0 {
		headers = make([]Header, 0, n)
	}
	for i := uint64(0); i < n; i++ {
		kl, u := binary.Uvarint(b)
		if u <= 0 || kl > uint64(len(b)-u) {
			return 0, nil, nil, fmt.Errorf("%w: header %d key", ErrStamped, i)
		}
		key := string(b[u : u+int(kl)])
		b = b[u+int(kl):]
		vl, u := binary.Uvarint(b)
		if u <= 0 || (vl > 0 && vl-1 > uint64(len(b)-u)) {
			return 0, nil, nil, fmt.Errorf("%w: header %d value", ErrStamped, i)
		}
		b = b[u:]
		var v []byte
		if vl > 0 {
			v = b[: vl-1 : vl-1]
			b = b[vl-1:]
		}
		headers = append(headers, Header{Key: key, Value: v})
	}
	return ts, headers, b, nil
}
