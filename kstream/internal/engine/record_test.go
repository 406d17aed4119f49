package engine

import "testing"

func TestTaskIDText(t *testing.T) {
	id := TaskID{Subtopology: 2, Partition: 11}
	b, err := id.MarshalText()
	if err != nil || string(b) != "2_11" {
		t.Fatalf("MarshalText = %q, %v", b, err)
	}
	var got TaskID
	if err := got.UnmarshalText(b); err != nil || got != id {
		t.Fatalf("UnmarshalText = %v, %v", got, err)
	}
	for _, bad := range []string{"", "2", "a_1", "1_b", "-1_0", "1_-2"} {
		if err := got.UnmarshalText([]byte(bad)); err == nil {
			t.Errorf("UnmarshalText(%q) succeeded", bad)
		}
	}
}
