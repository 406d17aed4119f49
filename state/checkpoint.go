package state

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
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

// Checkpoint is the content of a task's local checkpoint file: for each
// changelog partition of the task's stores, the offset to restore from next,
// that is one past the last changelog record the flushed stores contain.
// The runtime flushes the stores, then writes the checkpoint; on
// assignment it restores each store from its checkpointed offset to the end
// of the changelog.
type Checkpoint map[TopicPartition]int64

// The checkpoint file format, version 1. All integers are big-endian.
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

// WriteCheckpoint writes c to path atomically: to a temporary file in the
// same directory, fsynced, renamed over path, and the directory fsynced, so
// after a crash path holds either the old checkpoint or the new one, whole.
func WriteCheckpoint(path string, c Checkpoint) (err error) {
	b, err := EncodeCheckpoint(c)
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("state: write checkpoint: %w", err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = os.Remove(tmp)
			err = fmt.Errorf("state: write checkpoint %s: %w", path, err)
		}
	}()
	if _, err = f.Write(b); err != nil {
		_ = f.Close()
		return err
	}
	if err = f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp, path); err != nil {
		return err
	}
	return syncDir(dir)
}

// ReadCheckpoint reads the checkpoint file at path. A missing file is an
// empty checkpoint and no error: restore everything from the start. A file
// that does not decode gives an error wrapping ErrCorruptCheckpoint.
func ReadCheckpoint(path string) (Checkpoint, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Checkpoint{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("state: read checkpoint: %w", err)
	}
	c, err := DecodeCheckpoint(b)
	if err != nil {
		return nil, fmt.Errorf("state: read checkpoint %s: %w", path, err)
	}
	return c, nil
}

// RemoveCheckpoint deletes the checkpoint file at path, and fsyncs its
// directory. A missing file is not an error. Under exactly-once the runtime
// removes a task's checkpoint before it writes to the stores again, so a
// crash before the next clean commit leaves no checkpoint and the stores are
// wiped and restored.
func RemoveCheckpoint(path string) error {
	err := os.Remove(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err == nil {
		err = syncDir(filepath.Dir(path))
	}
	if err != nil {
		return fmt.Errorf("state: remove checkpoint: %w", err)
	}
	return nil
}

// syncDir fsyncs a directory so a rename or removal in it is durable.
// Windows cannot open directories for syncing, and does not need it.
func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
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
