package state_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/streamwork-go/streamwork/serde"
	"github.com/streamwork-go/streamwork/state"
	"github.com/streamwork-go/streamwork/state/memory"
)

type session struct {
	User   string
	Clicks int
}

func TestTypedRoundTrip(t *testing.T) {
	s := memory.New("sessions")
	defer s.Close()
	kv := state.Typed(s, serde.String, serde.JSON[session]())
	in := map[string]session{"u1": {"ann", 3}, "u2": {"bob", 0}, "u0": {"cy", 9}}
	for k, v := range in {
		if err := kv.Put(k, v); err != nil {
			t.Fatal(err)
		}
	}
	for k, want := range in {
		if got, ok, err := kv.Get(k); got != want || !ok || err != nil {
			t.Fatalf("Get(%s) = %v, %v, %v", k, got, ok, err)
		}
	}
	var keys []string
	for k, v := range kv.All() {
		if in[k] != v {
			t.Fatalf("All: %s = %v", k, v)
		}
		keys = append(keys, k)
	}
	if !slices.Equal(keys, []string{"u0", "u1", "u2"}) {
		t.Fatalf("All keys = %q", keys)
	}
	keys = keys[:0]
	for k := range kv.Range("u1", "u9") {
		keys = append(keys, k)
	}
	if !slices.Equal(keys, []string{"u1", "u2"}) {
		t.Fatalf("Range keys = %q", keys)
	}
	if kv.Store() != s || kv.Name() != "sessions" || kv.ApproximateCount() != 3 {
		t.Fatal("accessors")
	}
}

// A value serde that writes nil (Kafka null) for a value deletes the key,
// as a tombstone in the changelog would.
func TestTypedNullValueDeletes(t *testing.T) {
	s := memory.New("b")
	defer s.Close()
	kv := state.Typed(s, serde.String, serde.Bytes)
	if err := kv.Put("k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if err := kv.Put("k", nil); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := kv.Get("k"); ok {
		t.Fatal("Put of null did not delete")
	}
	if err := kv.Put("e", []byte{}); err != nil {
		t.Fatal(err)
	}
	if v, ok, _ := kv.Get("e"); !ok || v == nil || len(v) != 0 {
		t.Fatalf("empty value: %#v, %v", v, ok)
	}
}

var errEncode = errors.New("cannot encode")

func TestTypedSerdeErrors(t *testing.T) {
	s := memory.New("e")
	defer s.Close()
	bad := serde.Func(
		func(string, string) ([]byte, error) { return nil, errEncode },
		func(string, []byte) (string, error) { return "", nil },
	)
	kv := state.Typed(s, bad, serde.String)
	if err := kv.Put("k", "v"); !errors.Is(err, errEncode) {
		t.Fatalf("Put: %v", err)
	}
	if _, _, err := kv.Get("k"); !errors.Is(err, errEncode) {
		t.Fatalf("Get: %v", err)
	}
	if err := kv.Delete("k"); !errors.Is(err, errEncode) {
		t.Fatalf("Delete: %v", err)
	}
	seq, errf := kv.RangeErr("a", "b")
	for range seq {
		t.Fatal("yielded")
	}
	if !errors.Is(errf(), errEncode) {
		t.Fatalf("RangeErr: %v", errf())
	}
	vkv := state.Typed(s, serde.String, serde.Func(
		func(string, int) ([]byte, error) { return nil, errEncode },
		func(string, []byte) (int, error) { return 0, nil },
	))
	if err := vkv.Put("k", 1); !errors.Is(err, errEncode) {
		t.Fatalf("Put with a failing value serde: %v", err)
	}
}
