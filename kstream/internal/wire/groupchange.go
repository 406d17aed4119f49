package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// ErrGroupChange reports bytes that are not a table-grouping value.
var ErrGroupChange = errors.New("kstream: malformed table-grouping value")

// A table-grouping value travels through a TableGroupBy's repartition topic:
// a row's value that its new group adds, or its old group subtracts, or,
// when an update keeps the row in its group, both at once (the old value
// subtracted and the new one added in one step, so the group's aggregate
// changes once: Kafka Streams' KIP-904).
//
// Format:
//
//	uint8  0 subtract, 1 add: followed by the value's own encoding
//	uint8  2 both: followed by the old value's length (uvarint), the old
//	       value's encoding, then the new value's encoding
//
// A later version will start with a byte above 2.

// The kinds of table-grouping values.
const (
	GroupSubtract = 0
	GroupAdd      = 1
	GroupBoth     = 2
)

// AppendGroupBoth appends the encoding of an update that stays in its
// group: old subtracted, value added.
func AppendGroupBoth(dst, old, value []byte) []byte {
	dst = append(dst, GroupBoth)
	dst = binary.AppendUvarint(dst, uint64(len(old)))
	dst = append(dst, old...)
	return append(dst, value...)
}

// DecodeGroupValue splits b into its kind (GroupSubtract, GroupAdd or
// GroupBoth), the old value (GroupBoth only) and the value, subslices of b.
// The encoding is canonical: a length in more bytes than needed is an
// error.
func DecodeGroupValue(b []byte) (kind byte, old, value []byte, err error) {
	if len(b) < 1 || b[0] > GroupBoth {
		return 0, nil, nil, fmt.Errorf("%w (%d bytes)", ErrGroupChange, len(b))
	}
	if b[0] != GroupBoth {
		return b[0], nil, b[1:], nil
	}
	n, w := binary.Uvarint(b[1:])
	if w <= 0 || w != len(binary.AppendUvarint(nil, n)) || n > uint64(len(b)-1-w) {
		return 0, nil, nil, fmt.Errorf("%w: bad old-value length (%d bytes)", ErrGroupChange, len(b))
	}
	rest := b[1+w:]
	return GroupBoth, rest[:n:n], rest[n:], nil
}

// AppendGroupChange appends the encoding of value (already serialized) with
// its add flag to dst.
func AppendGroupChange(dst []byte, add bool, value []byte) []byte {
	flag := byte(0)
	if add {
		flag = 1
	}
	dst = append(dst, flag)
	return append(dst, value...)
}

// DecodeGroupChange splits b into its add flag and the value's bytes (a
// subslice of b).
func DecodeGroupChange(b []byte) (add bool, value []byte, err error) {
	if len(b) < 1 || b[0] > GroupAdd {
		return false, nil, fmt.Errorf("%w (%d bytes)", ErrGroupChange, len(b))
	}
	return b[0] == 1, b[1:], nil
}
