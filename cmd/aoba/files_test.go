package main_test

import (
	"encoding/json"
	"runtime"
	"strings"
	"testing"

	main "github.com/aoba-chat/aoba/cmd/aoba"
	"github.com/aoba-chat/aoba/internal/fdlimit"
)

// TestFileLimit proves that the server raises a lowered soft open file
// limit to the hard limit at start, logs both with the number of sockets
// they leave room for, and warns exactly when the limit is under
// main.MinOpenFiles.
func TestFileLimit(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("RLIMIT_NOFILE is read on Linux only")
	}
	orig, err := fdlimit.Get()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fdlimit.Set(orig) })
	// What a shell's `ulimit -Sn` leaves, by one descriptor so that tests
	// running alongside keep their room.
	if err := fdlimit.Set(fdlimit.Limit{Soft: orig.Hard - 1, Hard: orig.Hard}); err != nil {
		t.Fatal(err)
	}
	s := startMain(t, embeddedEnv(t))
	if now, _ := fdlimit.Get(); now.Soft != orig.Hard {
		t.Fatalf("soft limit after start = %d, want the hard limit %d", now.Soft, orig.Hard)
	}
	var info, warn int
	for _, line := range strings.Split(s.logs.String(), "\n") {
		var rec struct {
			Level   string `json:"level"`
			Msg     string `json:"msg"`
			Soft    uint64 `json:"soft"`
			Hard    uint64 `json:"hard"`
			Sockets int64  `json:"sockets"`
		}
		if json.Unmarshal([]byte(line), &rec) != nil || rec.Hard == 0 {
			continue
		}
		if rec.Soft != orig.Hard || rec.Hard != orig.Hard || rec.Sockets != max(int64(orig.Hard)-main.FileMargin, 0) {
			t.Errorf("logged %s, want soft = hard = %d and sockets = hard - %d", line, orig.Hard, main.FileMargin)
		}
		switch {
		case rec.Level == "INFO" && rec.Msg == "open file limit":
			info++
		case rec.Level == "WARN" && strings.Contains(rec.Msg, "open file limit is low"):
			warn++
		}
	}
	wantWarn := 0
	if orig.Hard < main.MinOpenFiles {
		wantWarn = 1
	}
	if info != 1 || warn != wantWarn {
		t.Fatalf("%d info and %d warning records about the open file limit %d, want 1 and %d; logs:\n%s",
			info, warn, orig.Hard, wantWarn, s.logs)
	}
}
