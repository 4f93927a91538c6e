package router

import (
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/linnet-mesh/linnet/internal/balancer"
	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/naming"
	"github.com/linnet-mesh/linnet/internal/telemetry"
)

// boundEntry is the bound tier for one bound name (replica set): it keeps
// a balancer fed with the name's live addresses.
type boundEntry struct {
	r      *Router
	key    string
	once   sync.Once
	id     string
	idPath dtab.Path
	policy ClientPolicy
	stats  *telemetry.RequestStats
	bal    balancer.Balancer
	svc    http.RoundTripper

	addr   atomic.Pointer[naming.Addr]
	ready  chan struct{}
	readyO sync.Once
	mu     sync.Mutex
	cancel func()
	closed bool
	// express: the client policy lets attempts take the express lane.
	express bool
}

func (r *Router) newBoundEntry(key string) *boundEntry {
	return &boundEntry{r: r, key: key, id: key, ready: make(chan struct{})}
}

func (b *boundEntry) init(nb *naming.Bound) {
	b.once.Do(func() {
		b.idPath = nb.ID
		if b.r.p.Client != nil {
			b.policy = b.r.p.Client(nb.ID)
		}
		if b.policy.NewBalancer != nil {
			b.bal = b.policy.NewBalancer()
		}
		if b.bal == nil {
			b.bal = newLeastLoaded()
		}
		b.svc = compose(boundStack, b, RoundTripperFunc(b.balance))
		b.express = b.policy.AttemptTimeout == 0 && (b.policy.Requeue == nil || b.policy.RequeueExpress.Valid())
		if nb.Addr == nil {
			b.update(naming.Addr{State: naming.AddrNeg})
			return
		}
		cancel := nb.Addr.Subscribe(b.update)
		b.mu.Lock()
		if b.closed {
			b.mu.Unlock()
			cancel()
			return
		}
		b.cancel = cancel
		b.mu.Unlock()
	})
}

func (b *boundEntry) update(a naming.Addr) {
	if a.State == naming.AddrBound {
		b.bal.Update(a.Addrs)
	}
	b.addr.Store(&a)
	if a.State != naming.AddrPending {
		b.readyO.Do(func() { close(b.ready) })
	}
}

func (b *boundEntry) close() {
	b.mu.Lock()
	b.closed = true
	cancel := b.cancel
	b.cancel = nil
	b.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	if b.stats != nil {
		b.stats.Close()
	}
	b.bal.Close()
}

// balance is the bottom of the bound stack: pick an endpoint, send the
// request over its client, and report the outcome to the balancer when
// the response body is done.
func (b *boundEntry) balance(req *http.Request) (*http.Response, error) {
	ok, err := b.r.waitReady(req.Context(), b.ready)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, &BindingTimeoutError{Name: b.idPath, Timeout: b.r.p.BindingTimeout.String()}
	}
	switch a := b.addr.Load(); a.State {
	case naming.AddrNeg:
		return nil, &NoRouteError{Bound: b.idPath, Reason: "the bound name does not exist (negative address set)"}
	case naming.AddrFailed:
		reason := "address lookup failed"
		if a.Err != nil {
			reason += ": " + a.Err.Error()
		}
		return nil, &NoRouteError{Bound: b.idPath, Reason: reason}
	}
	ep, done, err := b.bal.Pick()
	if err != nil {
		if errors.Is(err, balancer.ErrNoEndpoints) {
			return nil, &NoRouteError{Bound: b.idPath, Reason: "no endpoints available"}
		}
		return nil, err
	}
	c := b.r.clients.get(ep.Key, coarseNow())
	c.init()
	req.URL.Host = ep.Key
	if a, ok := ep.Meta[MetaAuthority].(string); ok && a != "" {
		// The namer says how this endpoint wants to be addressed (consul
		// setHost, namerd's authority). A shallow copy carries it, so a
		// retry to another endpoint sends the caller's Host again and the
		// transport's writer never sees the Host change under it.
		r2 := *req
		r2.Host = a
		req = &r2
	}
	resp, err := c.transport.RoundTrip(req)
	if err != nil {
		done(true)
		if isDialError(err) {
			return nil, &ConnectError{Addr: ep.Key, Bound: b.idPath, Err: err}
		}
		return nil, err
	}
	if resp.Body == nil || resp.Body == http.NoBody {
		done(resp.StatusCode >= 500)
		return resp, nil
	}
	if h, ok := resp.Body.(BodyEndHook); ok && h.OnEnd(done, resp.StatusCode >= 500) {
		return resp, nil
	}
	resp.Body = &doneBody{rc: resp.Body, done: done, failed: resp.StatusCode >= 500}
	return resp, nil
}

// BodyEndHook is a response body that reports its own end, so that the
// balancer's accounting needs no wrapper (and no allocation) per response.
// OnEnd arranges for done to be called once: done(failed) at EOF or when
// the body is closed early, done(true) after a read error. It returns
// false, and changes nothing, if it cannot (the body already ended or has
// a hook).
type BodyEndHook interface {
	OnEnd(done func(failed bool), failed bool) bool
}

// isDialError reports whether err happened while connecting, i.e. the
// request was never written.
func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// doneBody reports the end of a response to the balancer once: at EOF, on
// a read error, or at Close.
type doneBody struct {
	rc     io.ReadCloser
	done   func(failed bool)
	failed bool
	fired  atomic.Bool
}

func (d *doneBody) Read(p []byte) (int, error) {
	n, err := d.rc.Read(p)
	if err != nil {
		d.fire(err != io.EOF)
	}
	return n, err
}

func (d *doneBody) Close() error {
	err := d.rc.Close()
	d.fire(false)
	return err
}

func (d *doneBody) fire(readErr bool) {
	if d.fired.CompareAndSwap(false, true) {
		d.done(d.failed || readErr)
	}
}

// Write passes through to bodies that are writable (101 Switching
// Protocols responses carry an io.ReadWriteCloser).
func (d *doneBody) Write(p []byte) (int, error) {
	if w, ok := d.rc.(io.Writer); ok {
		return w.Write(p)
	}
	return 0, errors.New("response body is not writable")
}
