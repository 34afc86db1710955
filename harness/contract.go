package harness

import (
	"context"
	"time"

	"github.com/halfopen/halfopen/protocol"
	"github.com/halfopen/halfopen/report"
	"github.com/halfopen/halfopen/tcprules"
)

// This file is the whole extension contract. A fault needs Inject and
// Effect, a detector Predict and Watch; the rest are optional capabilities
// found by type assertion. The named ones below have more than one
// implementer; those with one are declared, unexported, where they are used:
// a fault's ResetAfter and Returned (hostreboot, theory.go, sample.go),
// SignalsWatcher (signalstorm) and CutsWatcherLink (local-cable-pull,
// theory.go); a detector's FooledBySignals (naive-recv) and OwnReasons
// (roles, theory.go), Conns (heartbeat-dedicated, session.go), Sysctls
// (keepalive-default, cell.go), PeerSaw (oob-probe, sample.go).
//
// Theory for a cell (theory.go), first match wins: (1) EffectTransient: a
// disturbance cell, from Silencer, SignalsWatcher, FooledBySignals, Sender,
// Writer; (2) an Expecter fault; (3) EffectResetOnWrite, with ResetAfter and
// Sender; (4) CutsWatcherLink and a LocalFailurePredictor; (5) a FIN or RST
// and a ClosePredictor; (6) the Effect's generic rule (FIN/RST at once, a
// silent peer gets Predict). Then FaultReasons replaces a silent cell's
// ETIMEDOUT, and OwnReasons replaces any reasons. A detector's Sysctls
// are written last and win; ServicePeer wins over Program's peer;
// ResetForecaster wins over SamplePredictor after a Returned.

// Fault injects one failure into a lab; faults register in init() with RegisterFault.
type Fault interface {
	// Inject makes the failure happen in lab to the sample's conn: the CLOCK_MONOTONIC instant it took effect, which no effect may precede (taken before the call when the watcher can see the failure before the call returns, as a reset can), and how to heal it (nil: cannot be).
	Inject(ctx context.Context, lab *Lab, conn *Conn) (heal Heal, at int64, err error)
	// Effect says what the watcher's kernel sees.
	Effect() Effect
}

// Detector is a dead-peer detection strategy: its watcher side runs in the watcher agent, its peer is the built-in echo peer.
type Detector interface {
	// Predict gives the detection range for a silent peer, from theory.
	Predict() Prediction
	// Watch blocks until the detector decides that the peer is dead, or ctx ends.
	Watch(ctx context.Context, w *Watch) Decision
}

// Optional capabilities of a fault, each with more than one implementer.
type (
	// Preparer arranges the lab before the connection is made (after the cell's sysctls).
	Preparer interface {
		Prepare(ctx context.Context, lab *Lab, conn *Conn) error
	}
	// Windowed is a transient fault: how long a disturbance sample observes before healing.
	Windowed interface{ Window() time.Duration }
	// Noter says what a sample in this lab could not see; it becomes the cell's note.
	Noter interface {
		Note(lab *Lab, conn *Conn) string
	}
	// Expecter has a detector-dependent theory; it wins over every other detection rule.
	Expecter interface {
		Expect(det Detector) (Prediction, report.Expectation)
	}
	// Silencer is a transient fault that silences the path for a while.
	Silencer interface{ Silence() Silence }
	// FaultReasons is a silent fault whose path reports its own error in place of ETIMEDOUT.
	FaultReasons interface{ Reasons() []string }
	// Validator checks parameters against each other after decoding (faults and detectors).
	Validator interface{ Validate() error }
)

// Optional capabilities of a detector, each with more than one implementer.
type (
	// ClosePredictor reacts to a FIN or RST other than at once (it polls, or never reads).
	ClosePredictor interface{ PredictClose(e Effect) Prediction }
	// Sender: the longest gap its watcher leaves between segments to a silent peer.
	Sender interface{ MaxSendGap() time.Duration }
	// Writer writes every WriteEvery while healthy (its lost segment is resent on the RTO).
	Writer interface{ WriteEvery() time.Duration }
	// LocalFailurePredictor predicts itself when its own link is cut.
	LocalFailurePredictor interface{ PredictLocalFailure() Prediction }
	// SamplePredictor forecasts one sample from the connection's state at the fault.
	SamplePredictor interface {
		PredictSample(st tcprules.ConnState, e Effect) (tcprules.Forecast, bool)
	}
	// ResetForecaster forecasts a sample whose path resets segments only from `after` on.
	ResetForecaster interface {
		PredictResetAfter(st tcprules.ConnState, after time.Duration) (tcprules.Forecast, bool)
	}
	// Program is a detector whose watcher (and maybe peer) is a program of its own speaking protocol v1.
	Program interface {
		// WatcherProgram returns how to start the watcher for a side and address.
		WatcherProgram(side protocol.Side, addr string) ProcSpec
		// PeerProgram returns how to start the peer, or false for the built-in peer.
		PeerProgram(side protocol.Side, addr string) (ProcSpec, bool)
	}
	// ServicePeer is a detector whose peer is a real server its watcher dials.
	ServicePeer interface{ PeerService() (Service, bool) }
)
