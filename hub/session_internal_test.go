package hub

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/aoba-chat/aoba"
)

// TestMemorySessionsSweep checks that expired entries do not pile up: the
// writes sweep them.
func TestMemorySessionsSweep(t *testing.T) {
	ctx := context.Background()
	m := NewMemorySessions()
	for round := 0; round < 5; round++ {
		soon := time.Now().Add(20 * time.Millisecond)
		for i := 0; i < 2000; i++ {
			id := fmt.Sprintf("r%d-%d", round, i)
			_ = m.Remember(ctx, id, "t", soon)
			_ = m.RevokeUserSessions(ctx, id, time.Now(), "", 20*time.Millisecond)
			_ = m.IssueTicket(ctx, id, aoba.Claims{UserID: id}, 20*time.Millisecond)
		}
		time.Sleep(30 * time.Millisecond)
	}
	m.mu.RLock()
	n := len(m.sessions) + len(m.users)
	m.mu.RUnlock()
	m.tmu.Lock()
	nt := len(m.tickets)
	m.tmu.Unlock()
	// 20000 session and cutoff writes, 10000 tickets, at most 4000 and
	// 2000 of them live at a time: the sweeps keep a few rounds at most.
	if n > 3*4000 || nt > 3*2000 {
		t.Fatalf("%d session entries and %d tickets left after the sweeps, want at most %d and %d", n, nt, 3*4000, 3*2000)
	}
}
