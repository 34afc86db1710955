// Package grpcgate gates grpc-go (google.golang.org/grpc) on real packets
// with halfopen: how fast a grpc-go client with an open, idle stream
// notices that its server is gone (keepalive.ClientParameters), and how
// fast a grpc-go server notices that a client which opened a stream and
// went idle is gone (keepalive.ServerParameters: the reference text's
// passive server).
//
// Everything is in the test files: the roles (roles_test.go), the suite
// (gate_suite_test.go) and its cells with their budgets (gate_test.go). Run
// it as root, or as an ordinary user where user namespaces are allowed,
// all of it or the entries a filter chooses:
//
//	HALFOPEN_REPORT_DIR=/tmp/reports go test -count=1 ./...
//	go tool ginkgo --label-filter='client && in-flight' .
//
// README.md has the measured table and the settings a user should choose.
package grpcgate
