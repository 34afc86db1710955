// Package nftcount reads what nftables rules did to real packets: the sum
// of their counters. Faults and the harness's wire counter use it.
package nftcount

import (
	"fmt"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
)

// Sum adds up the packets and bytes of every counter in the rules of
// the given chains (only the rules keep accepts, when it is not nil): how
// nftables rules show their effect on real packets.
func Sum(conn *nftables.Conn, t *nftables.Table, keep func(*nftables.Rule) bool, chains ...*nftables.Chain) (packets, bytes uint64, err error) {
	for _, c := range chains {
		rules, err := conn.GetRules(t, c)
		if err != nil {
			return 0, 0, fmt.Errorf("read the counters of chain %s: %w", c.Name, err)
		}
		for _, r := range rules {
			if keep != nil && !keep(r) {
				continue
			}
			for _, e := range r.Exprs {
				if ctr, ok := e.(*expr.Counter); ok {
					packets += ctr.Packets
					bytes += ctr.Bytes
				}
			}
		}
	}
	return packets, bytes, nil
}
