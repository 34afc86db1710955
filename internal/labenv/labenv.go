// Package labenv holds the knobs of how halfopen makes labs that the
// command's tests turn: environment variables and the lab's task limit.
package labenv

const (
	// EnvCgroup chooses the lab's cgroup: auto (the default), v2, v1 or none.
	EnvCgroup = "HALFOPEN_CGROUP"
	// LabPids is the pids limit of one lab: processes and threads of its
	// agents, programs and services together. A fork fails past it.
	LabPids = 1024
	// EnvNoReaper set to "1" starts runs without a reaper, as on a machine
	// whose reaper died with it: for testing `halfopen gc`.
	EnvNoReaper = "HALFOPEN_NO_REAPER"
)
