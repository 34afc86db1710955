package harness

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/halfopen/halfopen/capture"
	"github.com/halfopen/halfopen/internal/topo"
	"github.com/halfopen/halfopen/report"
)

// captureLimit bounds one sample's pcapng capture: a sample that ran long
// keeps its first packets and counts the rest.
const captureLimit = 1 << 20

// startEvidence starts capturing the router's two ports for one sample, the
// watched flow's packets as they cross (pure Go over AF_PACKET), when the
// run keeps captures.
func (m *Matrix) startEvidence(ctx context.Context, lab *Lab) (*capture.Capture, error) {
	if m.captureDir == "" {
		return nil, nil
	}
	h := lab.Host(topo.Router)
	if h == nil {
		return nil, fmt.Errorf("lab %s: router is gone", lab.ID)
	}
	return capture.Start(ctx, h, []string{topo.RouterPeerLink, topo.RouterWatchLink}, captureLimit)
}

// keepEvidence stops a sample's capture and keeps it as pcapng beside the
// report when the sample surprises (an error, outside its prediction, a
// false positive: report.Cell.Surprise) or every capture is wanted (--pcap);
// the sample then names it, relative to the report.
func (m *Matrix) keepEvidence(c *Cell, cp *capture.Capture, name string, s *report.Sample) error {
	if cp == nil {
		return nil
	}
	if err := cp.Stop(); err != nil {
		return err
	}
	h := c.header()
	if !m.opt.Pcap && h.Surprise(*s) == "" {
		return nil
	}
	if err := os.MkdirAll(m.captureDir, 0o755); err != nil {
		return fmt.Errorf("capture directory: %w", err)
	}
	path := filepath.Join(m.captureDir, name+".pcapng")
	if err := cp.WritePcapng(path); err != nil {
		return err
	}
	rel, err := filepath.Rel(filepath.Dir(m.store.Path()), path)
	if err != nil {
		rel = path
	}
	s.Pcap = rel
	return nil
}

// header is the cell's record without samples: what the report says of it
// before any sample, and what judges a sample.
func (c *Cell) header() report.Cell {
	k := c.Key()
	return report.Cell{
		Detector: c.DetSpec.String(), Fault: c.FaultSpec.String(), Side: k.Side, Kind: k.Kind, Phase: k.Phase,
		BudgetS: c.Budget.Seconds(), PredictedS: c.Prediction.Seconds(), PredictedRule: c.Prediction.Rule,
		Expect: c.Expect, Reasons: c.Prediction.Reasons,
	}
}
