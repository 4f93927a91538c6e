package statsd

import (
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// sink is a StatsD server for tests: a UDP socket on 127.0.0.1 that keeps
// every datagram it receives.
type sink struct {
	conn *net.UDPConn
	mu   sync.Mutex
	pkts []string
	done chan struct{}
}

func newSink(t *testing.T) *sink {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	s := &sink{conn: conn, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		buf := make([]byte, 1<<16)
		for {
			n, _, err := conn.ReadFromUDP(buf)
			if err != nil {
				return
			}
			s.mu.Lock()
			s.pkts = append(s.pkts, string(buf[:n]))
			s.mu.Unlock()
		}
	}()
	t.Cleanup(func() { conn.Close(); <-s.done })
	return s
}

func (s *sink) addr() *net.UDPAddr { return s.conn.LocalAddr().(*net.UDPAddr) }

func (s *sink) port() int { return s.addr().Port }

// packets returns the datagrams received so far.
func (s *sink) packets() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.pkts...)
}

// lines returns every line received so far, in order.
func (s *sink) lines() []string {
	var out []string
	for _, p := range s.packets() {
		out = append(out, strings.Split(p, "\n")...)
	}
	return out
}

// take returns the datagrams received since the last take, waiting up to
// a second for at least one when want is true.
func (s *sink) take(t *testing.T, want bool) []string {
	t.Helper()
	deadline := time.Now().Add(time.Second)
	for {
		s.mu.Lock()
		got := s.pkts
		if len(got) > 0 || !want || time.Now().After(deadline) {
			s.pkts = nil
			s.mu.Unlock()
			if want && len(got) == 0 {
				t.Fatal("no datagram within 1s")
			}
			return got
		}
		s.mu.Unlock()
		time.Sleep(2 * time.Millisecond)
	}
}

// waitFor polls until cond holds for the lines received, or fails after
// 10 s.
func (s *sink) waitFor(t *testing.T, what string, cond func(lines []string) bool) []string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ls := s.lines()
		if cond(ls) {
			return ls
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 10s, still waiting for %s; received:\n%s", what, strings.Join(ls, "\n"))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// settle waits until no datagram has arrived for 50 ms (at most 2 s), so
// that everything sent before is read.
func (s *sink) settle() {
	deadline := time.Now().Add(2 * time.Second)
	n := -1
	for time.Now().Before(deadline) {
		s.mu.Lock()
		m := len(s.pkts)
		s.mu.Unlock()
		if m == n {
			return
		}
		n = m
		time.Sleep(50 * time.Millisecond)
	}
}
