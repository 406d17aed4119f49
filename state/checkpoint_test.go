package state_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/streamwork-go/streamwork/state"
)

func TestCheckpointRoundTrip(t *testing.T) {
	for _, c := range []state.Checkpoint{
		{},
		{{"app-counts-changelog", 0}: 0},
		{
			{"app-counts-changelog", 3}:         42,
			{"app-counts-changelog", 1}:         1 << 40,
			{"app-a-changelog", 7}:              9,
			{strings.Repeat("t", 249), 1 << 30}: 1<<63 - 1,
		},
	} {
		b, err := state.EncodeCheckpoint(c)
		if err != nil {
			t.Fatal(err)
		}
		got, err := state.DecodeCheckpoint(b)
		if err != nil {
			t.Fatalf("Decode(Encode(%v)): %v", c, err)
		}
		if !maps.Equal(got, c) {
			t.Fatalf("round trip: got %v, want %v", got, c)
		}
		// Canonical: the same map always encodes to the same bytes.
		b2, _ := state.EncodeCheckpoint(got)
		if !bytes.Equal(b, b2) {
			t.Fatal("encoding is not deterministic")
		}
	}
}

func TestCheckpointGoldenBytes(t *testing.T) {
	b, err := state.EncodeCheckpoint(state.Checkpoint{{"t", 2}: 5})
	if err != nil {
		t.Fatal(err)
	}
	body := []byte("SWCK\x01\x01\x01t\x00\x00\x00\x02\x00\x00\x00\x00\x00\x00\x00\x05")
	want := binary.BigEndian.AppendUint32(body, crc32.Checksum(body, crc32.MakeTable(crc32.Castagnoli)))
	if !bytes.Equal(b, want) {
		t.Fatalf("encoding changed:\n got % x\nwant % x", b, want)
	}
}

func TestEncodeCheckpointRejectsInvalid(t *testing.T) {
	for _, c := range []state.Checkpoint{
		{{"", 0}: 1},
		{{strings.Repeat("t", 250), 0}: 1},
		{{"t", -1}: 1},
		{{"t", 0}: -1},
	} {
		if _, err := state.EncodeCheckpoint(c); !errors.Is(err, state.ErrInvalidCheckpoint) {
			t.Errorf("Encode(%v): err = %v, want ErrInvalidCheckpoint", c, err)
		}
	}
}

func TestDecodeCheckpointCorrupt(t *testing.T) {
	good, _ := state.EncodeCheckpoint(state.Checkpoint{{"a", 0}: 1, {"b", 1}: 2})
	flip := func(i int) []byte {
		b := bytes.Clone(good)
		b[i] ^= 0x40
		return b
	}
	// reseal recomputes the CRC, to reach the checks behind it.
	reseal := func(body []byte) []byte {
		return binary.BigEndian.AppendUint32(body, crc32.Checksum(body, crc32.MakeTable(crc32.Castagnoli)))
	}
	entry := func(topic string, p int32, off int64) []byte {
		b := binary.AppendUvarint(nil, uint64(len(topic)))
		b = append(b, topic...)
		b = binary.BigEndian.AppendUint32(b, uint32(p))
		return binary.BigEndian.AppendUint64(b, uint64(off))
	}
	header := func(n int) []byte { return binary.AppendUvarint([]byte("SWCK\x01"), uint64(n)) }
	cases := map[string][]byte{
		"empty":           nil,
		"short":           good[:8],
		"truncated":       good[:len(good)-1],
		"magic":           flip(0),
		"version":         reseal(append([]byte("SWCK\x02"), good[5:len(good)-4]...)),
		"crc":             flip(len(good) - 1),
		"body bit":        flip(7),
		"trailing":        reseal(append(bytes.Clone(good[:len(good)-4]), 0)),
		"count too big":   reseal(append(header(1000), entry("a", 0, 1)...)),
		"count too small": reseal(append(append(header(1), entry("a", 0, 1)...), entry("b", 0, 1)...)),
		"empty topic":     reseal(append(header(1), entry("", 0, 1)...)),
		"negative part":   reseal(append(header(1), entry("a", -1, 1)...)),
		"negative off":    reseal(append(header(1), entry("a", 0, -1)...)),
		"duplicate":       reseal(append(append(header(2), entry("a", 0, 1)...), entry("a", 0, 2)...)),
		"unsorted":        reseal(append(append(header(2), entry("b", 0, 1)...), entry("a", 0, 2)...)),
		"long topic":      reseal(append(header(1), entry(strings.Repeat("t", 250), 0, 1)...)),
	}
	for name, b := range cases {
		if c, err := state.DecodeCheckpoint(b); !errors.Is(err, state.ErrCorruptCheckpoint) {
			t.Errorf("%s: Decode = %v, %v; want ErrCorruptCheckpoint", name, c, err)
		}
	}
}

