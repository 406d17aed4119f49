package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
)

// Foreign-key join messages. A subscription goes from the left table's
// task to the right table's, keyed by the foreign key, through the join's
// subscription topic:
//
//	version (1 byte, 1) | instruction (1 byte) | left value hash (8 bytes,
//	big-endian) | the left key's bytes (the rest)
//
// A response goes back, keyed by the left key, through the response topic:
//
//	version (1 byte, 1) | left value hash (8 bytes) | found (1 byte, 0 or
//	1) | the right value's bytes (the rest; empty when not found)
const fkVersion byte = 1

// Subscription instructions.
const (
	// SubscribeAndRespond registers the left key under the foreign key and
	// asks for the right row.
	SubscribeAndRespond byte = 1
	// Unsubscribe removes the left key from the foreign key, silently (the
	// left row moved to another foreign key).
	Unsubscribe byte = 2
	// UnsubscribeAndRespond removes it and asks for a "not found" response
	// (the left row was deleted: the result row goes).
	UnsubscribeAndRespond byte = 3
	// SubscribeRespondIfFound is SubscribeAndRespond that asks for a
	// response only if the right row exists (an inner join's new left row:
	// no tombstone for a key never in the result).
	SubscribeRespondIfFound byte = 4
)

// ErrFKMessage is wrapped by the errors of the Decode functions here.
var ErrFKMessage = errors.New("wire: malformed foreign-key join message")

// ValueHash returns the hash a subscription carries of the left value's
// bytes (nil: the row is absent, hash 0), by which the left side recognizes
// a response to its current value.
func ValueHash(v []byte) uint64 {
	if v == nil {
		return 0
	}
	h := fnv.New64a()
	h.Write(v)
	if s := h.Sum64(); s != 0 {
		return s
	}
	return 1
}

// AppendSubscription appends a subscription message.
func AppendSubscription(dst []byte, instruction byte, hash uint64, leftKey []byte) []byte {
	dst = append(dst, fkVersion, instruction)
	dst = binary.BigEndian.AppendUint64(dst, hash)
	return append(dst, leftKey...)
}

// DecodeSubscription decodes a subscription; leftKey aliases b.
func DecodeSubscription(b []byte) (instruction byte, hash uint64, leftKey []byte, err error) {
	if len(b) < 10 || b[0] != fkVersion || b[1] < SubscribeAndRespond || b[1] > SubscribeRespondIfFound {
		return 0, 0, nil, fmt.Errorf("%w: subscription of %d bytes", ErrFKMessage, len(b))
	}
	return b[1], binary.BigEndian.Uint64(b[2:10]), b[10:], nil
}

// AppendResponse appends a response message.
func AppendResponse(dst []byte, hash uint64, found bool, rightValue []byte) []byte {
	dst = append(dst, fkVersion)
	dst = binary.BigEndian.AppendUint64(dst, hash)
	if found {
		return append(append(dst, 1), rightValue...)
	}
	return append(dst, 0)
}

// DecodeResponse decodes a response; rightValue aliases b.
func DecodeResponse(b []byte) (hash uint64, found bool, rightValue []byte, err error) {
	if len(b) < 10 || b[0] != fkVersion || b[9] > 1 || (b[9] == 0 && len(b) != 10) {
		return 0, false, nil, fmt.Errorf("%w: response of %d bytes", ErrFKMessage, len(b))
	}
	return binary.BigEndian.Uint64(b[1:9]), b[9] == 1, b[10:], nil
}

// SubscriptionKey is the key of a subscription in the right side's
// subscription store: the foreign key's length (uvarint), the foreign key,
// the left key; SubscriptionPrefix is the part that names the foreign key.
func SubscriptionKey(fk, leftKey []byte) []byte {
	return append(SubscriptionPrefix(fk), leftKey...)
}

// SubscriptionPrefix returns the prefix of the subscriptions of fk.
func SubscriptionPrefix(fk []byte) []byte {
	out := binary.AppendUvarint(make([]byte, 0, 2+len(fk)), uint64(len(fk)))
	return append(out, fk...)
}

// LeftKeyOf returns the left key of a subscription store key.
func LeftKeyOf(key []byte) ([]byte, error) {
	n, u := binary.Uvarint(key)
	if u <= 0 || n > uint64(len(key)-u) {
		return nil, fmt.Errorf("%w: subscription key", ErrFKMessage)
	}
	return key[u+int(n):], nil
}
