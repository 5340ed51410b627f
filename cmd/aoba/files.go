package main

import (
	"errors"
	"log/slog"

	"github.com/aoba-chat/aoba/internal/fdlimit"
)

// MinOpenFiles is the open file limit (RLIMIT_NOFILE) under which the server
// warns at start. Every open WebSocket and every open HTTP connection holds
// one descriptor; a pod meant for many sockets needs one per socket plus
// FileMargin.
const MinOpenFiles = 65536

// FileMargin is the number of descriptors a pod holds besides its client
// connections, rounded up: listeners, the embedded store's files, the Redis
// and MongoDB connection pools, pprof.
const FileMargin = 1024

// raiseFileLimit raises the soft open file limit to the hard limit (Go
// already raised it to the hard limit minus one at start), logs both and
// how many sockets they leave room for, and warns when the limit is under
// MinOpenFiles. A platform without the limit is not an error.
func raiseFileLimit(log *slog.Logger) {
	l, err := fdlimit.Raise()
	if errors.Is(err, fdlimit.ErrUnsupported) {
		return
	}
	if err != nil {
		log.Warn("could not raise the open file limit to its hard limit", "err", err)
	}
	sockets := int64(l.Soft) - FileMargin
	if sockets < 0 {
		sockets = 0
	}
	log.Info("open file limit", "soft", l.Soft, "hard", l.Hard, "sockets", sockets)
	if l.Soft < MinOpenFiles {
		log.Warn("open file limit is low: every WebSocket holds one descriptor, so this pod can hold only about "+
			"the number of sockets logged here; raise the hard limit (systemd LimitNOFILE, docker --ulimit nofile, "+
			"the container runtime's default on Kubernetes; see the README)",
			"soft", l.Soft, "hard", l.Hard, "sockets", sockets, "recommended", MinOpenFiles)
	}
}
