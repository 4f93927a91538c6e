package backoff

import (
	"strings"
	"testing"
	"time"
)

func TestJittered(t *testing.T) {
	p, err := New(Options{Kind: KindJittered, MinMs: 10, MaxMs: 100})
	if err != nil {
		t.Fatal(err)
	}
	s := p.Stream()
	if d := s.Next(); d != 10*time.Millisecond {
		t.Fatalf("first jittered wait = %v, want minMs", d)
	}
	prev, distinct := 10*time.Millisecond, map[time.Duration]bool{}
	for range 200 {
		d := s.Next()
		if d < 10*time.Millisecond || d > 100*time.Millisecond || d > 3*prev {
			t.Fatalf("jittered wait %v after %v: outside [10ms, min(100ms, 3×previous)]", d, prev)
		}
		prev = d
		distinct[d] = true
	}
	if len(distinct) < 20 {
		t.Errorf("only %d distinct waits in 200: not jittered", len(distinct))
	}
	s.Reset()
	if d := s.Next(); d != 10*time.Millisecond {
		t.Errorf("after Reset: %v, want minMs", d)
	}
}

func TestConstant(t *testing.T) {
	p, err := New(Options{Kind: KindConstant, Ms: 7})
	if err != nil {
		t.Fatal(err)
	}
	s := p.Stream()
	for range 3 {
		if d := s.Next(); d != 7*time.Millisecond {
			t.Fatalf("constant wait = %v, want 7ms", d)
		}
	}
	var zero Stream
	if zero.Next() != 0 {
		t.Error("the zero Stream must wait 0")
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		o    Options
		want string
	}{
		{Options{Kind: KindJittered, MinMs: 0, MaxMs: 5}, "backoff.minMs"},
		{Options{Kind: KindJittered, MinMs: 5, MaxMs: 1}, "backoff.maxMs: must be >= minMs (5), got 1"},
		{Options{Kind: "exponential"}, `backoff.kind: unknown kind "exponential"`},
		{Options{Kind: KindConstant, Ms: -1}, "backoff.ms"},
	} {
		if _, err := New(tc.o); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v): got %v, want error containing %q", tc.o, err, tc.want)
		}
	}
}
