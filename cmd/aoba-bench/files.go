package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/aoba-chat/aoba/internal/fdlimit"
)

// fileMargin is the number of descriptors the tool holds besides its
// sockets: the REST connections of provisioning and /metrics, the
// runtime's own.
const fileMargin = 320

// raiseFiles raises the tool's soft open file limit to the hard limit
// (see package fdlimit) and returns the limit in force; on a platform
// without one it returns the zero Limit and no error.
func raiseFiles() (fdlimit.Limit, error) {
	l, err := fdlimit.Raise()
	if errors.Is(err, fdlimit.ErrUnsupported) {
		return fdlimit.Limit{}, nil
	}
	return l, err
}

// checkFiles returns an error, saying what to do, when the open file limit
// l (the zero Limit: unknown) cannot hold sockets sockets plus fileMargin.
func checkFiles(l fdlimit.Limit, sockets int) error {
	if l == (fdlimit.Limit{}) {
		return nil
	}
	need := uint64(sockets) + fileMargin
	if l.Soft >= need {
		return nil
	}
	most := int64(l.Soft) - fileMargin
	if most < 0 {
		most = 0
	}
	return fmt.Errorf("%d sockets need about %d open files, but this process's limit is %d (hard limit %d, RLIMIT_NOFILE): "+
		"raise the hard limit where the tool is started (as root: ulimit -n %d; systemd LimitNOFILE; docker --ulimit nofile) "+
		"or ask for at most %d sockets", sockets, need, l.Soft, l.Hard, need, most)
}

// checkServerFiles returns an error when the server at base has no room for
// sockets more descriptors: its process_max_fds less process_open_fds on
// /metrics. A server that does not report them is not checked.
func checkServerFiles(ctx context.Context, api *API, base *url.URL, sockets int) error {
	maxFDs, err1 := ServerMetric(ctx, api, base, "process_max_fds")
	open, err2 := ServerMetric(ctx, api, base, "process_open_fds")
	if err1 != nil || err2 != nil {
		return nil
	}
	// The server's own margin: its listeners, store and pools, and the
	// REST connections of provisioning.
	const serverMargin = 64
	room := int(maxFDs-open) - serverMargin
	if room >= sockets {
		return nil
	}
	return fmt.Errorf("server %s can open about %d more sockets (its open file limit is %.0f, %.0f in use), %d asked: "+
		"raise its hard limit where it is started (README, \"Capacity\") or ask for fewer sockets",
		base, max(room, 0), maxFDs, open, sockets)
}

// selfRSS returns this process's resident memory in bytes (VmRSS in
// /proc/self/status), or 0 where it cannot be read.
func selfRSS() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) >= 1 {
				kb, err := strconv.ParseFloat(f[0], 64)
				if err == nil {
					return kb * 1024
				}
			}
		}
	}
	return 0
}
