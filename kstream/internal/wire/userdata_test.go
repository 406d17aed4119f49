package wire

import (
	"errors"
	"reflect"
	"testing"
)

func TestUserDataRoundTrip(t *testing.T) {
	in := MemberInfo{Version: UserDataVersion, InstanceID: "host-7", Worker: 3, QueryAddr: "10.0.0.7:8080",
		TaskOffsets: []TaskOffset{{Sub: 0, Partition: 2, Offset: 1234}, {Sub: 1, Partition: 0, Offset: TaskRunning}}}
	b := EncodeMemberInfo(in)
	got, err := DecodeMemberInfo(b)
	if err != nil || !reflect.DeepEqual(got, in) {
		t.Fatalf("decode = %+v, %v; want %+v", got, err, in)
	}
	// A later version appends fields: this decoder reads what it knows.
	later := append([]byte{3}, b[1:]...)
	later = append(later, "future"...)
	got, err = DecodeMemberInfo(later)
	want := in
	want.Version = 3
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("decode later version = %+v, %v", got, err)
	}
	for _, bad := range [][]byte{nil, {0}, {1}, {1, 0, 5, 'a'}, b[:len(b)-1], {2, 0, 0, 0, 0, 0, 1, 0, 0, 0xff, 0xff, 0xff, 0xff}} {
		if _, err := DecodeMemberInfo(bad); !errors.Is(err, ErrUserData) {
			t.Errorf("decode(%v) err = %v, want ErrUserData", bad, err)
		}
	}
}

// A version 1 member (instance id and worker only) decodes with no query
// address and no task offsets: the format a member of the previous release
// sends during a rolling upgrade.
func TestUserDataVersion1(t *testing.T) {
	v1 := []byte{1, 0, 2, 'h', '1', 0, 0, 0, 4}
	got, err := DecodeMemberInfo(v1)
	want := MemberInfo{Version: 1, InstanceID: "h1", Worker: 4}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("decode v1 = %+v, %v; want %+v", got, err, want)
	}
}

func TestAssignmentInfoRoundTrip(t *testing.T) {
	in := AssignmentInfo{Version: AssignmentInfoVersion,
		Standby:   []Task{{0, 1}, {1, 3}},
		NextProbe: 1_700_000_000_000,
		Hosts: []HostTasks{
			{Addr: "a:1", Active: []Task{{0, 0}}, Standby: []Task{{0, 1}}},
			{Addr: "b:2", Active: []Task{{0, 1}, {1, 3}}},
		}}
	got, err := DecodeAssignmentInfo(EncodeAssignmentInfo(in))
	if err != nil || !reflect.DeepEqual(got, in) {
		t.Fatalf("decode = %+v, %v; want %+v", got, err, in)
	}
	if got, err := DecodeAssignmentInfo(nil); err != nil || !reflect.DeepEqual(got, AssignmentInfo{}) {
		t.Fatalf("decode(nil) = %+v, %v", got, err)
	}
	b := EncodeAssignmentInfo(in)
	for _, bad := range [][]byte{{0}, b[:len(b)-1], {1, 0xff, 0xff, 0xff, 0xff}} {
		if _, err := DecodeAssignmentInfo(bad); !errors.Is(err, ErrAssignmentInfo) {
			t.Errorf("decode(%v) err = %v, want ErrAssignmentInfo", bad, err)
		}
	}
}

func TestSortTasks(t *testing.T) {
	ts := []Task{{1, 0}, {0, 2}, {0, 1}}
	SortTasks(ts)
	if want := []Task{{0, 1}, {0, 2}, {1, 0}}; !reflect.DeepEqual(ts, want) {
		t.Fatalf("SortTasks = %v, want %v", ts, want)
	}
}

func FuzzDecodeUserData(f *testing.F) {
	f.Add(EncodeMemberInfo(MemberInfo{InstanceID: "x", Worker: 1}))
	f.Add(EncodeMemberInfo(MemberInfo{InstanceID: "x", Worker: 1, QueryAddr: "h:1", TaskOffsets: []TaskOffset{{1, 2, 3}}}))
	f.Add([]byte{1, 0, 1, 'x', 0, 0, 0, 1})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeMemberInfo(b)
		if err != nil {
			return
		}
		again, err := DecodeMemberInfo(EncodeMemberInfo(m))
		m.Version = UserDataVersion
		if err != nil || !reflect.DeepEqual(again, m) {
			t.Fatalf("re-decode %+v: %+v, %v", m, again, err)
		}
	})
}

func FuzzDecodeAssignmentInfo(f *testing.F) {
	f.Add(EncodeAssignmentInfo(AssignmentInfo{Standby: []Task{{0, 1}}, NextProbe: 5, Hosts: []HostTasks{{Addr: "a:1", Active: []Task{{0, 0}}}}}))
	f.Add([]byte{})
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := DecodeAssignmentInfo(b)
		if err != nil || len(b) == 0 {
			return
		}
		again, err := DecodeAssignmentInfo(EncodeAssignmentInfo(a))
		a.Version = AssignmentInfoVersion
		if err != nil || !reflect.DeepEqual(again, a) {
			t.Fatalf("re-decode %+v: %+v, %v", a, again, err)
		}
	})
}
