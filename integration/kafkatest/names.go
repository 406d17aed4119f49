package kafkatest

import (
	"crypto/rand"
	"encoding/hex"
	"strings"
	"testing"
)

// maxNameTestPart bounds how much of the test's name goes into a name, so
// that names stay well under Kafka's 249 character topic limit.
const maxNameTestPart = 120

// UniqueName returns a topic, group or transactional ID name that no other
// test (nor another run of this one) uses: prefix, the test's name and a
// random suffix, in Kafka-legal characters ([a-zA-Z0-9._-]). Call it once
// per name a test needs.
func UniqueName(t testing.TB, prefix string) string {
	t.Helper()
	var suffix [6]byte
	if _, err := rand.Read(suffix[:]); err != nil {
		t.Fatalf("kafkatest: random name suffix: %v", err)
	}
	testPart := legalName(t.Name())
	if len(testPart) > maxNameTestPart {
		testPart = testPart[:maxNameTestPart]
	}
	parts := make([]string, 0, 3)
	if p := legalName(prefix); p != "" {
		parts = append(parts, p)
	}
	parts = append(parts, testPart, hex.EncodeToString(suffix[:]))
	return strings.Join(parts, "-")
}

// legalName maps every character Kafka does not allow in a topic name to
// '-'. It avoids '.' too: Kafka warns that '.' and '_' collide in metric
// names.
func legalName(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '-':
			return r
		default:
			return '-'
		}
	}, s)
}
