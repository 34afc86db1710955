package harness

import (
	"os"

	"github.com/halfopen/halfopen/protocol"
)

// stdoutEmitter is the emitter of the current agent process.
var stdoutEmitter = protocol.NewEmitter(os.Stdout)
