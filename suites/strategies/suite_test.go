// Package strategies_test measures every detection strategy of the
// reference text on real packets in fresh labs:
//
//	[peer host] ==veth== [router host] ==veth== [watcher host]
//	echo peer or a      (forwarding, nftables,   the strategy's watcher:
//	foreign peer         conntrack)              halfopen's agent, a C
//	                                             example or a Python one
//
// Each strategy against a FIN (graceful-close) and a silent peer
// (blackhole) on both sides; the EINTR trap under a signal storm; dedicated
// against in-band heart-beats when a middlebox forgets the data flow; and
// the reference text's C snippets and a Python detector, speaking protocol
// v1, against their Go twins.
package strategies_test

import (
	"os"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	_ "github.com/halfopen/halfopen/detectors"
	_ "github.com/halfopen/halfopen/faults"
	"github.com/halfopen/halfopen/harness"
)

func TestMain(m *testing.M) {
	harness.MaybeRunAgent()
	os.Exit(m.Run())
}

func TestStrategies(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Detection strategies")
}
