// Package fdlimit reads and raises this process's limit on open file
// descriptors (RLIMIT_NOFILE). Every TCP connection, so every WebSocket,
// holds one descriptor on each end: the limit bounds how many sockets a
// process can hold.
//
// Go (1.19 and later) already raises the soft limit to the hard limit minus
// one when a program starts (package syscall's init); Raise takes it to the
// hard limit itself, so that the figure a program reports is the one in
// force whatever started it. Only a privileged process (CAP_SYS_RESOURCE)
// can raise the hard limit: that is the operator's job (ulimit -Hn,
// systemd's LimitNOFILE, docker's --ulimit nofile, the container runtime's
// default on Kubernetes).
package fdlimit

import "errors"

// Limit is a process's RLIMIT_NOFILE: the soft limit in force and the hard
// limit the process may raise it to.
type Limit struct {
	Soft, Hard uint64
}

// ErrUnsupported is returned where the platform has no RLIMIT_NOFILE this
// package knows how to read.
var ErrUnsupported = errors.New("fdlimit: open file limit not supported on this platform")

// Get returns the process's open file limit, or ErrUnsupported.
func Get() (Limit, error) { return get() }

// Set sets the process's open file limit. Lowering the hard limit cannot be
// undone without privilege. It returns the system's error, or
// ErrUnsupported.
func Set(l Limit) error { return set(l) }

// Raise sets the soft open file limit to the hard limit and returns the
// limit then in force. When setting fails it returns the limit unchanged
// and the error; ErrUnsupported where the platform has no such limit.
func Raise() (Limit, error) {
	l, err := get()
	if err != nil || l.Soft >= l.Hard {
		return l, err
	}
	if err := set(Limit{Soft: l.Hard, Hard: l.Hard}); err != nil {
		return l, err
	}
	return get()
}
