package suites

import (
	"testing"

	"github.com/halfopen/halfopen/gate"
)

// TestMain dispatches agent mode first: reading a foreign detector's hello
// starts a probe lab, whose reaper is this test binary re-executed.
func TestMain(m *testing.M) { gate.Main(m) }
