package harness

import (
	"fmt"
	"strconv"
	"strings"
)

// Shard keeps the items (cells, table entries) of shard i of n ("i/n",
// 1-based): every n-th item, so that shards of a CI matrix split the work
// evenly and `halfopen merge` puts them back together. An empty shard spec
// keeps every item.
func Shard[T any](items []T, spec string) ([]T, error) {
	if spec == "" {
		return items, nil
	}
	is, ns, ok := strings.Cut(spec, "/")
	i, ierr := strconv.Atoi(is)
	n, nerr := strconv.Atoi(ns)
	if !ok || ierr != nil || nerr != nil || n < 1 || i < 1 || i > n {
		return nil, fmt.Errorf("shard %q is not i/n with 1 <= i <= n, e.g. 2/4", spec)
	}
	var out []T
	for k, c := range items {
		if k%n == i-1 {
			out = append(out, c)
		}
	}
	return out, nil
}
