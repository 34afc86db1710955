package suites

import "testing"

// TestMain dispatches agent mode first: reading a foreign detector's hello
// starts a probe lab, whose reaper is this test binary re-executed.
func TestMain(m *testing.M) { Main(m) }
