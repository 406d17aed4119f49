package wire

import (
	"errors"
	"testing"
)

func TestUserDataRoundTrip(t *testing.T) {
	in := MemberInfo{Version: UserDataVersion, InstanceID: "host-7", Worker: 3}
	b := EncodeMemberInfo(in)
	got, err := DecodeMemberInfo(b)
	if err != nil || got != in {
		t.Fatalf("decode = %+v, %v; want %+v", got, err, in)
	}
	// A later version appends fields: this decoder reads what it knows.
	later := append([]byte{2}, b[1:]...)
	later = append(later, "host:8080"...)
	got, err = DecodeMemberInfo(later)
	if err != nil || got.InstanceID != "host-7" || got.Worker != 3 || got.Version != 2 {
		t.Fatalf("decode later version = %+v, %v", got, err)
	}
	for _, bad := range [][]byte{nil, {0}, {1}, {1, 0, 5, 'a'}, b[:len(b)-1]} {
		if _, err := DecodeMemberInfo(bad); !errors.Is(err, ErrUserData) {
			t.Errorf("decode(%v) err = %v, want ErrUserData", bad, err)
		}
	}
}

func FuzzDecodeUserData(f *testing.F) {
	f.Add(EncodeMemberInfo(MemberInfo{InstanceID: "x", Worker: 1}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeMemberInfo(b)
		if err != nil {
			return
		}
		again, err := DecodeMemberInfo(EncodeMemberInfo(m))
		if err != nil || again.InstanceID != m.InstanceID || again.Worker != m.Worker {
			t.Fatalf("re-decode %+v: %+v, %v", m, again, err)
		}
	})
}
