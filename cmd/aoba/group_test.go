package main_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/aoba-chat/aoba"
)

type createdGroup struct {
	Group       aoba.GroupView        `json:"group"`
	Invitations []aoba.InvitationView `json:"invitations_sent"`
	Unknown     []string              `json:"unknown_users"`
}

func TestGroups(t *testing.T) {
	forEachMode(t, func(t *testing.T, start func(env) *server) {
		s := start(nil)
		owner := s.register(t, "owner")
		bob := s.register(t, "bob")
		carol := s.register(t, "carol")
		dave := s.register(t, "dave")
		ghost := newName("ghost")

		var g createdGroup
		t.Run("Create", func(t *testing.T) {
			s.do(t, "POST", "/api/groups", owner.Token, map[string]any{"name": "Engineering", "initial_members": []string{bob.Name, ghost}}).want(t, 201).decode(t, &g)
			if g.Group.Name != "Engineering" || g.Group.OwnerUsername != owner.Name || len(g.Group.Members) != 1 ||
				len(g.Invitations) != 1 || g.Invitations[0].InviteeUsername != bob.Name || len(g.Unknown) != 1 {
				t.Fatalf("created = %+v", g)
			}
			s.do(t, "POST", "/api/groups", owner.Token, map[string]any{"name": ""}).want(t, 400)
			s.do(t, "POST", "/api/groups", owner.Token, map[string]any{"name": string(make([]byte, 101))}).want(t, 400)
			s.do(t, "POST", "/api/groups", owner.Token, map[string]any{"name": "x", "initial_members": "bob"}).want(t, 400)
			s.do(t, "POST", "/api/groups", "", map[string]any{"name": "x"}).want(t, 401)
		})
		gid := g.Group.ID
		t.Run("List", func(t *testing.T) {
			var out struct {
				Groups []aoba.GroupView `json:"groups"`
				Count  int              `json:"count"`
			}
			s.do(t, "GET", "/api/groups", owner.Token, nil).want(t, 200).decode(t, &out)
			if out.Count != 1 || out.Groups[0].ID != gid {
				t.Fatalf("groups = %+v", out)
			}
			s.do(t, "GET", "/api/groups", bob.Token, nil).want(t, 200).decode(t, &out)
			if out.Count != 0 || out.Groups == nil {
				t.Fatalf("bob's groups = %+v", out)
			}
		})
		t.Run("Invitations", func(t *testing.T) {
			var out struct {
				Invitations []aoba.InvitationView `json:"invitations"`
				Count       int                   `json:"count"`
			}
			s.do(t, "GET", "/api/invitations", bob.Token, nil).want(t, 200).decode(t, &out)
			if out.Count != 1 || out.Invitations[0].GroupID != gid || out.Invitations[0].Status != aoba.InvitationPending {
				t.Fatalf("invitations = %+v", out)
			}
			inv := out.Invitations[0].ID
			s.do(t, "POST", "/api/invitations/"+inv+"/accept", carol.Token, nil).want(t, 404)
			s.do(t, "POST", "/api/invitations/not-a-uuid/accept", bob.Token, nil).want(t, 400)
			s.do(t, "POST", "/api/invitations/"+aoba.NewID()+"/accept", bob.Token, nil).want(t, 404)
			var acc struct {
				Message    string         `json:"message"`
				Group      aoba.GroupView `json:"group"`
				Membership aoba.Member    `json:"membership"`
			}
			s.do(t, "POST", "/api/invitations/"+inv+"/accept", bob.Token, nil).want(t, 200).decode(t, &acc)
			if acc.Group.ID != gid || acc.Membership.Username != bob.Name || acc.Membership.Role != aoba.RoleMember {
				t.Fatalf("accept = %+v", acc)
			}
			s.do(t, "POST", "/api/invitations/"+inv+"/accept", bob.Token, nil).want(t, 409)
			s.do(t, "POST", "/api/invitations/"+inv+"/deny", bob.Token, nil).want(t, 409)

			var i aoba.InvitationView
			s.do(t, "POST", "/api/groups/"+gid+"/invitations", bob.Token, map[string]string{"username": carol.Name}).want(t, 201).decode(t, &i)
			if i.InviterUsername != bob.Name || i.InviteeUsername != carol.Name || i.RespondedAt != nil {
				t.Fatalf("invitation = %+v", i)
			}
			s.do(t, "POST", "/api/groups/"+gid+"/invitations", owner.Token, map[string]string{"username": carol.Name}).want(t, 409)
			s.do(t, "POST", "/api/groups/"+gid+"/invitations", owner.Token, map[string]string{"username": bob.Name}).want(t, 409)
			s.do(t, "POST", "/api/groups/"+gid+"/invitations", owner.Token, map[string]string{"username": ghost}).want(t, 404)
			s.do(t, "POST", "/api/groups/"+gid+"/invitations", owner.Token, map[string]string{}).want(t, 400)
			var den struct {
				Message      string `json:"message"`
				InvitationID string `json:"invitation_id"`
			}
			s.do(t, "POST", "/api/invitations/"+i.ID+"/deny", carol.Token, nil).want(t, 200).decode(t, &den)
			if den.InvitationID != i.ID {
				t.Fatalf("deny = %+v", den)
			}
		})
		t.Run("Members", func(t *testing.T) {
			var m aoba.Member
			s.do(t, "POST", "/api/groups/"+gid+"/members", owner.Token, map[string]string{"username": carol.Name, "role": "admin"}).want(t, 201).decode(t, &m)
			if m.Role != aoba.RoleAdmin || m.Username != carol.Name {
				t.Fatalf("member = %+v", m)
			}
			s.do(t, "POST", "/api/groups/"+gid+"/members", owner.Token, map[string]string{"username": carol.Name}).want(t, 409)
			s.do(t, "POST", "/api/groups/"+gid+"/members", owner.Token, map[string]string{"username": ghost}).want(t, 404)
			s.do(t, "POST", "/api/groups/"+gid+"/members", owner.Token, map[string]string{"username": dave.Name, "role": "owner"}).want(t, 400)
			var list struct {
				Members    []aoba.Member `json:"members"`
				TotalCount int           `json:"total_count"`
			}
			s.do(t, "GET", "/api/groups/"+gid+"/members", bob.Token, nil).want(t, 200).decode(t, &list)
			if list.TotalCount != 3 || list.Members[0].Status == "" {
				t.Fatalf("members = %+v", list)
			}
			s.do(t, "PUT", "/api/groups/"+gid+"/members/"+bob.Name+"/role", owner.Token, map[string]string{"role": "admin"}).want(t, 200).decode(t, &m)
			if m.Role != aoba.RoleAdmin {
				t.Fatalf("role = %+v", m)
			}
			s.do(t, "PUT", "/api/groups/"+gid+"/members/"+bob.Name+"/role", owner.Token, map[string]string{"role": "owner"}).want(t, 400)
			s.do(t, "PUT", "/api/groups/"+gid+"/members/"+ghost+"/role", owner.Token, map[string]string{"role": "member"}).want(t, 404)
			s.do(t, "DELETE", "/api/groups/"+gid+"/members/"+bob.Name, owner.Token, nil).want(t, 204)
			s.do(t, "DELETE", "/api/groups/"+gid+"/members/"+bob.Name, owner.Token, nil).want(t, 404)
		})
		t.Run("AdminView", func(t *testing.T) {
			var v aoba.GroupAdminView
			s.do(t, "GET", "/api/groups/"+gid+"/admin", carol.Token, nil).want(t, 200).decode(t, &v)
			if v.OwnerCount != 1 || v.AdminCount != 1 || v.CurrentUserRole != aoba.RoleAdmin || v.Group.ID != gid {
				t.Fatalf("admin = %+v", v)
			}
		})
		t.Run("TransferLeaveDelete", func(t *testing.T) {
			s.do(t, "POST", "/api/groups/"+gid+"/leave", owner.Token, nil).want(t, 409)
			s.do(t, "POST", "/api/groups/"+gid+"/transfer", owner.Token, map[string]string{"newOwner": ghost}).want(t, 404)
			s.do(t, "POST", "/api/groups/"+gid+"/transfer", owner.Token, map[string]string{}).want(t, 400)
			var tr aoba.TransferResult
			s.do(t, "POST", "/api/groups/"+gid+"/transfer", owner.Token, map[string]string{"newOwner": carol.Name}).want(t, 200).decode(t, &tr)
			if tr.PreviousOwner != owner.Name || tr.NewOwner != carol.Name {
				t.Fatalf("transfer = %+v", tr)
			}
			var gv aoba.GroupView
			s.do(t, "GET", "/api/groups/"+gid, owner.Token, nil).want(t, 200).decode(t, &gv)
			if gv.OwnerUsername != carol.Name {
				t.Fatalf("owner = %s", gv.OwnerUsername)
			}
			s.do(t, "POST", "/api/groups/"+gid+"/leave", owner.Token, nil).want(t, 200)
			s.do(t, "GET", "/api/groups/"+gid, owner.Token, nil).want(t, 404)
			s.do(t, "DELETE", "/api/groups/"+gid, carol.Token, nil).want(t, 204)
			s.do(t, "GET", "/api/groups/"+gid, carol.Token, nil).want(t, 404)
			s.do(t, "GET", "/api/groups/not-a-uuid", carol.Token, nil).want(t, 400)
		})
	})
}

