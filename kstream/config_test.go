package kstream

import (
	"errors"
	"testing"
)

func TestParseDeliveryGuarantee(t *testing.T) {
	for in, want := range map[string]DeliveryGuarantee{
		"at-least-once": AtLeastOnce, "AT_LEAST_ONCE": AtLeastOnce,
		"at-most-once": AtMostOnce, "exactly-once": ExactlyOnce, "exactly_once_v2": ExactlyOnce,
	} {
		got, err := ParseDeliveryGuarantee(in)
		if err != nil || got != want {
			t.Errorf("ParseDeliveryGuarantee(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, g := range []DeliveryGuarantee{AtLeastOnce, AtMostOnce, ExactlyOnce} {
		var back DeliveryGuarantee
		b, _ := g.MarshalText()
		if err := back.UnmarshalText(b); err != nil || back != g {
			t.Errorf("round trip of %v: %v, %v", g, back, err)
		}
	}
	if _, err := ParseDeliveryGuarantee("twice"); !errors.Is(err, ErrConfig) {
		t.Errorf("ParseDeliveryGuarantee(twice) error = %v, want ErrConfig", err)
	}
}
