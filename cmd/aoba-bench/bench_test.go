package main

import (
	"context"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	t.Run("Empty", func(t *testing.T) {
		if got := Percentile(nil, 50); got != 0 {
			t.Fatalf("Percentile(nil) = %v, want 0", got)
		}
		if got := Summarize(nil); got != (LatencySummary{}) {
			t.Fatalf("Summarize(nil) = %+v, want zero", got)
		}
	})
	t.Run("NearestRank", func(t *testing.T) {
		s := ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10)
		for _, tc := range []struct {
			p    float64
			want time.Duration
		}{{50, 5 * time.Millisecond}, {95, 10 * time.Millisecond}, {10, 1 * time.Millisecond}, {11, 2 * time.Millisecond}, {100, 10 * time.Millisecond}} {
			if got := Percentile(s, tc.p); got != tc.want {
				t.Errorf("Percentile(1..10, %v) = %v, want %v", tc.p, got, tc.want)
			}
		}
	})
	t.Run("SummarizeSortsAndConverts", func(t *testing.T) {
		s := make([]time.Duration, 0, 1000)
		for i := 1000; i >= 1; i-- {
			s = append(s, time.Duration(i)*time.Microsecond)
		}
		got := Summarize(s)
		want := LatencySummary{Count: 1000, P50: 0.5, P95: 0.95, P99: 0.99, Max: 1}
		if got != want {
			t.Fatalf("Summarize = %+v, want %+v", got, want)
		}
	})
}

func TestTracker(t *testing.T) {
	now := time.Now()
	t.Run("LossAndDuplicates", func(t *testing.T) {
		want := map[int]*SeqSet{0: {}, 1: {}, 2: {}}
		for seq := int64(0); seq < 100; seq++ {
			want[0].Add(seq)
			want[1].Add(seq)
		}
		want[2].Add(5)
		tr := NewTracker()
		for seq := int64(0); seq < 100; seq++ {
			if seq != 42 {
				tr.Record(0, seq, now, now.Add(time.Millisecond))
			}
			if seq%10 != 0 {
				tr.Record(1, seq, now, now)
			}
		}
		if !tr.Record(2, 5, now, now) {
			t.Fatal("first delivery reported as duplicate")
		}
		if tr.Record(2, 5, now, now) || tr.Record(0, 7, now, now) {
			t.Fatal("repeated delivery reported as fresh")
		}
		lost, dup := tr.Account(want, -1)
		if lost != 1+10 || dup != 2 {
			t.Fatalf("Account = lost %d dup %d, want lost 11 dup 2", lost, dup)
		}
		if got := tr.Deliveries(); got != 99+90+1 {
			t.Fatalf("Deliveries = %d, want 190", got)
		}
		lost, _ = tr.Account(want, 1)
		if lost != 1 {
			t.Fatalf("Account skipping publisher 1: lost %d, want 1", lost)
		}
	})
	t.Run("UnexpectedDeliveriesAreNotLoss", func(t *testing.T) {
		tr := NewTracker()
		tr.Record(0, 1000, now, now)
		want := map[int]*SeqSet{0: {}}
		if lost, dup := tr.Account(want, -1); lost != 0 || dup != 0 {
			t.Fatalf("Account = %d, %d, want 0, 0", lost, dup)
		}
	})
	t.Run("SeqSet", func(t *testing.T) {
		var s SeqSet
		if s.Add(-1) || s.Has(-1) {
			t.Fatal("negative seq accepted")
		}
		if !s.Add(130) || s.Add(130) || !s.Has(130) || s.Has(129) || s.Len() != 1 {
			t.Fatalf("SeqSet misbehaves: %+v", s)
		}
	})
}

func TestMarker(t *testing.T) {
	m := Marker{Pub: 7, Seq: 123456, Sent: time.Unix(0, 1764170000123456789)}
	c := m.Content(100)
	if len(c) != 100 {
		t.Fatalf("content length %d, want 100", len(c))
	}
	frame := []byte(`{"type":"message","data":{"id":"x","content":"` + c + `","type":"groupchat"}}`)
	got, ok := ParseMarker(frame)
	if !ok || got.Pub != m.Pub || got.Seq != m.Seq || !got.Sent.Equal(m.Sent) {
		t.Fatalf("ParseMarker = %+v, %v, want %+v", got, ok, m)
	}
	for _, bad := range []string{"", "~B~", "~B~1~2~", "~B~a~2~3~", "~B~1~-2~3~"} {
		if _, ok := ParseMarker([]byte(bad)); ok {
			t.Errorf("ParseMarker(%q) accepted", bad)
		}
	}
	for frame, want := range map[string]FrameKind{
		`{"type":"ack","id":"3","data":{"type":"groupchat","content":"~B~1~3~4~"}}`: FrameAck,
		`{"type":"error","id":"3","data":{"error":"Too Many Requests"}}`:            FrameError,
		`{"type":"message","data":{"type":"chat"}}`:                                 FrameMessage,
		`{"type":"message.send","id":"1","data":{"type":"chat"}}`:                   FrameMessage,
		`{"type":"presence","data":{"status":"online"}}`:                            FrameOther,
	} {
		if got := Classify([]byte(frame)); got != want {
			t.Errorf("Classify(%s) = %v, want %v", frame, got, want)
		}
	}
}

