package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"time"
)

// The writes command measures what one heartbeat costs the machine itself,
// without Aoba: the CPU time of a process writing a 2-byte WebSocket
// control frame (the server's ping or keepalive) to each of -n loopback TCP
// connections in turn, -rate frames per second in bursts of n/16 (as the
// server pings one of its 16 shards of sockets at a time), while a second
// process (this tool, re-executed as "writes-sink") holds their other
// ends. It runs three cases, one after the other:
//
//   - idle_peer: the peer never reads, so no reader is woken: the write
//     and the kernel's loopback delivery only;
//   - reading_peer: a goroutine of the peer blocked reading each
//     connection is woken by every frame, as a client's reader is;
//   - ping_pong: the peer answers every frame with a 6-byte masked pong,
//     which the writing process reads with a goroutine per connection, as
//     the server reads a client's pong.
//
// cpu_per_write is the writing process's CPU time (user and system) per
// frame: the floor under the server's cost per heartbeat on this machine.
// Over loopback the writer's system time includes the receiving side's TCP
// processing, which a peer on another host would pay itself.

// sinkModes are the cases in the order they run, with the sink's mode.
var sinkModes = []struct{ name, sink string }{
	{"idle_peer", "none"},
	{"reading_peer", "read"},
	{"ping_pong", "reply"},
}

func runWrites(ctx context.Context, args []string, log io.Writer) (Result, error) {
	fs := flag.NewFlagSet("writes", flag.ContinueOnError)
	fs.SetOutput(log)
	n := fs.Int("n", 5000, "connections")
	rate := fs.Int("rate", 2000, "frames written per second")
	duration := fs.Duration("duration", 20*time.Second, "measurement per case (capped at 5m)")
	jsonOut := fs.Bool("json", false, "print the result as JSON")
	if err := fs.Parse(args); err != nil {
		return Result{}, err
	}
	if *n < 1 || *n > MaxSockets {
		return Result{}, fmt.Errorf("-n must be 1..%d", MaxSockets)
	}
	if *rate < 100 || *rate > MaxRate {
		return Result{}, fmt.Errorf("-rate must be 100..%d", MaxRate)
	}
	d := min(*duration, MaxDuration)
	if d <= 0 {
		return Result{}, errors.New("-duration must be positive")
	}
	files, err := raiseFiles()
	if err != nil {
		return Result{}, fmt.Errorf("raising the open file limit: %w", err)
	}
	if err := checkFiles(files, *n); err != nil { // the sink's limit is the same
		return Result{}, err
	}
	res := Result{Command: "writes", JSON: *jsonOut, Params: map[string]any{
		"n": *n, "rate": *rate, "duration": d.String(),
	}}
	for _, m := range sinkModes {
		perWrite, writes, err := measureWrites(ctx, m.sink, *n, *rate, d)
		if err != nil {
			return res, fmt.Errorf("%s: %w", m.name, err)
		}
		res.Add("cpu_per_write_"+m.name, round(perWrite*1e6), "µs")
		res.Add("writes_"+m.name, float64(writes), "frames")
		fmt.Fprintf(log, "writes: %s: %.1f µs of CPU per frame (%d frames)\n", m.name, perWrite*1e6, writes)
	}
	return res, ctx.Err()
}

// measureWrites runs one case: a sink process in mode, n connections to
// it, and rate frames a second over them for d. It returns the writing
// process's CPU seconds per frame and the frames written.
func measureWrites(ctx context.Context, mode string, n, rate int, d time.Duration) (float64, int, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	exe, err := os.Executable()
	if err != nil {
		return 0, 0, err
	}
	sink := exec.CommandContext(ctx, exe, "writes-sink", mode)
	sink.Stderr = os.Stderr
	out, err := sink.StdoutPipe()
	if err != nil {
		return 0, 0, err
	}
	// The sink ends when this pipe closes: when this process is done
	// with it, or dies.
	stdin, err := sink.StdinPipe()
	if err != nil {
		return 0, 0, err
	}
	defer stdin.Close()
	if err := sink.Start(); err != nil {
		return 0, 0, err
	}
	defer func() { cancel(); _ = sink.Wait() }()
	addr, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		return 0, 0, fmt.Errorf("the sink did not start: %w", err)
	}
	addr = strings.TrimSpace(addr)
	if err := CheckLocal(addr); err != nil {
		return 0, 0, fmt.Errorf("sink address %q: %w", addr, err)
	}
	conns := make([]net.Conn, n)
	for i := range conns {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return 0, 0, err
		}
		defer c.Close()
		conns[i] = c
		if mode == "reply" {
			go func() { _, _ = io.Copy(io.Discard, c) }()
		}
	}
	sleepCtx(ctx, time.Second) // every connection accepted and idle
	frame := []byte{0x8a, 0}   // an unsolicited pong, as the server's keepalive
	if mode == "reply" {
		frame[0] = 0x89 // a ping
	}
	// The frames go out in bursts, as the server's pinger writes them: one
	// of its 16 shards of sockets at a time, the shards spread over the
	// interval (n/rate seconds).
	burst := max(1, n/16)
	t := time.NewTicker(time.Duration(float64(time.Second) * float64(burst) / float64(rate)))
	defer t.Stop()
	cpu0, start, writes := selfCPU(), time.Now(), 0
	for i := 0; time.Since(start) < d && ctx.Err() == nil; {
		<-t.C
		for range burst {
			if _, err := conns[i].Write(frame); err != nil {
				return 0, 0, err
			}
			i = (i + 1) % n
			writes++
		}
	}
	if mode == "reply" {
		sleepCtx(ctx, 100*time.Millisecond) // the last pongs read
	}
	cpu := selfCPU() - cpu0
	if writes == 0 {
		return 0, 0, errors.New("nothing written")
	}
	return cpu / float64(writes), writes, ctx.Err()
}

// runWritesSink is the peer of the writes command: it listens on a free
// 127.0.0.1 port, prints it, and holds every connection it accepts:
// mode "none" never reads them, "read" reads each with a goroutine, "reply"
// also answers each 2-byte frame with a 6-byte masked pong. It runs until
// its parent goes (its standard input closes).
func runWritesSink(args []string) error {
	if len(args) != 1 || (args[0] != "none" && args[0] != "read" && args[0] != "reply") {
		return errors.New("usage: aoba-bench writes-sink none|read|reply")
	}
	mode := args[0]
	if _, err := raiseFiles(); err != nil {
		return err
	}
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Println(l.Addr())
	var held []net.Conn
	for {
		c, err := l.Accept()
		if err != nil {
			return err
		}
		if mode == "none" {
			held = append(held, c)
			continue
		}
		go func() {
			b := make([]byte, 512)
			pong := []byte{0x8a, 0x80, 0, 0, 0, 0}
			for {
				k, err := c.Read(b)
				if err != nil {
					return
				}
				if mode == "reply" {
					for range k / 2 {
						if _, err := c.Write(pong); err != nil {
							return
						}
					}
				}
			}
		}()
	}
}
