package storemetrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Commits measures the message committer of the embedded store, which
// stores the messages waiting at a time in one transaction, then syncs its
// write-ahead log: how long the first message of a transaction waited for
// the committer, how long the transaction and the sync took, and how many
// messages each held. A message's CreateMessage latency is about the sum of
// the three durations.
type Commits struct {
	duration *prometheus.HistogramVec
	messages prometheus.Histogram
}

// NewCommits returns the committer's metrics; feed them with Observe and
// register Collectors.
func NewCommits() *Commits {
	return &Commits{
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "aoba", Subsystem: "store", Name: "message_commit_duration_seconds",
			Help: "Embedded store: time of each stage of a message transaction: queued (its first message waiting " +
				"for the committer), commit (insert and commit, holding the write lock) and sync (of the write-ahead log).",
			Buckets: Buckets,
		}, []string{"stage"}),
		messages: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "aoba", Subsystem: "store", Name: "message_commit_messages",
			Help:    "Embedded store: messages stored by each message transaction.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 9), // 1 to 256, the committer's batch bound
		}),
	}
}

// Observe records one transaction of n messages.
func (c *Commits) Observe(n int, queued, commit, sync time.Duration) {
	c.duration.WithLabelValues("queued").Observe(queued.Seconds())
	c.duration.WithLabelValues("commit").Observe(commit.Seconds())
	c.duration.WithLabelValues("sync").Observe(sync.Seconds())
	c.messages.Observe(float64(n))
}

// Collectors returns the committer's metrics.
func (c *Commits) Collectors() []prometheus.Collector {
	return []prometheus.Collector{c.duration, c.messages}
}
