package mux

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// hexBytes joins hex words, 'quoted' text taken literally.
func hexBytes(t *testing.T, parts ...string) []byte {
	t.Helper()
	var out []byte
	for _, p := range parts {
		if strings.HasPrefix(p, "'") {
			out = append(out, strings.Trim(p, "'")...)
			continue
		}
		b, err := hex.DecodeString(strings.ReplaceAll(p, " ", ""))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b...)
	}
	return out
}

func TestFrames(t *testing.T) {
	got := AppendFrame(nil, BadRerr, InitTag, []byte(CanTinit))
	if want := hexBytes(t, "0000000f 7f000001", "'tinit check'"); !bytes.Equal(got, want) {
		t.Errorf("marker = %x; want %x", got, want)
	}
	d := &Dispatch{
		Contexts: []Context{{Key: []byte("ck"), Value: []byte("v")}},
		Dst:      "/dst",
		Dtab:     []Dentry{{Prefix: "/a", Dst: "/b"}},
	}
	head, err := AppendTdispatchHeader(nil, d)
	if err != nil {
		t.Fatal(err)
	}
	want := hexBytes(t, "0001 0002", "'ck'", "0001", "'v'", "0004", "'/dst'", "0001 0002", "'/a'", "0002", "'/b'")
	if !bytes.Equal(head, want) {
		t.Fatalf("Tdispatch header = %x; want %x", head, want)
	}
	back, err := ParseTdispatch(append(head, "body"...))
	if err != nil || back.Dst != "/dst" || string(back.Body) != "body" || len(back.Contexts) != 1 ||
		string(back.Contexts[0].Value) != "v" || back.Dtab[0] != (Dentry{"/a", "/b"}) {
		t.Fatalf("ParseTdispatch = %+v, %v", back, err)
	}
	if _, err := AppendTdispatchHeader(nil, &Dispatch{Dst: strings.Repeat("x", 70000)}); err == nil {
		t.Error("a 70000-byte dst was encoded")
	}
	if _, err := ParseTdispatch(hexBytes(t, "0001 0005", "'ab'")); err == nil {
		t.Error("truncated Tdispatch accepted")
	}
	st, body, err := ParseRdispatch(RdispatchBody(Rdispatch, StatusNack, []byte("r")))
	if err != nil || st != StatusNack || string(body) != "r" {
		t.Errorf("Rdispatch = %d %q %v", st, body, err)
	}
	if b := RdispatchBody(Rreq, StatusOK, []byte("r")); !bytes.Equal(b, []byte{0, 'r'}) {
		t.Errorf("Rreq body = %x", b)
	}
	tag, why, err := ParseDiscarded(DiscardedBody(0x010203, "gone"))
	if err != nil || tag != 0x010203 || why != "gone" {
		t.Errorf("Tdiscarded = %x %q %v", tag, why, err)
	}
	v, h, err := ParseInit(InitBody(Version, [][2][]byte{{[]byte("k"), []byte("vv")}}))
	if err != nil || v != 1 || string(h[0][1]) != "vv" {
		t.Errorf("init = %d %q %v", v, h, err)
	}
	now := time.Unix(1700000000, 123456789)
	dl, ok := ParseDeadline(EncodeDeadline(Deadline{Timestamp: now, Deadline: now.Add(time.Second)}))
	if !ok || !dl.Timestamp.Equal(now) || !dl.Deadline.Equal(now.Add(time.Second)) {
		t.Errorf("deadline = %v %v", dl, ok)
	}
	// Finagle's layout: two big-endian nanosecond counts.
	if b := EncodeDeadline(Deadline{Timestamp: time.Unix(0, 1), Deadline: time.Unix(0, 2)}); !bytes.Equal(b, hexBytes(t, "0000000000000001 0000000000000002")) {
		t.Errorf("deadline bytes = %x", b)
	}
	if !IsThriftCall(hexBytes(t, "80010001 00000004")) || IsThriftCall(hexBytes(t, "02000002")) {
		t.Error("IsThriftCall")
	}
}

func TestReadFrameLimits(t *testing.T) {
	_, err := ReadFrame(bufio.NewReader(bytes.NewReader(hexBytes(t, "7fffffff 02"))))
	var tl *FrameTooLargeError
	if !errors.As(err, &tl) || !strings.Contains(err.Error(), "exceeds the 16777216-byte limit") {
		t.Errorf("huge frame: %v", err)
	}
	// A large frame announced but cut short is read as it arrives.
	_, err = ReadFrame(bufio.NewReader(bytes.NewReader(hexBytes(t, "00100000 0200"))))
	if err == nil {
		t.Error("truncated large frame accepted")
	}
	f, err := ReadFrame(bufio.NewReader(bytes.NewReader(AppendFrame(nil, Tping, 7))))
	if m, perr := Parse(f); err != nil || perr != nil || m.Type != Tping || m.Tag != 7 {
		t.Errorf("ping frame: %+v %v %v", m, err, perr)
	}
	if _, err := Parse([]byte{1, 2}); !errors.Is(err, ErrShortFrame) {
		t.Errorf("short frame: %v", err)
	}
}

