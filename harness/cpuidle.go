package harness

import (
	"encoding/binary"
	"fmt"
	"os"

	"github.com/halfopen/halfopen/internal/machine"
)

// The harness stamps instants in agents that sleep until a packet or a
// timer wakes them. On a virtual machine an idle CPU halts, and waking a
// halted virtual CPU goes through the hypervisor: on this machine
// (cpuidle driver haltpoll, guest_halt_poll_ns=0) that alone put the p99 of
// a SCHED_FIFO clock_nanosleep loop at 2.4–4 ms on an idle machine, and
// the harness's scheduled-decision probe (now timer-lateness) at a p99 of 3.37 ms with 16 labs
// at once, against 0.60 ms for the same run with the request below.
//
// So while a run has labs, it asks the kernel's PM QoS for a CPU wake-up
// latency of 0 µs by holding /dev/cpu_dma_latency open with 0 written
// (Documentation/power/pm_qos_interface.rst), as cyclictest does: cpuidle
// then keeps idle CPUs in their polling state instead of halting them.
// The request is the process's own: it ends when the file is closed, by
// Run.Close or by the kernel when the process dies, so nothing of it
// outlives the run. It costs idle CPU time (the idle CPUs spin) and nothing
// else: a polling CPU runs a woken task at once.
const (
	// envNoIdlePoll set to "1" runs without the request, to measure what
	// it buys.
	envNoIdlePoll = "HALFOPEN_NO_IDLE_POLL"
)

// idlePoll is a held PM QoS request, or why there is none.
type idlePoll struct {
	file *os.File
	note string // what the report says of the run's idle CPUs
}

// holdIdlePoll asks for a CPU wake-up latency of 0 µs for as long as the
// returned request is held. Where the kernel has no PM QoS device or
// refuses, the run goes on and the note says so: the calibration then
// measures the larger error.
func holdIdlePoll() idlePoll {
	if os.Getenv(envNoIdlePoll) == "1" {
		return idlePoll{note: "halting (" + envNoIdlePoll + "=1)"}
	}
	f, err := os.OpenFile(machine.CPULatencyFile, os.O_RDWR, 0)
	if err != nil {
		return idlePoll{note: fmt.Sprintf("halting (no PM QoS request: %v)", err)}
	}
	var zero [4]byte
	binary.NativeEndian.PutUint32(zero[:], 0)
	if _, err := f.Write(zero[:]); err != nil {
		_ = f.Close()
		return idlePoll{note: fmt.Sprintf("halting (PM QoS request refused: %v)", err)}
	}
	return idlePoll{file: f, note: "polling (" + machine.CPULatencyFile + " held at 0 µs while the run had labs)"}
}

// release ends the request.
func (p *idlePoll) release() {
	if p.file != nil {
		_ = p.file.Close()
		p.file = nil
	}
}
