package version

import (
	"testing"

	"github.com/halfopen/halfopen/tcprules"
)

// Every report writer's environment records the kernel tick the
// forecasts count in.
func TestEnvironmentRecordsTheTick(t *testing.T) {
	e := Environment()
	if e.Tick == nil || *e.Tick != tcprules.KernelTick() {
		t.Errorf("environment tick %+v, want the rules' %+v", e.Tick, tcprules.KernelTick())
	}
	if e.Kernel == "" || e.Go == "" || e.Halfopen == "" {
		t.Errorf("environment %+v lacks kernel, go or halfopen", e)
	}
}
