// Package clustertest holds the multi-pod integration tests of Aoba: it
// builds the real cmd/aoba binary once, starts several pods as separate
// processes on one Redis (a real redis-server) and one MongoDB (the embedded
// FerretDB of internal/mongotest), and checks what only a cluster can show:
// cross-pod delivery, presence and session revocation, a Redis restart
// during a message stream, and a pod killed with SIGKILL.
//
// It has no code of its own; run it with `go test ./internal/clustertest/`
// and its latency benchmark with `go test -run X -bench . ./internal/clustertest/`.
package clustertest