func TestWriteReadCheckpoint(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, ".checkpoint")

	// Missing file: empty checkpoint, no error.
	c, err := state.ReadCheckpoint(path)
	if err != nil || c == nil || len(c) != 0 {
		t.Fatalf("missing file: %v, %v", c, err)
	}
	want := state.Checkpoint{{"app-s-changelog", 0}: 10, {"app-s-changelog", 1}: 20}
	if err := state.WriteCheckpoint(path, want); err != nil {
		t.Fatal(err)
	}
	want[state.TopicPartition{Topic: "app-s-changelog", Partition: 0}] = 11
	if err := state.WriteCheckpoint(path, want); err != nil { // overwrite
		t.Fatal(err)
	}
	got, err := state.ReadCheckpoint(path)
	if err != nil || !maps.Equal(got, want) {
		t.Fatalf("ReadCheckpoint = %v, %v; want %v", got, err, want)
	}
	// No temporary files are left behind.
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("directory has %d entries, want only the checkpoint", len(entries))
	}
	// A failed write leaves the old checkpoint and no temporary file.
	if err := state.WriteCheckpoint(path, state.Checkpoint{{"", 0}: 1}); !errors.Is(err, state.ErrInvalidCheckpoint) {
		t.Fatalf("invalid write: %v", err)
	}
	if got, _ := state.ReadCheckpoint(path); !maps.Equal(got, want) {
		t.Fatal("a failed write changed the checkpoint")
	}
	// Corrupt file.
	b, _ := os.ReadFile(path)
	b[len(b)/2] ^= 1
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := state.ReadCheckpoint(path); !errors.Is(err, state.ErrCorruptCheckpoint) {
		t.Fatalf("corrupt file: err = %v", err)
	}
	// Remove, twice.
	for range 2 {
		if err := state.RemoveCheckpoint(path); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("checkpoint still there: %v", err)
	}
	// A directory that does not exist.
	if err := state.WriteCheckpoint(filepath.Join(dir, "no", "such"), want); err == nil {
		t.Fatal("WriteCheckpoint into a missing directory succeeded")
	}
}

func TestTopicPartitionString(t *testing.T) {
	if s := (state.TopicPartition{Topic: "app-s-changelog", Partition: 3}).String(); s != "app-s-changelog-3" {
		t.Fatal(s)
	}
}

// FuzzDecodeCheckpoint: the decoder never panics, and whatever it accepts
// encodes back to exactly the same bytes (the format is canonical).
func FuzzDecodeCheckpoint(f *testing.F) {
	for _, c := range []state.Checkpoint{
		{},
		{{"a", 0}: 0},
		{{"app-counts-changelog", 0}: 42, {"app-counts-changelog", 1}: 7, {"b", 2}: 1 << 40},
	} {
		b, err := state.EncodeCheckpoint(c)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("SWCK\x01"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := state.DecodeCheckpoint(b)
		if err != nil {
			if !errors.Is(err, state.ErrCorruptCheckpoint) {
				t.Fatalf("error does not wrap ErrCorruptCheckpoint: %v", err)
			}
			return
		}
		b2, err := state.EncodeCheckpoint(c)
		if err != nil {
			t.Fatalf("decoded checkpoint does not encode: %v", err)
		}
		if !bytes.Equal(b, b2) {
			t.Fatalf("round trip changed the bytes:\n in % x\nout % x", b, b2)
		}
	})
}

// FuzzCheckpointRoundTrip: any valid checkpoint survives encoding.
func FuzzCheckpointRoundTrip(f *testing.F) {
	f.Add("app-s-changelog", int32(0), int64(0), "other", int32(5), int64(99))
	f.Fuzz(func(t *testing.T, t1 string, p1 int32, o1 int64, t2 string, p2 int32, o2 int64) {
		c := state.Checkpoint{{t1, p1}: o1, {t2, p2}: o2}
		b, err := state.EncodeCheckpoint(c)
		if err != nil {
			if !errors.Is(err, state.ErrInvalidCheckpoint) {
				t.Fatal(err)
			}
			return
		}
		got, err := state.DecodeCheckpoint(b)
		if err != nil || !maps.Equal(got, c) {
			t.Fatalf("round trip of %v: %v, %v", c, got, err)
		}
	})
}