func TestAddressGuard(t *testing.T) {
	for _, ok := range []string{"http://127.0.0.1:8080", "http://127.0.0.5:1,http://127.0.0.1:2", "https://127.0.0.254:443/"} {
		if _, err := ParseAddrs(ok); err != nil {
			t.Errorf("ParseAddrs(%q) = %v, want accepted", ok, err)
		}
	}
	for _, bad := range []string{
		"", "http://localhost:8080", "http://127.0.1.1:8080", "http://10.0.0.1:80", "http://127.0.0.1",
		"ws://127.0.0.1:8080", "http://[::1]:8080", "http://example.com:80", "http://127.0.0.1:8080,http://8.8.8.8:53",
	} {
		if _, err := ParseAddrs(bad); err == nil {
			t.Errorf("ParseAddrs(%q) accepted, want refused", bad)
		}
	}
	if err := run(context.Background(), []string{"idle", "-addr", "http://192.168.1.1:80"}, nil, discard{}); err == nil {
		t.Error("idle against a non-local address ran")
	}
}

func TestMetricValue(t *testing.T) {
	text := "# HELP process_resident_memory_bytes Resident memory size in bytes.\n" +
		"# TYPE process_resident_memory_bytes gauge\n" +
		"process_resident_memory_bytes_total 1\n" +
		"process_resident_memory_bytes 2.4576e+07\n"
	v, err := MetricValue(text, "process_resident_memory_bytes")
	if err != nil || v != 24576000 {
		t.Fatalf("MetricValue = %v, %v, want 24576000", v, err)
	}
	if _, err := MetricValue("go_goroutines 3\n", "process_resident_memory_bytes"); err == nil {
		t.Fatal("missing metric not reported")
	}
}

// TestBaselineMessaging runs the messaging engine against the in-process
// baseline: a 20-member group, 2 publishers, no loss, no duplicates.
func TestBaselineMessaging(t *testing.T) {
	b, err := StartBaseline()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	users := make([]*User, 20)
	for i := range users {
		users[i] = &User{Username: "u"}
	}
	eps := fanoutEndpoints(users, 2, func(*User) string { return WSURL(b.URL(), "") }, "g")
	st, err := RunMessaging(context.Background(), eps, MsgOptions{
		Rate: 200, Duration: time.Second, Drain: 500 * time.Millisecond, Window: 1000, Size: 64,
		NeedAck: true, DialConc: 8, Sources: 4, Label: "baseline",
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.Sent < 100 || st.Acked != st.Sent {
		t.Fatalf("sent %d acked %d, want >= 100 and all acked", st.Sent, st.Acked)
	}
	if want := st.Acked * 19; st.Expected != want || st.Delivered != want {
		t.Fatalf("expected %d delivered %d, want %d", st.Expected, st.Delivered, want)
	}
	if st.Lost != 0 || st.Duplicated != 0 || st.Disconnected != 0 {
		t.Fatalf("lost %d dup %d disconnected %d, want 0", st.Lost, st.Duplicated, st.Disconnected)
	}
	if st.Latency.Count != st.Delivered || st.Latency.P50 <= 0 || st.Latency.P50 > st.Latency.Max {
		t.Fatalf("latency summary %+v inconsistent", st.Latency)
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

func TestSelectOps(t *testing.T) {
	all := restMix([]*User{{ID: "1", Username: "a"}})
	t.Run("Subset", func(t *testing.T) {
		ops, err := selectOps(all, "messages, me")
		if err != nil || len(ops) != 2 || ops[0].name != "me" || ops[1].name != "messages" {
			t.Fatalf("selectOps = %v, %v", ops, err)
		}
	})
	t.Run("Unknown", func(t *testing.T) {
		if _, err := selectOps(all, "me,nope"); err == nil {
			t.Fatal("unknown op accepted")
		}
	})
	t.Run("Empty", func(t *testing.T) {
		if _, err := selectOps(all, " , "); err == nil {
			t.Fatal("empty selection accepted")
		}
	})
}

func TestXMPPStanzaID(t *testing.T) {
	for _, tc := range []struct {
		pub int
		seq int64
	}{{0, 0}, {7, 123456}, {49, 1 << 40}} {
		id := xmppStanzaID(tc.pub, tc.seq)
		pub, seq, ok := parseXMPPStanzaID(id)
		if !ok || pub != tc.pub || seq != tc.seq {
			t.Errorf("parseXMPPStanzaID(%q) = %d, %d, %v, want %d, %d", id, pub, seq, ok, tc.pub, tc.seq)
		}
	}
	for _, bad := range []string{"", "b", "b1", "b-1", "x1-2", "b1-x", "b1--2"} {
		if _, _, ok := parseXMPPStanzaID(bad); ok {
			t.Errorf("parseXMPPStanzaID(%q) accepted", bad)
		}
	}
	var s SeqSet
	s.Add(3)
	s.Add(70)
	if !s.Remove(70) || s.Remove(70) || s.Has(70) || !s.Has(3) || s.Len() != 1 || s.Remove(-1) || s.Remove(1000) {
		t.Fatalf("SeqSet.Remove misbehaves: %+v", s)
	}
}

func TestXMPPFlags(t *testing.T) {
	addr := "http://" + closedAddr(t)
	for _, args := range [][]string{
		{"xmpp-idle", "-addr", addr, "-xmpp-addr", "10.0.0.1:5222"},
		{"xmpp-idle", "-addr", addr, "-xmpp-addr", "127.0.0.1:1,127.0.0.1:2"},
		{"xmpp-idle", "-addr", addr, "-sasl", "scram"},
		{"xmpp-latency", "-addr", addr, "-dirs", "x2x"},
		{"xmpp-latency", "-addr", addr, "-domain", "a@b"},
	} {
		if err := run(context.Background(), append(args, "-progress", "0"), discard{}, discard{}); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
}