// fixture is a fresh group with one caller of each standing.
type fixture struct {
	gid, invitation string
}

// roles are the callers of the permission matrix, in column order.
var roles = []string{"owner", "admin", "member", "invited", "stranger", "anonymous"}

func TestGroupPermissions(t *testing.T) {
	forEachMode(t, func(t *testing.T, start func(env) *server) {
		s := start(env{"AOBA_RATE_STANDARD": "100000"})
		users := map[string]*user{}
		for _, r := range roles[:5] {
			users[r] = s.register(t, r)
		}
		extra := s.register(t, "extra")
		tokens := map[string]string{}
		for r, u := range users {
			tokens[r] = u.Token
		}
		setup := func(t *testing.T) fixture {
			var g createdGroup
			s.do(t, "POST", "/api/groups", tokens["owner"], map[string]any{"name": "Matrix", "initial_members": []string{users["invited"].Name}}).want(t, 201).decode(t, &g)
			gid := g.Group.ID
			s.do(t, "POST", "/api/groups/"+gid+"/members", tokens["owner"], map[string]string{"username": users["admin"].Name, "role": "admin"}).want(t, 201)
			s.do(t, "POST", "/api/groups/"+gid+"/members", tokens["owner"], map[string]string{"username": users["member"].Name}).want(t, 201)
			return fixture{gid: gid, invitation: g.Invitations[0].ID}
		}
		type cell struct {
			name   string
			method string
			path   func(f fixture) string
			body   any
			want   [6]int // owner, admin, member, invited, stranger, anonymous
		}
		g := func(suffix string) func(f fixture) string {
			return func(f fixture) string { return "/api/groups/" + f.gid + suffix }
		}
		inv := func(suffix string) func(f fixture) string {
			return func(f fixture) string { return "/api/invitations/" + f.invitation + suffix }
		}
		cells := []cell{
			{"GetGroup", "GET", g(""), nil, [6]int{200, 200, 200, 404, 404, 401}},
			{"DeleteGroup", "DELETE", g(""), nil, [6]int{204, 403, 403, 404, 404, 401}},
			{"Admin", "GET", g("/admin"), nil, [6]int{200, 200, 403, 404, 404, 401}},
			{"Leave", "POST", g("/leave"), nil, [6]int{409, 200, 200, 404, 404, 401}},
			{"Transfer", "POST", g("/transfer"), map[string]string{"newOwner": users["member"].Name}, [6]int{200, 403, 403, 404, 404, 401}},
			{"ListMembers", "GET", g("/members"), nil, [6]int{200, 200, 200, 404, 404, 401}},
			{"AddMember", "POST", g("/members"), map[string]string{"username": extra.Name}, [6]int{201, 201, 403, 404, 404, 401}},
			{"AddAdmin", "POST", g("/members"), map[string]string{"username": extra.Name, "role": "admin"}, [6]int{201, 403, 403, 404, 404, 401}},
			{"RemoveMember", "DELETE", g("/members/" + users["member"].Name), nil, [6]int{204, 204, 403, 404, 404, 401}},
			{"RemoveAdmin", "DELETE", g("/members/" + users["admin"].Name), nil, [6]int{204, 403, 403, 404, 404, 401}},
			{"RemoveOwner", "DELETE", g("/members/" + users["owner"].Name), nil, [6]int{403, 403, 403, 404, 404, 401}},
			{"SetRole", "PUT", g("/members/" + users["member"].Name + "/role"), map[string]string{"role": "admin"}, [6]int{200, 403, 403, 404, 404, 401}},
			{"SetOwnerRole", "PUT", g("/members/" + users["owner"].Name + "/role"), map[string]string{"role": "member"}, [6]int{409, 403, 403, 404, 404, 401}},
			{"Invite", "POST", g("/invitations"), map[string]string{"username": extra.Name}, [6]int{201, 201, 201, 404, 404, 401}},
			{"InviteInvited", "POST", g("/invitations"), map[string]string{"username": users["invited"].Name}, [6]int{409, 409, 409, 404, 404, 401}},
			{"InviteMember", "POST", g("/invitations"), map[string]string{"username": users["member"].Name}, [6]int{409, 409, 409, 404, 404, 401}},
			{"Accept", "POST", inv("/accept"), nil, [6]int{404, 404, 404, 200, 404, 401}},
			{"Deny", "POST", inv("/deny"), nil, [6]int{404, 404, 404, 200, 404, 401}},
		}
		for _, c := range cells {
			t.Run(c.name, func(t *testing.T) {
				// A fixture is reused until a call changes it (a 2xx).
				f := setup(t)
				for i, role := range roles {
					r := s.do(t, c.method, c.path(f), tokens[role], c.body)
					if r.Status != c.want[i] {
						t.Errorf("%s as %s: status %d, want %d (%s)", c.name, role, r.Status, c.want[i], r.Body)
					}
					if r.Status < 300 && i < len(roles)-1 {
						f = setup(t)
					}
				}
			})
		}
	})
}