// FuzzMuxFrame: any byte stream read as frames, each parsed as every
// message kind, never panics, and a frame re-encoded reads back the same.
func FuzzMuxFrame(f *testing.F) {
	head, _ := AppendTdispatchHeader(nil, &Dispatch{Contexts: []Context{{Key: []byte(DeadlineKey), Value: make([]byte, 16)}}, Dst: "/s", Dtab: []Dentry{{"/a", "/b"}}})
	f.Add(AppendFrame(AppendFrame(nil, BadRerr, InitTag, []byte(CanTinit)), Tinit, InitTag, InitBody(1, nil)))
	f.Add(AppendFrame(nil, Tdispatch, 2, head, []byte("payload")))
	f.Add(AppendFrame(nil, Rdispatch, 2, RdispatchBody(Rdispatch, 0, []byte("x"))))
	f.Add(AppendFrame(nil, BadTdiscarded, 0, DiscardedBody(2, "why")))
	f.Add(AppendFrame(nil, Treq, 3, []byte{1, 1, 2, 'a', 'b'}))
	f.Fuzz(func(t *testing.T, b []byte) {
		br := bufio.NewReader(bytes.NewReader(b))
		for range 64 {
			frame, err := ReadFrame(br)
			if err != nil {
				return
			}
			m, err := Parse(frame)
			if err != nil {
				continue
			}
			if again, _ := Parse(AppendFrame(nil, m.Type, m.Tag, m.Body)[4:]); again.Type != m.Type || again.Tag != m.Tag || !bytes.Equal(again.Body, m.Body) {
				t.Fatalf("re-encoded frame differs: %+v vs %+v", again, m)
			}
			if d, err := ParseTdispatch(m.Body); err == nil {
				h, err := AppendTdispatchHeader(nil, &d)
				if err != nil {
					t.Fatalf("a parsed Tdispatch does not encode: %v", err)
				}
				if d2, err := ParseTdispatch(append(h, d.Body...)); err != nil || d2.Dst != d.Dst || len(d2.Dtab) != len(d.Dtab) || !bytes.Equal(d2.Body, d.Body) {
					t.Fatalf("Tdispatch round trip: %+v vs %+v (%v)", d2, d, err)
				}
			}
			_, _, _ = ParseRdispatch(m.Body)
			_, _ = ParseTreq(m.Body)
			_, _, _ = ParseInit(m.Body)
			_, _, _ = ParseDiscarded(m.Body)
			_, _ = ParseDeadline(m.Body)
		}
	})
}

// serve runs a server session per connection of a loopback listener.
func serve(t *testing.T, h Handler, maxPending int) (addr string, sessions chan *ServerSession) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sessions = make(chan *ServerSession, 4)
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer nc.Close()
				br := bufio.NewReader(nc)
				first, err := ReadFrame(br)
				if err != nil {
					return
				}
				s := NewServerSession(nc, h, maxPending, 0)
				sessions <- s
				_ = s.Serve(context.Background(), br, first)
			}()
		}
	}()
	return ln.Addr().String(), sessions
}

