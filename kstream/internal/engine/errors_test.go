package engine

import (
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
)

func TestProductionErrorNamesTheMissingPermission(t *testing.T) {
	err := error(&ProductionError{Topic: "out", Partition: 2, Err: kerr.TopicAuthorizationFailed})
	want := `kstream: produce to topic "out" partition 2: not authorized (the principal needs WRITE and DESCRIBE on TOPIC "out"): ` + kerr.TopicAuthorizationFailed.Error()
	if err.Error() != want || !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("error = %q, want %q wrapping TOPIC_AUTHORIZATION_FAILED", err, want)
	}
	err = &ProductionError{Topic: "out", Partition: 2, Err: kerr.MessageTooLarge}
	if want := `kstream: produce to topic "out" partition 2: ` + kerr.MessageTooLarge.Error(); err.Error() != want {
		t.Fatalf("error = %q, want %q", err, want)
	}
}
