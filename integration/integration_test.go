package integration

import (
	"testing"

	"github.com/streamwork-go/streamwork/integration/kafkatest"
)

// TestMain shares one real broker among the package's tests and stops it
// afterwards.
func TestMain(m *testing.M) { kafkatest.Main(m) }
