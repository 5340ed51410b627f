package main

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Latencies collects latency samples. It is safe for concurrent use; each
// receiver normally owns one and they are merged at the end of a run.
type Latencies struct {
	mu      sync.Mutex
	samples []time.Duration
}

// Add records one sample.
func (l *Latencies) Add(d time.Duration) {
	l.mu.Lock()
	l.samples = append(l.samples, d)
	l.mu.Unlock()
}

// Merge appends every sample of o to l.
func (l *Latencies) Merge(o *Latencies) {
	o.mu.Lock()
	s := append([]time.Duration(nil), o.samples...)
	o.mu.Unlock()
	l.mu.Lock()
	l.samples = append(l.samples, s...)
	l.mu.Unlock()
}

// Summary returns the count and the percentiles of the samples; every field
// is zero when there are no samples.
func (l *Latencies) Summary() LatencySummary {
	l.mu.Lock()
	s := append([]time.Duration(nil), l.samples...)
	l.mu.Unlock()
	return Summarize(s)
}

// LatencySummary is the distribution of a set of latency samples, in
// milliseconds.
type LatencySummary struct {
	Count int64   `json:"count"`
	P50   float64 `json:"p50_ms"`
	P95   float64 `json:"p95_ms"`
	P99   float64 `json:"p99_ms"`
	Max   float64 `json:"max_ms"`
}

// Summarize sorts s in place and returns its percentiles (nearest-rank);
// it returns the zero summary for an empty slice.
func Summarize(s []time.Duration) LatencySummary {
	if len(s) == 0 {
		return LatencySummary{}
	}
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return LatencySummary{
		Count: int64(len(s)),
		P50:   ms(Percentile(s, 50)),
		P95:   ms(Percentile(s, 95)),
		P99:   ms(Percentile(s, 99)),
		Max:   ms(s[len(s)-1]),
	}
}

// Percentile returns the nearest-rank p-th percentile (0 < p <= 100) of the
// sorted slice s: the smallest sample such that at least p% of the samples
// are less than or equal to it. It returns 0 for an empty slice.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(n)))
	if rank < 1 {
		rank = 1
	}
	if rank > n {
		rank = n
	}
	return sorted[rank-1]
}

func ms(d time.Duration) float64 {
	return math.Round(float64(d)/float64(time.Millisecond)*1000) / 1000
}

// SeqSet is a growable bitset of sequence numbers (>= 0). It is not safe for
// concurrent use.
type SeqSet struct {
	bits []uint64
	n    int
}

// Add inserts seq and reports whether it was absent; negative seqs are
// ignored and reported as absent-but-not-added (false).
func (s *SeqSet) Add(seq int64) bool {
	if seq < 0 {
		return false
	}
	w := int(seq / 64)
	for w >= len(s.bits) {
		s.bits = append(s.bits, 0)
	}
	m := uint64(1) << uint(seq%64)
	if s.bits[w]&m != 0 {
		return false
	}
	s.bits[w] |= m
	s.n++
	return true
}

// Remove takes seq out of the set and reports whether it was there.
func (s *SeqSet) Remove(seq int64) bool {
	if !s.Has(seq) {
		return false
	}
	s.bits[seq/64] &^= uint64(1) << uint(seq%64)
	s.n--
	return true
}

// Has reports whether seq is in the set.
func (s *SeqSet) Has(seq int64) bool {
	if seq < 0 {
		return false
	}
	w := int(seq / 64)
	return w < len(s.bits) && s.bits[w]&(uint64(1)<<uint(seq%64)) != 0
}

// Len returns the number of distinct seqs in the set.
func (s *SeqSet) Len() int { return s.n }

// Missing returns how many seqs of want are not in s.
func (s *SeqSet) Missing(want *SeqSet) int64 {
	var missing int64
	for w, word := range want.bits {
		var have uint64
		if w < len(s.bits) {
			have = s.bits[w]
		}
		missing += int64(popcount(word &^ have))
	}
	return missing
}

func popcount(x uint64) int {
	n := 0
	for x != 0 {
		x &= x - 1
		n++
	}
	return n
}

// Tracker is one receiver's delivery accounting: which (publisher, seq) it
// got, how many duplicates, and the latency of each first delivery. It is
// safe for concurrent use.
type Tracker struct {
	mu         sync.Mutex
	seen       map[int]*SeqSet
	duplicates int64
	deliveries int64
	lat        Latencies
}

// NewTracker returns an empty Tracker.
func NewTracker() *Tracker {
	return &Tracker{seen: make(map[int]*SeqSet)}
}

// Record notes one received message from publisher pub with sequence seq,
// sent at sent and received at now, and reports whether it was the first
// delivery of (pub, seq). A repeated (pub, seq) counts as a duplicate and
// adds no latency sample.
func (t *Tracker) Record(pub int, seq int64, sent, now time.Time) bool {
	t.mu.Lock()
	set := t.seen[pub]
	if set == nil {
		set = &SeqSet{}
		t.seen[pub] = set
	}
	fresh := set.Add(seq)
	if fresh {
		t.deliveries++
		t.lat.samples = append(t.lat.samples, now.Sub(sent))
	} else {
		t.duplicates++
	}
	t.mu.Unlock()
	return fresh
}

// Deliveries returns the number of distinct messages received so far.
func (t *Tracker) Deliveries() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.deliveries
}

// Account compares the tracker with what each publisher had confirmed
// (expected, keyed by publisher) and returns the number of lost and
// duplicated deliveries. Publishers listed in skip are not expected at this
// receiver (its own messages).
func (t *Tracker) Account(expected map[int]*SeqSet, skip int) (lost, duplicated int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for pub, want := range expected {
		if pub == skip {
			continue
		}
		have := t.seen[pub]
		if have == nil {
			have = &SeqSet{}
		}
		lost += have.Missing(want)
	}
	return lost, t.duplicates
}

// MetricValue returns the value of the unlabelled sample name in a
// Prometheus text exposition, or an error when it is absent or malformed.
func MetricValue(text, name string) (float64, error) {
	for _, line := range strings.Split(text, "\n") {
		if !strings.HasPrefix(line, name) {
			continue
		}
		rest := line[len(name):]
		if rest == "" || (rest[0] != ' ' && rest[0] != '\t') {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			return 0, fmt.Errorf("metric %s: %v", name, err)
		}
		return v, nil
	}
	return 0, fmt.Errorf("metric %s not found", name)
}
