// Package natsgate gates nats.go (github.com/nats-io/nats.go) and
// nats-server (github.com/nats-io/nats-server/v2, embedded) on real packets
// with halfopen: how fast a nats.go client, subscribed and idle, notices
// that its nats-server is gone, how fast nats-server notices that such a
// client is gone (PingInterval and MaxPingsOut on either end), and whether
// either keeps a healthy connection through a router restart.
//
// Everything is in the test files: the role (roles_test.go), the suite
// (gate_suite_test.go) and its cells with their budgets (gate_test.go). Run
// it as root, or as an ordinary user where user namespaces are allowed,
// all of it or the entries a filter chooses:
//
//	HALFOPEN_REPORT_DIR=/tmp/reports go test -count=1 ./...
//	go tool ginkgo --label-filter='server && recommended' .
//
// README.md has the measured table and the settings a user should choose.
package natsgate
