package kstream_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/streamwork-go/streamwork/kstream"
	"github.com/streamwork-go/streamwork/serde"
)

// FuzzTimeWindowedSerde decodes arbitrary bytes as a time-windowed key:
// no panic, an error for fewer than 8 bytes, and whatever decodes encodes
// back to the same bytes.
func FuzzTimeWindowedSerde(f *testing.F) {
	s := kstream.TimeWindowedSerde(serde.String, time.Minute)
	seed, _ := s.Serialize("t", kstream.Windowed[string]{Key: "card-7", Start: 1_700_000_040_000, End: 1_700_000_100_000})
	f.Add(seed)
	f.Add([]byte{})
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0})
	f.Add(bytes.Repeat([]byte{0xff}, 8))
	f.Fuzz(func(t *testing.T, b []byte) {
		w, err := s.Deserialize("t", b)
		if err != nil {
			if len(b) >= 8 {
				t.Fatalf("%d bytes: %v", len(b), err)
			}
			return
		}
		if w.End < w.Start {
			t.Fatalf("window [%d, %d) ends before it starts", w.Start, w.End)
		}
		again, err := s.Serialize("t", w)
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("re-encode %+v = %x, %v; want %x", w, again, err, b)
		}
	})
}

// FuzzSessionWindowedSerde decodes arbitrary bytes as a session-windowed
// key: no panic, an error for fewer than 16 bytes, and whatever decodes
// encodes back to the same bytes.
func FuzzSessionWindowedSerde(f *testing.F) {
	s := kstream.SessionWindowedSerde(serde.String)
	seed, _ := s.Serialize("t", kstream.Windowed[string]{Key: "card-7", Start: 1_700_000_040_000, End: 1_700_000_100_000})
	f.Add(seed)
	f.Add([]byte{})
	f.Add(bytes.Repeat([]byte{0x80}, 15))
	f.Fuzz(func(t *testing.T, b []byte) {
		w, err := s.Deserialize("t", b)
		if err != nil {
			if len(b) >= 16 {
				t.Fatalf("%d bytes: %v", len(b), err)
			}
			return
		}
		again, err := s.Serialize("t", w)
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("re-encode %+v = %x, %v; want %x", w, again, err, b)
		}
	})
}
