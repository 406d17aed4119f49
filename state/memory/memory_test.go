package memory_test

import (
	"testing"

	"github.com/streamwork-go/streamwork/state"
	"github.com/streamwork-go/streamwork/state/memory"
	"github.com/streamwork-go/streamwork/state/storetest"
)

func open(testing.TB) state.Store { return memory.New("test") }

func TestConformance(t *testing.T) { storetest.Run(t, open) }

// Two memory stores must agree with each other too: this checks the
// metamorphic harness itself, and the iterator's batching against plain
// reads of the same store.
func TestMetamorphicSelf(t *testing.T) {
	a, b := memory.New("a"), memory.New("b")
	defer a.Close()
	defer b.Close()
	storetest.Metamorphic(t, 1, 5000, a, b)
}

// Scans longer than a batch must re-seek without losing or repeating keys.
func TestLongScanAcrossBatches(t *testing.T) {
	s := memory.New("long")
	defer s.Close()
	for i := range 2000 {
		k := []byte{byte(i >> 8), byte(i)}
		if err := s.Put(k, k); err != nil {
			t.Fatal(err)
		}
	}
	n := 0
	for k, v := range state.Seq(s.Range([]byte{0, 100}, []byte{7, 0})) {
		want := 100 + n
		if k[0] != byte(want>>8) || k[1] != byte(want) || string(v) != string(k) {
			t.Fatalf("pair %d = %x", n, k)
		}
		n++
	}
	if n != 1692 {
		t.Fatalf("scanned %d keys, want 1692", n)
	}
}

func BenchmarkMemory(b *testing.B) { storetest.Benchmark(b, open) }

func TestWindowConformance(t *testing.T) { storetest.RunWindow(t, open) }

func TestSessionConformance(t *testing.T) { storetest.RunSession(t, open) }

func BenchmarkMemoryWindow(b *testing.B) { storetest.BenchmarkWindow(b, open) }

func TestVersionedConformance(t *testing.T) { storetest.RunVersioned(t, open) }

func BenchmarkMemoryVersioned(b *testing.B) { storetest.BenchmarkVersioned(b, open) }
