// Package clock is the request path's clock: one monotonic reading per
// call, for the timestamps that are only ever compared with each other
// (latencies, idle ages, ejection deadlines, retry-budget windows).
//
// time.Now reads two clocks, the wall clock and the monotonic one; a proxy
// took about a dozen such readings per request, a measurable part of its
// CPU time (docs/performance.md). Mono reads only the monotonic clock, and
// a step of the wall clock cannot change what it measures.
package clock

import "time"

// base is the origin of Mono: the process's start, as seen by the
// monotonic clock.
var base = time.Now()

// Mono returns the nanoseconds elapsed since the process started, on the
// monotonic clock. Only differences between its values mean anything. It
// is always positive after the first nanosecond, so callers may use 0 as
// "never".
func Mono() int64 { return int64(time.Since(base)) }

// Since returns the time elapsed since t0, a value of Mono.
func Since(t0 int64) time.Duration { return time.Duration(Mono() - t0) }
