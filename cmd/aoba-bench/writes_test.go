package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"testing"
	"time"
)

// TestMain lets the test binary stand for the tool as the writes
// command's peer process, which the command starts by re-executing itself.
func TestMain(m *testing.M) {
	if len(os.Args) == 3 && os.Args[1] == "writes-sink" {
		if err := runWritesSink(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestWrites runs the writes command briefly: every case writes the
// frames asked for and reports a CPU time per frame.
func TestWrites(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out, log bytes.Buffer
	if err := run(ctx, []string{"writes", "-n", "20", "-rate", "200", "-duration", "1s", "-json"}, &out, &log); err != nil {
		t.Fatalf("writes: %v\n%s", err, log.String())
	}
	var r Result
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("output %q: %v", out.String(), err)
	}
	for _, m := range sinkModes {
		name := m.name
		if v, ok := r.Get("writes_" + name); !ok || v < 150 || v > 220 {
			t.Errorf("writes_%s = %v (%v), want about 200 in 1 s at 200/s", name, v, ok)
		}
		if v, ok := r.Get("cpu_per_write_" + name); !ok || v <= 0 {
			t.Errorf("cpu_per_write_%s = %v (%v), want a positive time", name, v, ok)
		}
	}
	if err := run(ctx, []string{"writes", "-rate", "10"}, &out, &log); err == nil {
		t.Error("-rate 10 accepted")
	}
}
