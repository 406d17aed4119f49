package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"maps"
	"strings"
	"testing"
)

func TestCheckpointRoundTrip(t *testing.T) {
	for _, c := range []Checkpoint{
		{},
		{{"app-counts-changelog", 0}: 0},
		{
			{"app-counts-changelog", 3}:         42,
			{"app-counts-changelog", 1}:         1 << 40,
			{"app-a-changelog", 7}:              9,
			{strings.Repeat("t", 249), 1 << 30}: 1<<63 - 1,
		},
	} {
		b, err := EncodeCheckpoint(c)
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeCheckpoint(b)
		if err != nil {
			t.Fatalf("Decode(Encode(%v)): %v", c, err)
		}
		if !maps.Equal(got, c) {
			t.Fatalf("round trip: got %v, want %v", got, c)
		}
		// Canonical: the same map always encodes to the same bytes.
		b2, _ := EncodeCheckpoint(got)
		if !bytes.Equal(b, b2) {
			t.Fatal("encoding is not deterministic")
		}
	}
}

func TestCheckpointGoldenBytes(t *testing.T) {
	b, err := EncodeCheckpoint(Checkpoint{{"t", 2}: 5})
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
	for _, c := range []Checkpoint{
		{{"", 0}: 1},
		{{strings.Repeat("t", 250), 0}: 1},
		{{"t", -1}: 1},
		{{"t", 0}: -1},
	} {
		if _, err := EncodeCheckpoint(c); !errors.Is(err, ErrInvalidCheckpoint) {
			t.Errorf("Encode(%v): err = %v, want ErrInvalidCheckpoint", c, err)
		}
	}
}

func TestDecodeCheckpointCorrupt(t *testing.T) {
	good, _ := EncodeCheckpoint(Checkpoint{{"a", 0}: 1, {"b", 1}: 2})
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
		if c, err := DecodeCheckpoint(b); !errors.Is(err, ErrCorruptCheckpoint) {
			t.Errorf("%s: Decode = %v, %v; want ErrCorruptCheckpoint", name, c, err)
		}
	}
}

func TestTopicPartitionString(t *testing.T) {
	if s := (TopicPartition{Topic: "app-s-changelog", Partition: 3}).String(); s != "app-s-changelog-3" {
		t.Fatal(s)
	}
}

// FuzzDecodeCheckpoint: the decoder never panics, and whatever it accepts
// encodes back to exactly the same bytes (the format is canonical).
func FuzzDecodeCheckpoint(f *testing.F) {
	for _, c := range []Checkpoint{
		{},
		{{"a", 0}: 0},
		{{"app-counts-changelog", 0}: 42, {"app-counts-changelog", 1}: 7, {"b", 2}: 1 << 40},
	} {
		b, err := EncodeCheckpoint(c)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("SWCK\x01"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := DecodeCheckpoint(b)
		if err != nil {
			if !errors.Is(err, ErrCorruptCheckpoint) {
				t.Fatalf("error does not wrap ErrCorruptCheckpoint: %v", err)
			}
			return
		}
		b2, err := EncodeCheckpoint(c)
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
		c := Checkpoint{{t1, p1}: o1, {t2, p2}: o2}
		b, err := EncodeCheckpoint(c)
		if err != nil {
			if !errors.Is(err, ErrInvalidCheckpoint) {
				t.Fatal(err)
			}
			return
		}
		got, err := DecodeCheckpoint(b)
		if err != nil || !maps.Equal(got, c) {
			t.Fatalf("round trip of %v: %v, %v", c, got, err)
		}
	})
}
