package kstream

import (
	"bytes"
	"testing"

	"github.com/streamwork-go/streamwork/serde"
)

// The value format of a table GroupBy's repartition topic: decoding any
// bytes never panics, and what decodes re-encodes to the same bytes.
func FuzzFlaggedSerde(f *testing.F) {
	fs := flaggedSerde[int64]{serde.Int64}
	for _, v := range []flagged[int64]{{v: 1, add: true}, {v: -7}, {v: 1 << 40, add: true}, {v: 3, add: true, both: true, old: 2}} {
		b, _ := fs.Serialize("t", v)
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte{2, 0, 0, 0, 0, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := fs.Deserialize("t", b)
		if err != nil {
			return
		}
		again, err := fs.Serialize("t", v)
		if err != nil {
			t.Fatalf("re-encode %+v: %v", v, err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("round trip %x -> %+v -> %x", b, v, again)
		}
	})
}
