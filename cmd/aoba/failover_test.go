package main_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/aoba-chat/aoba"
	"github.com/aoba-chat/aoba/hub"
	"github.com/aoba-chat/aoba/internal/redistest"
)

// TestRedisFailover runs two pods on a Redis Cluster (3 masters, 3
// replicas) and on a Sentinel-managed master, streams group messages
// through one pod to a member's socket on the other, and kills the master
// that carries the group's topic: a replica takes over, the pods
// resubscribe, the member's socket is closed with 4004, and every
// acknowledged message reached it live or is in its sync. Live delivery
// then works again.
func TestRedisFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("needs MongoDB and real Redis Cluster and Sentinel processes")
	}
	t.Run("Cluster", func(t *testing.T) {
		c := redistest.StartCluster(t)
		testFailover(t, env{"AOBA_REDIS_URL": "", "AOBA_REDIS_CLUSTER": strings.Join(c.Addrs(), ",")},
			func(t *testing.T, prefix, gid string) {
				cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs()})
				defer cc.Close()
				b := hub.NewRedisBroker(cc, prefix)
				channel := b.Channel(aoba.GroupTopic(gid))
				_ = b.Close()
				m := c.MasterOf(channel)
				t.Logf("killing %s, the master of %s", m.Addr(), channel)
				m.Stop()
				c.WaitFailover(channel, m, 30*time.Second)
			})
	})
	t.Run("Sentinel", func(t *testing.T) {
		st := redistest.StartSentinel(t)
		testFailover(t, env{"AOBA_REDIS_URL": "", "AOBA_REDIS_SENTINELS": strings.Join(st.Addrs(), ","), "AOBA_REDIS_MASTER": redistest.MasterName},
			func(t *testing.T, _, _ string) {
				old := st.CurrentMaster()
				t.Logf("killing the master %s", old)
				st.Master.Stop()
				st.WaitFailover(old, 30*time.Second)
			})
	})
}

func testFailover(t *testing.T, redisEnv env, kill func(t *testing.T, prefix, gid string)) {
	e := scaledEnv(t)
	for k, v := range redisEnv {
		e[k] = v
	}
	e["AOBA_RATE_STANDARD"] = "10000"
	a, b := startMain(t, e), startMain(t, e)
	alice, bob := a.register(t, "alice"), a.register(t, "bob")
	gid := a.newGroup(t, bob.Token, "ops")
	a.do(t, "POST", "/api/groups/"+gid+"/members", bob.Token, map[string]string{"username": alice.Name}).want(t, 201)
	sock, since := watchSocket(t, b, alice.Token)

	var acked []string
	failed := 0
	send := func(content string) {
		r := a.do(t, "POST", "/api/messages", bob.Token, map[string]string{"to": gid, "content": content, "type": "groupchat"})
		switch {
		case r.Status == 201:
			acked = append(acked, content)
		case r.Status == 503:
			failed++ // not acknowledged: the client would retry
		default:
			t.Fatalf("send %q: status %d %s", content, r.Status, r.Body)
		}
	}
	send("before")
	for deadline := time.Now().Add(10 * time.Second); len(sock.received()) == 0; {
		if time.Now().After(deadline) {
			t.Fatal("the message sent before the failover never arrived live")
		}
		time.Sleep(20 * time.Millisecond)
	}

	// The stream runs in the background while the master dies.
	stop := make(chan struct{})
	streamed := make(chan struct{})
	go func() {
		defer close(streamed)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			send(fmt.Sprintf("stream %d", i))
			time.Sleep(50 * time.Millisecond)
		}
	}()
	time.Sleep(500 * time.Millisecond)
	kill(t, e["AOBA_REDIS_PREFIX"], gid)
	code := sock.waitClose(t, 30*time.Second)
	time.Sleep(time.Second) // a little more stream on the new master
	close(stop)
	<-streamed
	if code != aoba.CloseResync {
		t.Fatalf("alice's socket closed with %d, want %d", code, aoba.CloseResync)
	}

	items, _ := b.syncAll(t, alice.Token, since, 100)
	got := map[string]bool{}
	for _, c := range sock.received() {
		got[c] = true
	}
	for _, it := range items {
		got[strings.TrimPrefix(it.name, "msg:")] = true
	}
	for _, c := range acked {
		if !got[c] {
			t.Errorf("acknowledged message %q neither arrived live nor is in sync", c)
		}
	}
	t.Logf("%d messages acknowledged (%d refused with 503); %d received live before the 4004, the rest through sync",
		len(acked), failed, len(sock.received()))

	// Live delivery across the pods works on the new master.
	sock2, _ := watchSocket(t, b, alice.Token)
	for deadline, i := time.Now().Add(20*time.Second), 0; len(sock2.received()) == 0; i++ {
		if time.Now().After(deadline) {
			t.Fatal("no live delivery across pods after the failover")
		}
		send(fmt.Sprintf("after %d", i))
		time.Sleep(200 * time.Millisecond)
	}
}
