package telemetry

import (
	"math"
	"math/bits"
	"sync/atomic"
)

// Stat is a histogram of non-negative values (latencies in milliseconds,
// sizes in bytes). Buckets are log-linear: exact below 16, then 16 buckets
// per power of two (error under 6.25%). Add is lock-free and allocation-free.
type Stat struct {
	count   atomic.Int64
	sum     atomic.Int64
	max     atomic.Int64
	min     atomic.Int64 // stored as value+1 so that 0 means unset
	buckets [numBuckets]atomic.Int64
}

const (
	subBits    = 4
	subCount   = 1 << subBits
	numBuckets = (64-subBits)*subCount + subCount
)

// NewStat returns an empty stat.
func NewStat() *Stat { return new(Stat) }

func bucketOf(v int64) int {
	if v < subCount {
		return int(v)
	}
	e := 63 - bits.LeadingZeros64(uint64(v)) // position of the top bit, >= subBits
	shift := e - subBits
	sub := int(v>>uint(shift)) & (subCount - 1)
	return (e-subBits+1)*subCount + sub
}

// bucketLow returns the smallest value that falls in bucket b.
func bucketLow(b int) int64 {
	if b < subCount {
		return int64(b)
	}
	e := b/subCount - 1 + subBits
	sub := int64(b % subCount)
	return (int64(1) << uint(e)) | sub<<uint(e-subBits)
}

// Add records one value; negative values count as 0.
func (s *Stat) Add(v int64) {
	if v < 0 {
		v = 0
	}
	s.count.Add(1)
	s.sum.Add(v)
	for {
		m := s.max.Load()
		if v <= m || s.max.CompareAndSwap(m, v) {
			break
		}
	}
	for {
		m := s.min.Load()
		if (m != 0 && v+1 >= m) || s.min.CompareAndSwap(m, v+1) {
			break
		}
	}
	s.buckets[bucketOf(v)].Add(1)
}

// Snapshot is a point-in-time summary of a Stat.
type Snapshot struct {
	Count, Sum, Min, Max int64
	Avg                  float64
	P50, P90, P95, P99   int64
	P9990, P9999         int64
	// Buckets holds (upper bound inclusive, cumulative count) pairs for
	// non-empty buckets, for Prometheus-style exposition.
	Buckets []BucketCount
}

// BucketCount is one cumulative histogram bucket.
type BucketCount struct {
	UpperBound int64
	Cumulative int64
}

// Snapshot summarises the stat since it was created or last rolled (see
// Registry.Roll); it does not reset it.
func (s *Stat) Snapshot() Snapshot {
	var counts [numBuckets]int64
	for i := range s.buckets {
		counts[i] = s.buckets[i].Load()
	}
	return summarize(&counts, s.sum.Load(), s.min.Load(), s.max.Load())
}

// snapshotAndReset summarises the stat and starts a new interval. Values
// added concurrently land in either interval, never in none.
func (s *Stat) snapshotAndReset() Snapshot {
	var counts [numBuckets]int64
	for i := range s.buckets {
		counts[i] = s.buckets[i].Swap(0)
	}
	sum, lo, hi := s.sum.Swap(0), s.min.Swap(0), s.max.Swap(0)
	s.count.Store(0)
	return summarize(&counts, sum, lo, hi)
}

// summarize computes a Snapshot; minPlus1 is the min field's encoding.
func summarize(counts *[numBuckets]int64, sum, minPlus1, max int64) Snapshot {
	var total int64
	for _, n := range counts {
		total += n
	}
	sn := Snapshot{Count: total, Sum: sum, Max: max}
	if minPlus1 > 0 {
		sn.Min = minPlus1 - 1
	}
	if total == 0 {
		return Snapshot{}
	}
	sn.Avg = float64(sn.Sum) / float64(total)
	q := func(p float64) int64 {
		rank := int64(math.Ceil(p * float64(total)))
		if rank < 1 {
			rank = 1
		}
		var c int64
		for i, n := range counts {
			c += n
			if c >= rank {
				v := bucketLow(i)
				if v > sn.Max {
					v = sn.Max
				}
				if v < sn.Min {
					v = sn.Min
				}
				return v
			}
		}
		return sn.Max
	}
	sn.P50, sn.P90, sn.P95, sn.P99 = q(0.5), q(0.9), q(0.95), q(0.99)
	sn.P9990, sn.P9999 = q(0.999), q(0.9999)
	var c int64
	for i, n := range counts {
		if n == 0 {
			continue
		}
		c += n
		up := bucketLow(i+1) - 1
		sn.Buckets = append(sn.Buckets, BucketCount{UpperBound: up, Cumulative: c})
	}
	return sn
}