func dial(t *testing.T, addr string) *ClientSession {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := Handshake(ctx, nc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// A session carries many dispatches at once, answered out of order; the
// dispatch's header reaches the handler; pings are answered; a discarded
// dispatch's context is cancelled at the server.
func TestSessions(t *testing.T) {
	cancelled := make(chan string, 1)
	addr, _ := serve(t, func(ctx context.Context, d *Dispatch) (byte, []byte) {
		switch body := string(d.Body); {
		case body == "block":
			<-ctx.Done()
			cancelled <- d.Dst
			return StatusOK, nil
		case body == "fail":
			return StatusError, []byte("it failed")
		case strings.HasPrefix(body, "wait "):
			var n int
			fmt.Sscan(body[5:], &n)
			time.Sleep(time.Duration(50-n) * time.Millisecond) // the last sent answers first
			return StatusOK, []byte(fmt.Sprintf("%s %s %d %s", body, d.Dst, len(d.Dtab), d.Contexts[0].Value))
		}
		return StatusOK, d.Body
	}, 0)
	s := dial(t, addr)
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := fmt.Sprintf("wait %d", i)
			d := &Dispatch{Dst: "/x", Dtab: []Dentry{{"/a", "/b"}}, Contexts: []Context{{Key: []byte("k"), Value: []byte("ctx")}}}
			st, reply, err := s.Dispatch(context.Background(), d, []byte(body))
			if want := body + " /x 1 ctx"; err != nil || st != StatusOK || string(reply) != want {
				errs <- fmt.Errorf("dispatch %d = %d %q %v; want %q", i, st, reply, err, want)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if st, reply, err := s.Dispatch(context.Background(), &Dispatch{}, []byte("fail")); err != nil || st != StatusError || string(reply) != "it failed" {
		t.Errorf("failing dispatch = %d %q %v", st, reply, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Ping(ctx); err != nil {
		t.Errorf("ping: %v", err)
	}
	dctx, dcancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer dcancel()
	if _, _, err := s.Dispatch(dctx, &Dispatch{Dst: "/discard-me"}, []byte("block")); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("discarded dispatch: %v", err)
	}
	select {
	case dst := <-cancelled:
		if dst != "/discard-me" {
			t.Errorf("cancelled %q", dst)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Tdiscarded did not cancel the server's call")
	}
	// The session is still usable.
	if _, reply, err := s.Dispatch(context.Background(), &Dispatch{}, []byte("echo")); err != nil || string(reply) != "echo" {
		t.Errorf("after discard = %q %v", reply, err)
	}
}

// Drain: the server sends Tdrain, answers what is in flight, nacks what
// comes after, and ends the session; the client stops using it.
func TestServerDrain(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	addr, sessions := serve(t, func(ctx context.Context, d *Dispatch) (byte, []byte) {
		started <- struct{}{}
		<-release
		return StatusOK, d.Body
	}, 0)
	s := dial(t, addr)
	type result struct {
		reply []byte
		err   error
	}
	done := make(chan result, 1)
	go func() {
		_, reply, err := s.Dispatch(context.Background(), &Dispatch{}, []byte("inflight"))
		done <- result{reply, err}
	}()
	<-started
	ss := <-sessions
	ss.Drain()
	deadline := time.Now().Add(5 * time.Second)
	for s.Usable() && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if s.Usable() {
		t.Fatal("the client session is still usable after Tdrain")
	}
	if _, _, err := s.Dispatch(context.Background(), &Dispatch{}, []byte("late")); !errors.Is(err, ErrDraining) {
		t.Errorf("dispatch after drain: %v; want ErrDraining", err)
	}
	close(release)
	if r := <-done; r.err != nil || string(r.reply) != "inflight" {
		t.Errorf("in-flight dispatch = %q %v", r.reply, r.err)
	}
	select {
	case <-s.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the drained session did not end")
	}
}

// MaxPending: dispatches beyond it are nacked.
func TestServerNacksBeyondMaxPending(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	addr, _ := serve(t, func(ctx context.Context, d *Dispatch) (byte, []byte) {
		started <- struct{}{}
		<-release
		return StatusOK, nil
	}, 1)
	s := dial(t, addr)
	go s.Dispatch(context.Background(), &Dispatch{}, []byte("one"))
	<-started
	if st, _, err := s.Dispatch(context.Background(), &Dispatch{}, []byte("two")); err != nil || st != StatusNack {
		t.Errorf("second dispatch = %d %v; want a nack", st, err)
	}
	close(release)
}

// A peer that is no mux server: one that closes the connection, one that
// answers in framed Thrift.
func TestHandshakeNotMux(t *testing.T) {
	for _, answer := range [][]byte{nil, hexBytes(t, "00000010 80010003 00000004", "'echo'", "00000000")} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			defer nc.Close()
			buf := make([]byte, 64)
			_, _ = nc.Read(buf)
			if answer != nil {
				_, _ = nc.Write(answer)
			}
		}()
		nc, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err = Handshake(ctx, nc)
		cancel()
		nc.Close()
		ln.Close()
		if !errors.Is(err, ErrNotMux) {
			t.Errorf("answer %x: handshake err = %v; want ErrNotMux", answer, err)
		}
	}
}

// A client session whose server goes away fails its calls in flight with
// a SessionError saying they were written.
func TestSessionEnds(t *testing.T) {
	started := make(chan struct{}, 1)
	addr, sessions := serve(t, func(ctx context.Context, d *Dispatch) (byte, []byte) {
		started <- struct{}{}
		<-ctx.Done()
		return StatusOK, nil
	}, 0)
	s := dial(t, addr)
	errc := make(chan error, 1)
	go func() {
		_, _, err := s.Dispatch(context.Background(), &Dispatch{}, []byte("x"))
		errc <- err
	}()
	<-started
	(<-sessions).nc.Close()
	var se *SessionError
	if err := <-errc; !errors.As(err, &se) || !se.Written {
		t.Errorf("err = %v; want a written SessionError", err)
	}
	if s.Usable() {
		t.Error("the ended session is usable")
	}
}
