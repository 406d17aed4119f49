package wire

import (
	"bytes"
	"errors"
	"testing"
)

func TestFKMessages(t *testing.T) {
	b := AppendSubscription(nil, SubscribeRespondIfFound, 42, []byte("left"))
	instr, h, lk, err := DecodeSubscription(b)
	if err != nil || instr != SubscribeRespondIfFound || h != 42 || string(lk) != "left" {
		t.Fatalf("subscription: %d %d %q %v", instr, h, lk, err)
	}
	b = AppendResponse(nil, 7, true, []byte("right"))
	h, found, rv, err := DecodeResponse(b)
	if err != nil || h != 7 || !found || string(rv) != "right" {
		t.Fatalf("response: %d %v %q %v", h, found, rv, err)
	}
	if _, found, _, err := DecodeResponse(AppendResponse(nil, 0, false, nil)); err != nil || found {
		t.Fatalf("not-found response: %v %v", found, err)
	}
	for _, bad := range [][]byte{nil, {1, 9, 0, 0, 0, 0, 0, 0, 0, 0}, {2, 1, 0, 0, 0, 0, 0, 0, 0, 0}} {
		if _, _, _, err := DecodeSubscription(bad); !errors.Is(err, ErrFKMessage) {
			t.Errorf("DecodeSubscription(%x) = %v", bad, err)
		}
	}
	for _, bad := range [][]byte{nil, {1, 0, 0, 0, 0, 0, 0, 0, 0, 2}, {1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5}} {
		if _, _, _, err := DecodeResponse(bad); !errors.Is(err, ErrFKMessage) {
			t.Errorf("DecodeResponse(%x) = %v", bad, err)
		}
	}
	key := SubscriptionKey([]byte("fk"), []byte("left\x00key"))
	if !bytes.HasPrefix(key, SubscriptionPrefix([]byte("fk"))) || bytes.HasPrefix(key, SubscriptionPrefix([]byte("f"))) {
		t.Fatalf("subscription key %x", key)
	}
	if lk, err := LeftKeyOf(key); err != nil || string(lk) != "left\x00key" {
		t.Fatalf("LeftKeyOf = %q, %v", lk, err)
	}
	if ValueHash(nil) != 0 || ValueHash([]byte{}) == 0 || ValueHash([]byte("a")) == ValueHash([]byte("b")) {
		t.Fatal("ValueHash")
	}
}

func FuzzFKMessages(f *testing.F) {
	f.Add(AppendSubscription(nil, SubscribeAndRespond, 1, []byte("k")))
	f.Add(AppendResponse(nil, 3, true, []byte("v")))
	f.Fuzz(func(t *testing.T, b []byte) {
		if instr, h, lk, err := DecodeSubscription(b); err == nil {
			i2, h2, lk2, err := DecodeSubscription(AppendSubscription(nil, instr, h, lk))
			if err != nil || i2 != instr || h2 != h || !bytes.Equal(lk, lk2) {
				t.Fatalf("subscription %x does not round-trip", b)
			}
		}
		if h, found, rv, err := DecodeResponse(b); err == nil {
			h2, f2, rv2, err := DecodeResponse(AppendResponse(nil, h, found, rv))
			if err != nil || h2 != h || f2 != found || !bytes.Equal(rv, rv2) {
				t.Fatalf("response %x does not round-trip", b)
			}
		}
		_, _ = LeftKeyOf(b)
	})
}
