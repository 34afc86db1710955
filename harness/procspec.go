package harness

// The two kinds of program a lab runs, each with its own constructor
// instead of a combination of ProcSpec's flags to get right; a Service's
// server is the third (Service.procSpec: unparsed output, its own user).

// AgentProc is one of halfopen's own agents (exe re-executed, env naming
// which): it runs as root, may print events beyond protocol v1, and runs at
// real-time priority (realtimePolicy) while its lab measures.
func AgentProc(exe, label string, env ...string) ProcSpec {
	return ProcSpec{Path: exe, Label: label, Env: env, Realtime: true}
}

// ForeignProc is a program of its own that speaks protocol v1 (a
// detector's watcher or peer): only v1 events are accepted, it runs as
// nobody unless privileged, and at real-time priority while its lab measures.
func ForeignProc(path, label string, privileged bool, env ...string) ProcSpec {
	return ProcSpec{Path: path, Label: label, Env: env, Strict: true, Unprivileged: !privileged, Realtime: true}
}