func TestOwnershipRace(t *testing.T) {
	forEachMode(t, func(t *testing.T, start func(env) *server) {
		s := start(env{"AOBA_RATE_STANDARD": "100000"})
		owner := s.register(t, "owner")
		admin := s.register(t, "admin")
		m1 := s.register(t, "m1")
		m2 := s.register(t, "m2")
		inv := s.register(t, "inv")
		rounds := 10
		if s.m.Config.MongoURI != "" {
			rounds = 4 // lean in the scaled-out mode
		}
		for round := 0; round < rounds; round++ {
			t.Run(fmt.Sprintf("Round%d", round), func(t *testing.T) {
				var g createdGroup
				s.do(t, "POST", "/api/groups", owner.Token, map[string]any{"name": "Race", "initial_members": []string{inv.Name}}).want(t, 201).decode(t, &g)
				gid := g.Group.ID
				s.do(t, "POST", "/api/groups/"+gid+"/members", owner.Token, map[string]string{"username": admin.Name, "role": "admin"}).want(t, 201)
				s.do(t, "POST", "/api/groups/"+gid+"/members", owner.Token, map[string]string{"username": m1.Name}).want(t, 201)
				s.do(t, "POST", "/api/groups/"+gid+"/members", owner.Token, map[string]string{"username": m2.Name}).want(t, 201)

				ops := []func(){
					func() {
						s.do(t, "POST", "/api/groups/"+gid+"/transfer", owner.Token, map[string]string{"newOwner": m1.Name})
					},
					func() {
						s.do(t, "POST", "/api/groups/"+gid+"/transfer", owner.Token, map[string]string{"newOwner": admin.Name})
					},
					func() {
						s.do(t, "PUT", "/api/groups/"+gid+"/members/"+m1.Name+"/role", owner.Token, map[string]string{"role": "admin"})
					},
					func() { s.do(t, "POST", "/api/groups/"+gid+"/leave", admin.Token, nil) },
					func() { s.do(t, "POST", "/api/groups/"+gid+"/leave", m1.Token, nil) },
					func() { s.do(t, "POST", "/api/groups/"+gid+"/leave", owner.Token, nil) },
					func() { s.do(t, "POST", "/api/invitations/"+g.Invitations[0].ID+"/accept", inv.Token, nil) },
					func() {
						s.do(t, "POST", "/api/groups/"+gid+"/transfer", m1.Token, map[string]string{"newOwner": m2.Name})
					},
				}
				var wg sync.WaitGroup
				for _, op := range ops {
					wg.Add(1)
					go func() { defer wg.Done(); op() }()
				}
				wg.Wait()

				var ownerName string
				for _, u := range []*user{owner, admin, m1, m2, inv} {
					var gv aoba.GroupView
					if r := s.do(t, "GET", "/api/groups/"+gid, u.Token, nil); r.Status == 200 {
						r.decode(t, &gv)
						ownerName = gv.OwnerUsername
						break
					}
				}
				var ownerUser *user
				for _, u := range []*user{owner, admin, m1, m2, inv} {
					if u.Name == ownerName {
						ownerUser = u
					}
				}
				if ownerUser == nil {
					t.Fatalf("owner %q is none of the participants", ownerName)
				}
				var v aoba.GroupAdminView
				s.do(t, "GET", "/api/groups/"+gid+"/admin", ownerUser.Token, nil).want(t, 200).decode(t, &v)
				if v.OwnerCount != 1 || v.CurrentUserRole != aoba.RoleOwner {
					t.Fatalf("ownerCount = %d, role = %s", v.OwnerCount, v.CurrentUserRole)
				}
				found := false
				for _, m := range v.Members {
					if m.Username == ownerName && m.Role == aoba.RoleOwner {
						found = true
					}
				}
				if !found {
					t.Fatalf("owner %s is not among the members %+v", ownerName, v.Members)
				}
			})
		}
	})
}
