package statsd

import (
	"math"
	"math/rand/v2"
)

// binomial draws the number of successes in n independent trials that
// each succeed with probability p: how many of n counter increments (or
// histogram values) a client that sampled each one at rate p would have
// sent. It costs O(min(n·p, 30)) draws, not O(n).
func binomial(r *rand.Rand, n int64, p float64) int64 {
	switch {
	case n <= 0 || p <= 0:
		return 0
	case p >= 1:
		return n
	case p > 0.5:
		return n - binomial(r, n, 1-p)
	}
	mean := float64(n) * p
	if mean < 30 {
		// Skip from one success to the next: the number of failures
		// before a success is geometric, floor(ln U / ln(1-p)).
		lq := math.Log1p(-p)
		var k, pos int64
		for {
			u := 1 - r.Float64() // (0, 1]
			g := math.Floor(math.Log(u) / lq)
			if g >= float64(n-pos) {
				return k
			}
			pos += int64(g) + 1
			k++
		}
	}
	// n·p >= 30 and p <= 0.5, so n·p·(1-p) >= 15: the normal
	// approximation is within a fraction of a percent.
	x := math.Round(mean + r.NormFloat64()*math.Sqrt(mean*(1-p)))
	return int64(max(0, min(x, float64(n))))
}
