package aoba_test

import (
	"context"
	"strings"
	"testing"

	"github.com/aoba-chat/aoba"
)

func TestService_SendMessage(t *testing.T) {
	t.Parallel()
	ts := newService(t)
	ctx := context.Background()
	alice := ts.MustRegister(t, "alice")
	bob := ts.MustRegister(t, "bob")
	carol := ts.MustRegister(t, "carol")
	outsider := ts.MustRegister(t, "outsider")
	g := ts.MustCreateGroup(t, alice, "trio", bob.As(aoba.RoleMember), carol.As(aoba.RoleMember))
	ts.Subscribe(t, aoba.UserTopic(alice.ID), aoba.UserTopic(bob.ID), aoba.UserTopic(carol.ID), aoba.GroupTopic(g.ID))
	ts.Forget(t)

	t.Run("Chat", func(t *testing.T) {
		v, err := ts.SendMessage(ctx, alice.Claims, aoba.SendInput{To: "BOB", Content: "hi bob"}, "conn-1")
		if err != nil {
			t.Fatal(err)
		}
		if !aoba.IsValidID(v.ID) || v.FromID != alice.ID || v.ToID != bob.ID || v.From != "alice" || v.To != "bob" ||
			v.Content != "hi bob" || v.Type != aoba.MessageChat || v.Status != "sent" || v.Timestamp.IsZero() {
			t.Fatalf("message %+v", v)
		}
		// One copy to each side: the recipient's sockets, and the sender's
		// other sockets (the sending one got the returned message).
		for _, tt := range []struct {
			a          Account
			exceptConn string
		}{{bob, ""}, {alice, "conn-1"}} {
			envs := ts.Published(t, aoba.UserTopic(tt.a.ID))
			if len(envs) != 1 || envs[0].ExceptConn != tt.exceptConn || envs[0].ExceptUser != "" {
				t.Fatalf("%s topic: %s, want one frame except connection %q", tt.a.Username, describe(envs), tt.exceptConn)
			}
			if got := dataOf[aoba.MessageView](t, envs[0], aoba.FrameMessage); got.ID != v.ID || got.Content != "hi bob" {
				t.Fatalf("%s got %+v", tt.a.Username, got)
			}
		}
		if envs := ts.Published(t, aoba.UserTopic(carol.ID)); len(envs) != 0 {
			t.Fatalf("a third user got %d envelopes", len(envs))
		}
	})
	t.Run("ChatToSelf", func(t *testing.T) {
		if _, err := ts.SendMessage(ctx, alice.Claims, aoba.SendInput{To: "alice", Content: "note to self", Type: aoba.MessageChat}, "conn-1"); err != nil {
			t.Fatal(err)
		}
		if envs := ts.Published(t, aoba.UserTopic(alice.ID)); len(envs) != 1 {
			t.Fatalf("%d envelopes on the sender's topic, want one", len(envs))
		}
	})
	t.Run("GroupChat", func(t *testing.T) {
		v, err := ts.SendMessage(ctx, bob.Claims, aoba.SendInput{To: g.ID, Content: "hi all", Type: aoba.MessageGroupChat}, "conn-2")
		if err != nil {
			t.Fatal(err)
		}
		if v.ToID != g.ID || v.Type != aoba.MessageGroupChat || v.From != "bob" {
			t.Fatalf("message %+v", v)
		}
		// Once on the group topic, whatever the group's size; never on the
		// members' topics.
		envs := ts.Published(t, aoba.GroupTopic(g.ID))
		if len(envs) != 1 || envs[0].ExceptConn != "conn-2" || envs[0].ExceptUser != "" {
			t.Fatalf("group topic: %s, want one frame except connection conn-2", describe(envs))
		}
		if got := dataOf[aoba.MessageView](t, envs[0], aoba.FrameMessage); got.ID != v.ID {
			t.Fatalf("group frame %+v", got)
		}
		for _, a := range []Account{alice, bob, carol} {
			if envs := ts.Published(t, aoba.UserTopic(a.ID)); len(envs) != 0 {
				t.Fatalf("%s topic got %d envelopes", a.Username, len(envs))
			}
		}
	})
	t.Run("ContentBound", func(t *testing.T) {
		// Characters, not bytes.
		if _, err := ts.SendMessage(ctx, alice.Claims, aoba.SendInput{To: "bob", Content: strings.Repeat("é", aoba.MessageMaxLen)}, ""); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("ClientID", func(t *testing.T) {
		ts.Forget(t)
		in := aoba.SendInput{To: "bob", Content: "once", ClientID: aoba.ClientID("3f2a-b9:c.d_E")}
		v, err := ts.SendMessage(ctx, alice.Claims, in, "conn-1")
		if err != nil {
			t.Fatal(err)
		}
		if v.ClientID != *in.ClientID {
			t.Fatalf("client id = %q, want %q", v.ClientID, *in.ClientID)
		}
		if envs := ts.Published(t, aoba.UserTopic(bob.ID)); len(envs) != 1 {
			t.Fatalf("%d envelopes to the peer, want one", len(envs))
		}
		ts.Forget(t)
		// A retry, from another socket, with other content and another
		// recipient, returns the first message and publishes nothing.
		for _, retry := range []aoba.SendInput{in, {To: "carol", Content: "twice", ClientID: in.ClientID}} {
			again, err := ts.SendMessage(ctx, alice.Claims, retry, "conn-2")
			if err != nil {
				t.Fatal(err)
			}
			if *again != *v {
				t.Fatalf("retry got %+v, want %+v", again, v)
			}
		}
		for _, a := range []Account{alice, bob, carol} {
			if envs := ts.Published(t, aoba.UserTopic(a.ID)); len(envs) != 0 {
				t.Fatalf("a retry published %s on %s's topic", describe(envs), a.Username)
			}
		}
		// Per sender: bob may use the same client id.
		if w, err := ts.SendMessage(ctx, bob.Claims, aoba.SendInput{To: "alice", Content: "mine", ClientID: in.ClientID}, ""); err != nil || w.ID == v.ID {
			t.Fatalf("another sender's send with the same client id = %+v, %v; want a new message", w, err)
		}
		if _, err := ts.SendMessage(ctx, alice.Claims, aoba.SendInput{To: "bob", Content: "max", ClientID: aoba.ClientID(strings.Repeat("x", aoba.ClientIDMaxLen))}, ""); err != nil {
			t.Fatalf("client id of %d characters: %v", aoba.ClientIDMaxLen, err)
		}
	})
	t.Run("ErrInvalid", func(t *testing.T) {
		for name, in := range map[string]aoba.SendInput{
			"ClientIDEmpty":    {To: "bob", Content: "hi", ClientID: aoba.ClientID("")},
			"ClientIDTooLong":  {To: "bob", Content: "hi", ClientID: aoba.ClientID(strings.Repeat("x", aoba.ClientIDMaxLen+1))},
			"ClientIDSpace":    {To: "bob", Content: "hi", ClientID: aoba.ClientID("a b")},
			"ClientIDNonASCII": {To: "bob", Content: "hi", ClientID: aoba.ClientID("café")},
			"ClientIDSlash":    {To: "bob", Content: "hi", ClientID: aoba.ClientID("a/b")},
			"ContentRequired":  {To: "bob"},
			"ContentBlank":     {To: "bob", Content: " \n\t "},
			"ContentTooLong":   {To: "bob", Content: strings.Repeat("x", aoba.MessageMaxLen+1)},
			"ContentNotUTF8":   {To: "bob", Content: "caf\xe9"},
			"TypeUnknown":      {To: "bob", Content: "hi", Type: "broadcast"},
			"ToRequired":       {Content: "hi"},
			"GroupIDInvalid":   {To: "trio", Content: "hi", Type: aoba.MessageGroupChat},
		} {
			_, err := ts.SendMessage(ctx, alice.Claims, in, "")
			if aoba.ErrorCode(err) != aoba.EINVALID {
				t.Errorf("%s: %v, want EINVALID", name, err)
			}
		}
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		for name, in := range map[string]aoba.SendInput{
			"UserUnknown":  {To: "nobody", Content: "hi"},
			"UserInvalid":  {To: "no one", Content: "hi"},
			"GroupUnknown": {To: aoba.NewID(), Content: "hi", Type: aoba.MessageGroupChat},
			"NotMember":    {To: g.ID, Content: "hi", Type: aoba.MessageGroupChat},
		} {
			_, err := ts.SendMessage(ctx, outsider.Claims, in, "")
			if aoba.ErrorCode(err) != aoba.ENOTFOUND {
				t.Errorf("%s: %v, want ENOTFOUND", name, err)
			}
		}
	})
	t.Run("NothingPublishedOnError", func(t *testing.T) {
		ts.Forget(t) // ContentBound's message
		_, _ = ts.SendMessage(ctx, alice.Claims, aoba.SendInput{To: "bob"}, "")
		_, _ = ts.SendMessage(ctx, outsider.Claims, aoba.SendInput{To: g.ID, Content: "hi", Type: aoba.MessageGroupChat}, "")
		for _, topic := range []string{aoba.UserTopic(alice.ID), aoba.UserTopic(bob.ID), aoba.GroupTopic(g.ID)} {
			if envs := ts.Published(t, topic); len(envs) != 0 {
				t.Fatalf("a refused message published %d envelopes on %s", len(envs), topic)
			}
		}
	})

	t.Run("Typing", func(t *testing.T) {
		ts.Forget(t)
		t.Run("Chat", func(t *testing.T) {
			if err := ts.Typing(ctx, alice.Claims, "bob", "", aoba.TypingComposing); err != nil {
				t.Fatal(err)
			}
			envs := ts.Published(t, aoba.UserTopic(bob.ID))
			if len(envs) != 1 {
				t.Fatalf("%d envelopes to the peer, want one", len(envs))
			}
			if ev := dataOf[aoba.TypingEvent](t, envs[0], aoba.FrameTyping); ev.From != "alice" || ev.To != "bob" || ev.State != "composing" || ev.Type != aoba.MessageChat {
				t.Fatalf("typing %+v", ev)
			}
			if envs := ts.Published(t, aoba.UserTopic(alice.ID)); len(envs) != 0 {
				t.Fatalf("the typist got %d envelopes", len(envs))
			}
		})
		t.Run("GroupChat", func(t *testing.T) {
			if err := ts.Typing(ctx, carol.Claims, g.ID, aoba.MessageGroupChat, aoba.TypingPaused); err != nil {
				t.Fatal(err)
			}
			envs := ts.Published(t, aoba.GroupTopic(g.ID))
			if len(envs) != 1 || envs[0].ExceptUser != carol.ID {
				t.Fatalf("group topic: %s, want one frame except the typist's sockets", describe(envs))
			}
		})
		t.Run("ErrStateInvalid", func(t *testing.T) {
			wantCode(t, ts.Typing(ctx, alice.Claims, "bob", "", "typing"), aoba.EINVALID)
		})
		t.Run("ErrNotMember", func(t *testing.T) {
			wantCode(t, ts.Typing(ctx, outsider.Claims, g.ID, aoba.MessageGroupChat, aoba.TypingComposing), aoba.ENOTFOUND)
			wantCode(t, ts.Typing(ctx, outsider.Claims, "nobody", "", aoba.TypingComposing), aoba.ENOTFOUND)
		})
	})
}

func TestService_History(t *testing.T) {
	t.Parallel()
	ts := newService(t)
	ctx := context.Background()
	alice := ts.MustRegister(t, "alice")
	bob := ts.MustRegister(t, "bob")
	carol := ts.MustRegister(t, "carol")
	g := ts.MustCreateGroup(t, alice, "pair", bob.As(aoba.RoleMember))

	send := func(t *testing.T, from Account, to string, typ aoba.MessageType, content string) string {
		t.Helper()
		v, err := ts.SendMessage(ctx, from.Claims, aoba.SendInput{To: to, Content: content, Type: typ}, "")
		if err != nil {
			t.Fatal(err)
		}
		return v.ID
	}
	// Five messages between alice and bob, one from carol to alice and two
	// in the group, interleaved.
	var dm []string // ids, oldest first
	for i, c := range []string{"m1", "m2", "m3", "m4", "m5"} {
		from, to := alice, "bob"
		if i%2 == 1 {
			from, to = bob, "alice"
		}
		dm = append(dm, send(t, from, to, aoba.MessageChat, c))
		if i == 1 {
			send(t, carol, "alice", aoba.MessageChat, "from carol")
		}
		if i == 3 {
			send(t, bob, g.ID, aoba.MessageGroupChat, "g1")
			send(t, alice, g.ID, aoba.MessageGroupChat, "g2")
		}
	}
	contents := func(vs []*aoba.MessageView) string {
		out := make([]string, len(vs))
		for i, v := range vs {
			out[i] = v.Content
		}
		return strings.Join(out, ",")
	}

	t.Run("Paging", func(t *testing.T) {
		for _, tt := range []struct {
			name  string
			who   Account
			q     aoba.HistoryQuery
			want  string
			total int
		}{
			{"NewestFirst", alice, aoba.HistoryQuery{With: "bob", Limit: 2}, "m5,m4", 5},
			{"Offset", alice, aoba.HistoryQuery{With: "BOB", Limit: 2, Offset: 2}, "m3,m2", 5},
			{"OffsetPastEnd", alice, aoba.HistoryQuery{With: "bob", Limit: 2, Offset: 10}, "", 5},
			{"SameFromEitherSide", bob, aoba.HistoryQuery{With: "alice", Limit: 100}, "m5,m4,m3,m2,m1", 5},
			{"AfterOldestFirst", alice, aoba.HistoryQuery{With: "bob", After: dm[1], Limit: 100}, "m3,m4,m5", 3},
			{"AfterPaged", alice, aoba.HistoryQuery{With: "bob", After: dm[1], Limit: 2}, "m3,m4", 3},
			{"AfterNewest", alice, aoba.HistoryQuery{With: "bob", After: dm[4], Limit: 10}, "", 0},
			{"BeforeNewestFirst", alice, aoba.HistoryQuery{With: "bob", Before: dm[3], Limit: 100}, "m3,m2,m1", 3},
			{"BeforePaged", alice, aoba.HistoryQuery{With: "bob", Before: dm[3], Limit: 1, Offset: 1}, "m2", 3},
			{"Group", bob, aoba.HistoryQuery{With: g.ID, Limit: 100}, "g2,g1", 2},
			{"Everything", alice, aoba.HistoryQuery{Limit: 100}, "m5,g2,g1,m4,m3,from carol,m2,m1", 8},
			{"EverythingAfter", bob, aoba.HistoryQuery{After: dm[2], Limit: 100}, "m4,g1,g2,m5", 4},
			{"OnlyTheirOwn", carol, aoba.HistoryQuery{Limit: 100}, "from carol", 1},
		} {
			vs, total, err := ts.History(ctx, tt.who.Claims, tt.q)
			if err != nil {
				t.Fatalf("%s: %v", tt.name, err)
			}
			if got := contents(vs); got != tt.want || total != tt.total {
				t.Fatalf("%s: %s (total %d), want %s (total %d)", tt.name, got, total, tt.want, tt.total)
			}
		}
	})
	t.Run("ErrInvalid", func(t *testing.T) {
		for name, q := range map[string]aoba.HistoryQuery{
			"LimitZero":     {Limit: 0},
			"LimitTooLarge": {Limit: 101},
			"OffsetNeg":     {Limit: 10, Offset: -1},
			"AfterInvalid":  {Limit: 10, After: "m1"},
			"BeforeInvalid": {Limit: 10, Before: "m1"},
			"AfterBefore":   {Limit: 10, After: dm[0], Before: dm[4]},
		} {
			if _, _, err := ts.History(ctx, alice.Claims, q); aoba.ErrorCode(err) != aoba.EINVALID {
				t.Errorf("%s: %v, want EINVALID", name, err)
			}
		}
	})
	t.Run("ErrConversationUnknown", func(t *testing.T) {
		for name, with := range map[string]string{
			"UserUnknown":  "nobody",
			"UserInvalid":  "no one",
			"GroupUnknown": aoba.NewID(),
			"NotMember":    g.ID, // carol is not in the group
		} {
			if _, _, err := ts.History(ctx, carol.Claims, aoba.HistoryQuery{With: with, Limit: 10}); aoba.ErrorCode(err) != aoba.ENOTFOUND {
				t.Errorf("%s: %v, want ENOTFOUND", name, err)
			}
		}
	})
	t.Run("CurrentNames", func(t *testing.T) {
		// History shows the names of today, and the names at sending time
		// of users who are gone.
		if _, err := ts.ChangeUsername(ctx, bob.Claims, "robert"); err != nil {
			t.Fatal(err)
		}
		if err := ts.DeleteAccount(ctx, carol.Claims); err != nil {
			t.Fatal(err)
		}
		vs, _, err := ts.History(ctx, alice.Claims, aoba.HistoryQuery{Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range vs {
			switch v.Content {
			case "m2":
				if v.From != "robert" || v.To != "alice" {
					t.Fatalf("m2 from %s to %s, want robert to alice", v.From, v.To)
				}
			case "m1":
				if v.From != "alice" || v.To != "robert" {
					t.Fatalf("m1 from %s to %s, want alice to robert", v.From, v.To)
				}
			case "g1":
				if v.From != "robert" || v.To != g.ID {
					t.Fatalf("g1 from %s to %s, want robert to the group", v.From, v.To)
				}
			case "from carol":
				if v.From != "carol" {
					t.Fatalf("a deleted sender shows as %q, want carol", v.From)
				}
			}
		}
	})
	t.Run("FormerMemberLosesGroupHistory", func(t *testing.T) {
		if err := ts.LeaveGroup(ctx, bob.Claims, g.ID); err != nil {
			t.Fatal(err)
		}
		_, _, err := ts.History(ctx, bob.Claims, aoba.HistoryQuery{With: g.ID, Limit: 10})
		wantCode(t, err, aoba.ENOTFOUND)
		vs, _, err := ts.History(ctx, bob.Claims, aoba.HistoryQuery{Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		if got := contents(vs); got != "m5,m4,m3,m2,m1" {
			t.Fatalf("history of a former member: %s, want the direct messages only", got)
		}
	})
}
