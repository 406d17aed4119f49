package wire

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"
	"strconv"
)

// TopicPartition names one partition of a changelog topic.
type TopicPartition struct {
	Topic     string
	Partition int32
}

// String returns "topic-partition", as Kafka writes it.
func (tp TopicPartition) String() string {
	return tp.Topic + "-" + strconv.FormatInt(int64(tp.Partition), 10)
}

// Checkpoint says, for each changelog partition of a store, the offset to
// restore from next: one past the last changelog record the store holds.
// The runtime keeps it inside the store, as a metadata record written in the
// same flush as the data (state.Store.PutMeta), so it can never claim more
// or less than the store holds; on assignment it restores the store from
// there to the end of the changelog.
type Checkpoint map[TopicPartition]int64

// The checkpoint format, version 1. All integers are big-endian.
//
//	magic    4 bytes  "SWCK"
//	version  1 byte   1
//	count    uvarint  number of entries
//	entries  count ×  topic length (uvarint), topic bytes,
//	                  partition (int32), offset (int64),
//	                  sorted by topic, then partition, no duplicates
//	crc      4 bytes  CRC-32C (Castagnoli) of every byte before it
//
// The encoding is canonical: DecodeCheckpoint accepts exactly what
// EncodeCheckpoint produces, so decoding then encoding returns the input.
const (
	checkpointMagic   = "SWCK"
	checkpointVersion = 1
	// maxTopicLen is Kafka's limit on a topic name.
	maxTopicLen = 249
	// minEntryLen is the smallest encoded entry: a 1-byte topic.
	minEntryLen = 1 + 1 + 4 + 8
	headerLen   = len(checkpointMagic) + 1
	crcLen      = 4
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// EncodeCheckpoint returns the checkpoint file bytes of c. It fails with an
// error wrapping ErrInvalidCheckpoint for an empty topic or one longer than
// Kafka's 249 bytes, or a negative partition or offset.
func EncodeCheckpoint(c Checkpoint) ([]byte, error) {
	tps := make([]TopicPartition, 0, len(c))
	size := headerLen + binary.MaxVarintLen64 + crcLen
	for tp, off := range c {
		if tp.Topic == "" || len(tp.Topic) > maxTopicLen || tp.Partition < 0 || off < 0 {
			return nil, fmt.Errorf("%w: %s at offset %d", ErrInvalidCheckpoint, tp, off)
		}
		tps = append(tps, tp)
		size += binary.MaxVarintLen64 + len(tp.Topic) + 12
	}
	slices.SortFunc(tps, compareTopicPartitions)

	b := make([]byte, 0, size)
	b = append(b, checkpointMagic...)
	b = append(b, checkpointVersion)
	b = binary.AppendUvarint(b, uint64(len(tps)))
	for _, tp := range tps {
		b = binary.AppendUvarint(b, uint64(len(tp.Topic)))
		b = append(b, tp.Topic...)
		b = binary.BigEndian.AppendUint32(b, uint32(tp.Partition))
		b = binary.BigEndian.AppendUint64(b, uint64(c[tp]))
	}
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli)), nil
}

// DecodeCheckpoint parses checkpoint file bytes. Any defect (bad magic,
// unknown version, checksum mismatch, truncation, trailing bytes, invalid,
// unsorted or duplicate entries) gives an error wrapping
// ErrCorruptCheckpoint. It never panics, and it allocates in proportion to
// len(b) only.
func DecodeCheckpoint(b []byte) (Checkpoint, error) {
	if len(b) < headerLen+1+crcLen {
		return nil, corrupt("truncated: %d bytes", len(b))
	}
	if string(b[:len(checkpointMagic)]) != checkpointMagic {
		return nil, corrupt("bad magic %q", b[:len(checkpointMagic)])
	}
	if v := b[len(checkpointMagic)]; v != checkpointVersion {
		return nil, corrupt("unsupported version %d", v)
	}
	body, sum := b[:len(b)-crcLen], binary.BigEndian.Uint32(b[len(b)-crcLen:])
	if got := crc32.Checksum(body, castagnoli); got != sum {
		return nil, corrupt("checksum mismatch: stored %08x, computed %08x", sum, got)
	}

	r := body[headerLen:]
	n, k := binary.Uvarint(r)
	if k <= 0 || n > uint64(len(r)-k)/minEntryLen {
		return nil, corrupt("bad entry count")
	}
	r = r[k:]
	c := make(Checkpoint, n)
	var prev TopicPartition
	for i := range n {
		tl, k := binary.Uvarint(r)
		if k <= 0 || tl == 0 || tl > maxTopicLen || tl+12 > uint64(len(r)-k) {
			return nil, corrupt("entry %d: bad topic length", i)
		}
		r = r[k:]
		tp := TopicPartition{Topic: string(r[:tl]), Partition: int32(binary.BigEndian.Uint32(r[tl:]))}
		off := int64(binary.BigEndian.Uint64(r[tl+4:]))
		r = r[tl+12:]
		if tp.Partition < 0 || off < 0 {
			return nil, corrupt("entry %d: %s: negative partition or offset %d", i, tp, off)
		}
		if i > 0 && compareTopicPartitions(prev, tp) >= 0 {
			return nil, corrupt("entry %d: %s out of order or duplicate", i, tp)
		}
		c[tp], prev = off, tp
	}
	if len(r) != 0 {
		return nil, corrupt("%d trailing bytes", len(r))
	}
	return c, nil
}

func compareTopicPartitions(a, b TopicPartition) int {
	if c := cmp.Compare(a.Topic, b.Topic); c != 0 {
		return c
	}
	return cmp.Compare(a.Partition, b.Partition)
}

func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrCorruptCheckpoint, fmt.Sprintf(format, args...))
}

// ErrCorruptCheckpoint reports a checkpoint that cannot be decoded: bad
// magic, unknown version, checksum mismatch, truncation or invalid entries.
// The runtime treats it as none: it wipes the store and restores it from the
// start of its changelog.
var ErrCorruptCheckpoint = errors.New("kstream: corrupt checkpoint")

// ErrInvalidCheckpoint reports a checkpoint EncodeCheckpoint refuses: an
// empty or over-long topic, or a negative partition or offset.
var ErrInvalidCheckpoint = errors.New("kstream: invalid checkpoint entry")
