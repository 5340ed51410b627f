package main_test

import (
	"testing"

	"github.com/aoba-chat/aoba/internal/redistest"
)

// TestDirectoryAcrossPods: each pod caches the users and blocks that 1:1
// sends read. A rename, an account deletion or a block on pod A reaches pod
// B's cache through Redis before A answers, so pod B refuses a send by the
// old name, to the deleted account or to the blocker on the very next
// request, with no wait. Two topologies: MongoDB (the embedded FerretDB)
// with Redis, and one SQLite file shared by both pods with Redis (the
// benchmarks' setup).
func TestDirectoryAcrossPods(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Redis")
	}
	topologies := map[string]func(t testing.TB) env{
		"MongoDBAndRedis": scaledEnv,
		"SharedSQLiteAndRedis": func(t testing.TB) env {
			return cheap(env{"AOBA_DATA_DIR": t.TempDir(), "AOBA_REDIS_URL": redistest.Shared(t).URL(),
				"AOBA_REDIS_PREFIX": redistest.Prefix(t), "AOBA_JWT_SECRET": testSecret})
		},
	}
	for name, envOf := range topologies {
		t.Run(name, func(t *testing.T) {
			e := envOf(t)
			a, b := startMain(t, e), startMain(t, e)
			alice, bob, carol := a.register(t, "alice"), b.register(t, "bob"), a.register(t, "carol")
			sendOnB := func(to string, status int) {
				t.Helper()
				b.do(t, "POST", "/api/messages", bob.Token, map[string]string{"to": to, "content": "hi"}).want(t, status)
			}
			// Pod B caches alice and carol.
			sendOnB(alice.Name, 201)
			sendOnB(carol.Name, 201)

			renamed := newName("alicia")
			a.do(t, "PUT", "/api/users/me/username", alice.Token, map[string]string{"username": renamed}).want(t, 200)
			sendOnB(alice.Name, 404)
			var m struct {
				To   string `json:"to"`
				ToID string `json:"to_id"`
			}
			b.do(t, "POST", "/api/messages", bob.Token, map[string]string{"to": renamed, "content": "hi"}).want(t, 201).decode(t, &m)
			if m.To != renamed || m.ToID != alice.ID {
				t.Fatalf("sent to %s (%s), want %s (%s)", m.To, m.ToID, renamed, alice.ID)
			}

			a.do(t, "DELETE", "/api/users/me", carol.Token, nil).want(t, 204)
			sendOnB(carol.Name, 404)

			a.do(t, "PUT", "/api/users/me/blocks/"+bob.Name, alice.Token, nil).want(t, 204)
			sendOnB(renamed, 403)
			a.do(t, "DELETE", "/api/users/me/blocks/"+bob.Name, alice.Token, nil).want(t, 204)
			sendOnB(renamed, 201)
		})
	}
}

// TestMemberCacheAcrossPods: each pod caches "this user is a member of this
// group" for group sends. A member removed, a member who left and a deleted
// group on pod A reach pod B's member cache through Redis before A answers,
// so pod B refuses the former member's next group send (404, as for any
// non-member) with no wait. Both pods share one MongoDB (the embedded
// FerretDB) and one Redis.
func TestMemberCacheAcrossPods(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Redis and FerretDB")
	}
	e := scaledEnv(t)
	a, b := startMain(t, e), startMain(t, e)
	owner, kicked, leaver := a.register(t, "owner"), b.register(t, "kicked"), b.register(t, "leaver")
	stayer := b.register(t, "stayer")
	gid := a.newGroup(t, owner.Token, "Cached")
	for _, u := range []*user{kicked, leaver, stayer} {
		a.do(t, "POST", "/api/groups/"+gid+"/members", owner.Token, map[string]string{"username": u.Name, "role": "member"}).want(t, 201)
	}
	sendOnB := func(u *user, status int) {
		t.Helper()
		b.do(t, "POST", "/api/messages", u.Token, map[string]string{"to": gid, "type": "groupchat", "content": "hi"}).want(t, status)
	}
	// Pod B caches every membership (twice: the second send is served
	// from the cache).
	for _, u := range []*user{owner, kicked, leaver, stayer} {
		sendOnB(u, 201)
		sendOnB(u, 201)
	}

	a.do(t, "DELETE", "/api/groups/"+gid+"/members/"+kicked.Name, owner.Token, nil).want(t, 204)
	sendOnB(kicked, 404)
	sendOnB(stayer, 201)

	a.do(t, "POST", "/api/groups/"+gid+"/leave", leaver.Token, nil).want(t, 200)
	sendOnB(leaver, 404)
	sendOnB(stayer, 201)

	a.do(t, "DELETE", "/api/groups/"+gid, owner.Token, nil).want(t, 204)
	sendOnB(stayer, 404)
	sendOnB(owner, 404)
}
