// Package hubtest holds the contract test suites of the hub interfaces
// (aoba.Broker, aoba.PresenceRegistry, aoba.RateLimiter, aoba.SessionCache,
// aoba.TicketStore, aoba.WatchRegistry and aoba.SocketRegistry). The hub package runs each against its in-process
// and its Redis implementation so that they cannot drift; any other
// implementation can run them too.
package hubtest

import (
	"testing"
	"time"
)

// eventually polls cond every few milliseconds until it returns true or
// timeout passes, then fails the test with msg.
func eventually(t *testing.T, timeout time.Duration, msg string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", timeout, msg)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
