package thrift

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"reflect"
	"sync"
	"time"

	"github.com/apache/thrift/lib/go/thrift"

	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/namerd/follow"
	"github.com/linnet-mesh/linnet/internal/naming"
	"github.com/linnet-mesh/linnet/internal/proxy/accept"
	"github.com/linnet-mesh/linnet/internal/storage"
	"github.com/linnet-mesh/linnet/internal/watch"
)

// InterfaceKind is namerd's Thrift interface kind.
const InterfaceKind = "io.l5d.thriftNameInterpreter"

// DefaultPort is the interface's default port.
const DefaultPort = 4100

// InterfaceConfig holds the io.l5d.thriftNameInterpreter keys besides the
// common ip/port/tls (namerd embeds it in its interface config).
type InterfaceConfig struct {
	// RetryBaseSecs and RetryJitterSecs set the retryInSeconds of bind and
	// addr failures: base + gaussian jitter (Linkerd: 600 and 60).
	RetryBaseSecs   int          `yaml:"retryBaseSecs"`
	RetryJitterSecs int          `yaml:"retryJitterSecs"`
	Cache           *CacheConfig `yaml:"cache"`
}

// CacheConfig bounds the observation caches. An observation is active
// while a request waits on it; inactive ones are dropped after their TTL,
// and the oldest beyond the inactive capacity. The active capacities are
// accepted for compatibility: every active observation is kept.
type CacheConfig struct {
	BindingCacheActive          int `yaml:"bindingCacheActive"`
	BindingCacheInactive        int `yaml:"bindingCacheInactive"`
	BindingCacheInactiveTTLSecs int `yaml:"bindingCacheInactiveTTLSecs"`
	AddrCacheActive             int `yaml:"addrCacheActive"`
	AddrCacheInactive           int `yaml:"addrCacheInactive"`
	AddrCacheInactiveTTLSecs    int `yaml:"addrCacheInactiveTTLSecs"`
}

// SetDefaults implements config.Defaulter.
func (c *CacheConfig) SetDefaults() {
	*c = CacheConfig{1000, 100, 600, 1000, 100, 600}
}

// Validate implements config.Validator.
func (c *CacheConfig) Validate() error {
	for _, v := range []struct {
		name string
		v    int
	}{
		{"bindingCacheActive", c.BindingCacheActive}, {"bindingCacheInactive", c.BindingCacheInactive},
		{"bindingCacheInactiveTTLSecs", c.BindingCacheInactiveTTLSecs}, {"addrCacheActive", c.AddrCacheActive},
		{"addrCacheInactive", c.AddrCacheInactive}, {"addrCacheInactiveTTLSecs", c.AddrCacheInactiveTTLSecs},
	} {
		if v.v < 0 {
			return fmt.Errorf("%s: must not be negative, got %d", v.name, v.v)
		}
	}
	return nil
}

// SetDefaults implements config.Defaulter.
func (c *InterfaceConfig) SetDefaults() {
	c.RetryBaseSecs, c.RetryJitterSecs = 600, 60
}

// Validate implements config.Validator.
func (c *InterfaceConfig) Validate() error {
	if c.RetryBaseSecs < 0 || c.RetryJitterSecs < 0 {
		return fmt.Errorf("retryBaseSecs and retryJitterSecs must not be negative, got %d and %d", c.RetryBaseSecs, c.RetryJitterSecs)
	}
	return nil
}

// Options configure NewServer.
type Options struct {
	Store storage.Store
	// Interpreter binds through the dtab given (the namespace dtab followed
	// by the request's), with namerd's namers and the /$/ system namers.
	Interpreter naming.Interpreter
	Config      InterfaceConfig
	Logger      *slog.Logger
}

// Server serves the Namer service.
type Server struct {
	o      Options
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc
	stamps *stamper

	binds *cache[bindKey, BoundTree]
	addrs *cache[string, *BoundAddr]
	dtabs *cache[string, string]

	mu    sync.Mutex
	lns   map[net.Listener]struct{}
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
	done  bool
}

type bindKey struct{ ns, dtab, path string }

// firstFrameTimeout bounds the wait for a new connection's first frame.
const firstFrameTimeout = 30 * time.Second

// maxPendingPerConn bounds the requests one connection may have waiting.
const maxPendingPerConn = 10000

// NewServer returns a server; Serve starts it on a listener.
func NewServer(o Options) *Server {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	c := o.Config.Cache
	if c == nil {
		c = new(CacheConfig)
		c.SetDefaults()
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		o: o, log: o.Logger, ctx: ctx, cancel: cancel, stamps: newStamper(),
		binds: newCache[bindKey, BoundTree](secs(c.BindingCacheInactiveTTLSecs), c.BindingCacheInactive),
		addrs: newCache[string, *BoundAddr](secs(c.AddrCacheInactiveTTLSecs), c.AddrCacheInactive),
		dtabs: newCache[string, string](secs(c.BindingCacheInactiveTTLSecs), c.BindingCacheInactive),
		lns:   map[net.Listener]struct{}{},
		conns: map[net.Conn]struct{}{},
	}
	go s.janitor(min(secs(c.BindingCacheInactiveTTLSecs), secs(c.AddrCacheInactiveTTLSecs), 30*time.Second))
	return s
}

func secs(n int) time.Duration { return time.Duration(n) * time.Second }

func (s *Server) janitor(every time.Duration) {
	t := time.NewTicker(max(every, time.Second))
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case now := <-t.C:
			s.binds.sweep(now)
			s.addrs.sweep(now)
			s.dtabs.sweep(now)
		}
	}
}

// Serve accepts connections on ln until Shutdown or Close, then returns
// http.ErrServerClosed (as net/http does, so callers treat both alike).
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.done {
		s.mu.Unlock()
		return http.ErrServerClosed
	}
	s.lns[ln] = struct{}{}
	s.mu.Unlock()
	closing := func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.done
	}
	return accept.Loop(ln, accept.Fixed(10*time.Millisecond), closing, func(c net.Conn) bool {
		s.mu.Lock()
		if s.done {
			s.mu.Unlock()
			_ = c.Close()
			return false
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			s.serveConn(c)
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
		}()
		return true
	})
}

// Shutdown stops the server: listeners and connections are closed (waiting
// requests are cut; clients retry elsewhere or later), and the
// observations released. It waits for connection handlers until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.done = true
	for ln := range s.lns {
		_ = ln.Close()
	}
	for c := range s.conns {
		_ = c.Close()
	}
	s.mu.Unlock()
	s.cancel()
	s.binds.closeAll()
	s.addrs.closeAll()
	s.dtabs.closeAll()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close is Shutdown without waiting.
func (s *Server) Close() error {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Shutdown(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

func (s *Server) serveConn(c net.Conn) {
	defer c.Close()
	br := bufio.NewReaderSize(c, 16<<10)
	// A peer that connects must speak soon; afterwards sessions may be
	// quiet for as long as their long polls last.
	_ = c.SetReadDeadline(time.Now().Add(firstFrameTimeout))
	first, err := readFrame(br)
	if err != nil {
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	if isThriftCall(first) {
		s.serveFramed(c, br, first)
		return
	}
	s.serveMux(c, br, first)
}

// serveFramed serves a plain framed-Thrift connection: one request at a
// time, answered in order.
func (s *Server) serveFramed(c net.Conn, br *bufio.Reader, first []byte) {
	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	frames := make(chan []byte, 1)
	frames <- first
	go func() {
		// A read error (the client hung up) cancels the request in hand.
		defer cancel()
		defer close(frames)
		for {
			f, err := readFrame(br)
			if err != nil {
				return
			}
			select {
			case frames <- f:
			case <-ctx.Done():
				return
			}
		}
	}()
	for f := range frames {
		reply, err := s.handle(ctx, f)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Debug("closing thrift connection", "remote", c.RemoteAddr().String(), "err", err)
			}
			return
		}
		if reply == nil { // oneway
			continue
		}
		out := binary.BigEndian.AppendUint32(make([]byte, 0, 4+len(reply)), uint32(len(reply)))
		if _, err := c.Write(append(out, reply...)); err != nil {
			return
		}
	}
}

// muxConn is the state of one mux session.
type muxConn struct {
	c       net.Conn
	wmu     sync.Mutex
	pmu     sync.Mutex
	pending map[uint32]*muxReq
}

type muxReq struct {
	cancel    context.CancelFunc
	discarded bool
}

func (m *muxConn) write(typ int8, tag uint32, parts ...[]byte) error {
	b := appendMux(nil, typ, tag, parts...)
	m.wmu.Lock()
	defer m.wmu.Unlock()
	_, err := m.c.Write(b)
	return err
}

func (s *Server) serveMux(c net.Conn, br *bufio.Reader, first []byte) {
	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	m := &muxConn{c: c, pending: map[uint32]*muxReq{}}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel() // before Wait: cut the waiting requests
	for f := first; ; {
		if err := s.muxMessage(ctx, m, f, &wg); err != nil {
			s.log.Debug("closing mux session", "remote", c.RemoteAddr().String(), "err", err)
			return
		}
		var err error
		if f, err = readFrame(br); err != nil {
			return
		}
	}
}

func (s *Server) muxMessage(ctx context.Context, m *muxConn, frame []byte, wg *sync.WaitGroup) error {
	msg, err := parseMux(frame)
	if err != nil {
		return err
	}
	if msg.tag&tagMSB != 0 {
		return errors.New("fragmented mux message, but fragmentation was not negotiated")
	}
	switch msg.typ {
	case muxRerr, muxBadRerr:
		// The "tinit check" marker: echo it to say Tinit is understood.
		if msg.tag != 0 {
			return m.write(msg.typ, msg.tag, msg.body)
		}
		return nil
	case muxTinit:
		v, _, err := parseInit(msg.body)
		if err != nil {
			return err
		}
		if v != muxVersion {
			return m.write(muxBadRerr, msg.tag, fmt.Appendf(nil, "unsupported version %d, expected %d", v, muxVersion))
		}
		// No session features are offered: the client falls back to plain
		// frames.
		return m.write(muxRinit, msg.tag, initBody(muxVersion, nil))
	case muxTping:
		return m.write(muxRping, msg.tag)
	case muxTdrain:
		return m.write(muxRdrain, msg.tag)
	case muxTdiscarded, muxBadTdiscard:
		if len(msg.body) < 3 {
			return errors.New("short Tdiscarded")
		}
		which := uint32(msg.body[0])<<16 | uint32(msg.body[1])<<8 | uint32(msg.body[2])
		m.pmu.Lock()
		if r := m.pending[which]; r != nil {
			r.discarded = true
			r.cancel()
		}
		m.pmu.Unlock()
		return nil
	case muxTdispatch, muxTreq:
		if msg.tag == 0 {
			return errors.New("request with the marker tag 0")
		}
		var body []byte
		if msg.typ == muxTdispatch {
			d, err := parseTdispatch(msg.body)
			if err != nil {
				return err
			}
			body = d.body
		} else if body, err = parseTreq(msg.body); err != nil {
			return err
		}
		rtyp := muxRdispatch
		if msg.typ == muxTreq {
			rtyp = muxRreq
		}
		rctx, rcancel := context.WithCancel(ctx)
		r := &muxReq{cancel: rcancel}
		m.pmu.Lock()
		_, dup := m.pending[msg.tag]
		full := len(m.pending) >= maxPendingPerConn
		if !dup && !full {
			m.pending[msg.tag] = r
		}
		m.pmu.Unlock()
		switch {
		case dup:
			rcancel()
			return fmt.Errorf("tag %d is already in use", msg.tag)
		case full:
			rcancel()
			return m.write(rtyp, msg.tag, muxStatus(rtyp, statusNack, nil))
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer rcancel()
			reply, err := s.handle(rctx, body)
			m.pmu.Lock()
			delete(m.pending, msg.tag)
			discarded := r.discarded
			m.pmu.Unlock()
			switch {
			case discarded:
				_ = m.write(muxRdiscarded, msg.tag)
			case ctx.Err() != nil:
				// The session is ending.
			case err != nil:
				_ = m.write(rtyp, msg.tag, muxStatus(rtyp, statusError, []byte(err.Error())))
			default:
				_ = m.write(rtyp, msg.tag, muxStatus(rtyp, statusOK, reply))
			}
		}()
		return nil
	case muxRdrain, muxRping, muxRdiscarded, muxTlease, muxRinit:
		return nil
	}
	if msg.typ > 0 && msg.tag != 0 {
		return m.write(muxBadRerr, msg.tag, fmt.Appendf(nil, "unknown message type %d", msg.typ))
	}
	return nil
}

// muxStatus builds the body of an Rdispatch (status, no contexts) or an
// Rreq (status).
func muxStatus(rtyp int8, status byte, body []byte) []byte {
	if rtyp == muxRreq {
		return append([]byte{status}, body...)
	}
	return append([]byte{status, 0, 0}, body...)
}

// handle answers one Thrift message. It returns the reply message, or nil
// for a oneway call, or an error when the message cannot be understood or
// ctx ended.
func (s *Server) handle(ctx context.Context, msg []byte) ([]byte, error) {
	c, err := DecodeCall(msg)
	if err != nil {
		return nil, err
	}
	var reply []byte
	switch c.Method {
	case MethodBind:
		reply, err = s.bind(ctx, c.Seq, c.Bind)
	case MethodAddr:
		reply, err = s.addr(ctx, c.Seq, c.Addr)
	case MethodDtab:
		reply, err = s.dtab(ctx, c.Seq, c.Dtab)
	case MethodDelegate:
		reply, err = s.delegate(ctx, c.Seq, c.Delegate)
	default:
		// Includes Finagle's TTwitter upgrade probe
		// (__can__finagle__trace__v3__): answering "unknown method" keeps
		// the client on plain Thrift.
		reply, err = encodeAppException(c.Method, c.Seq, thrift.UNKNOWN_METHOD, "Invalid method name: '"+c.Method+"'")
	}
	return reply, err
}

// retryIn is the retryInSeconds of failures: base plus gaussian jitter.
func (s *Server) retryIn() int32 {
	r := float64(s.o.Config.RetryBaseSecs) + rand.NormFloat64()*float64(s.o.Config.RetryJitterSecs)
	return int32(max(0, min(r, math.MaxInt32)))
}

func toPath(p [][]byte) dtab.Path {
	out := make(dtab.Path, len(p))
	for i, e := range p {
		out[i] = string(e)
	}
	return out
}

func fromPath(p dtab.Path) [][]byte {
	out := make([][]byte, len(p))
	for i, e := range p {
		out[i] = []byte(e)
	}
	return out
}

func (s *Server) bind(ctx context.Context, seq int32, req *BindReq) ([]byte, error) {
	ns := req.Name.Ns
	fail := func(reason string, retry int32) ([]byte, error) {
		return encodeMessage(MethodBind, thrift.REPLY, seq, 1, &BindFailure{Reason: reason, RetryInSeconds: retry, Name: req.Name, Ns: ns})
	}
	path := toPath(req.Name.Name)
	if len(path) == 0 {
		return fail("empty path", math.MaxInt32)
	}
	extra, err := dtab.Parse(req.Dtab)
	if err != nil {
		return fail(fmt.Sprintf("invalid dtab %q: %v", req.Dtab, err), s.retryIn())
	}
	k := bindKey{ns: ns, dtab: extra.String(), path: path.String()}
	o := s.binds.get(k, func() *observer[BoundTree] {
		octx, cancel := context.WithCancel(s.ctx)
		o := newObserver(s.stamps, func(a, b BoundTree) bool { return reflect.DeepEqual(a, b) }, cancel)
		go s.runBind(octx, o, ns, extra, path)
		return o
	})
	stamp, tree, stateErr, err := o.wait(ctx, req.Name.Stamp)
	if err != nil {
		return nil, err
	}
	if stateErr != nil {
		return fail(stateErr.Error(), s.retryIn())
	}
	return encodeMessage(MethodBind, thrift.REPLY, seq, 0, &Bound{Stamp: stamp, Tree: tree, Ns: ns})
}

// runBind follows ns's dtab and the binding of path through it (followed
// by extra) until ctx ends.
func (s *Server) runBind(ctx context.Context, o *observer[BoundTree], ns string, extra dtab.Dtab, path dtab.Path) {
	_ = follow.Binding(ctx, s.o.Store, s.o.Interpreter, ns, extra, path, func(b watch.Activity[naming.BoundTree]) error {
		if b.State == watch.Failed {
			o.update(BoundTree{}, b.Err) // a *follow.StoreError names the namespace
			return nil
		}
		root, nodes, _ := mkTree(b.Value, 0)
		o.update(BoundTree{Root: root, Nodes: nodes}, nil)
		return nil
	})
}

// mkTree flattens t as Linkerd does: the children of an alt or union are
// numbered in pre-order from next, each child before its own children.
func mkTree(t naming.BoundTree, next int32) (BoundNode, map[int32]BoundNode, int32) {
	nodes := map[int32]BoundNode{}
	switch t.Kind {
	case dtab.Empty:
		return BoundNode{Kind: NodeEmpty}, nodes, next
	case dtab.Fail:
		return BoundNode{Kind: NodeFail}, nodes, next
	case dtab.Leaf:
		if t.Value == nil {
			return BoundNode{Kind: NodeNeg}, nodes, next
		}
		return BoundNode{Kind: NodeLeaf, Leaf: BoundName{ID: fromPath(t.Value.ID), Residual: fromPath(t.Value.Residual)}}, nodes, next
	case dtab.Alt:
		n := BoundNode{Kind: NodeAlt, Alt: []int32{}}
		for _, c := range t.Alts {
			id := next
			node, sub, after := mkTree(c, id+1)
			maps.Copy(nodes, sub)
			nodes[id] = node
			n.Alt = append(n.Alt, id)
			next = after
		}
		return n, nodes, next
	case dtab.Union:
		n := BoundNode{Kind: NodeWeighted, Weighted: []WeightedNodeID{}}
		for _, w := range t.Branches {
			id := next
			node, sub, after := mkTree(w.Tree, id+1)
			maps.Copy(nodes, sub)
			nodes[id] = node
			n.Weighted = append(n.Weighted, WeightedNodeID{Weight: w.Weight, ID: id})
			next = after
		}
		return n, nodes, next
	}
	return BoundNode{Kind: NodeNeg}, nodes, next
}

func (s *Server) addr(ctx context.Context, seq int32, req *AddrReq) ([]byte, error) {
	fail := func(reason string, retry int32) ([]byte, error) {
		return encodeMessage(MethodAddr, thrift.REPLY, seq, 1, &AddrFailure{Reason: reason, RetryInSeconds: retry, Name: req.Name})
	}
	id := naming.StripTransformerPrefix(toPath(req.Name.Name))
	if len(id) == 0 {
		return fail("empty path", math.MaxInt32)
	}
	o := s.addrs.get(id.String(), func() *observer[*BoundAddr] {
		octx, cancel := context.WithCancel(s.ctx)
		o := newObserver(s.stamps, func(a, b *BoundAddr) bool { return reflect.DeepEqual(a, b) }, cancel)
		go s.runAddr(octx, o, id)
		return o
	})
	stamp, ba, stateErr, err := o.wait(ctx, req.Name.Stamp)
	if err != nil {
		return nil, err
	}
	if stateErr != nil {
		return fail(stateErr.Error(), s.retryIn())
	}
	return encodeMessage(MethodAddr, thrift.REPLY, seq, 0, &Addr{Stamp: stamp, Bound: ba})
}

// runAddr follows the address set of the bound id until ctx ends.
func (s *Server) runAddr(ctx context.Context, o *observer[*BoundAddr], id dtab.Path) {
	_ = follow.Addresses(ctx, s.o.Interpreter, id, func(a naming.Addr) error {
		switch a.State {
		case naming.AddrBound:
			o.update(boundAddr(a), nil)
		case naming.AddrNeg:
			o.update(nil, nil)
		case naming.AddrFailed:
			err := a.Err
			if err == nil {
				err = errors.New("address resolution failed")
			}
			o.update(nil, err)
		}
		return nil
	})
}

// boundAddr converts an address set; addresses that are not IP literals
// are left out (namers publish IPs).
func boundAddr(a naming.Addr) *BoundAddr {
	out := &BoundAddr{Addresses: make([]TransportAddress, 0, len(a.Addrs)), Meta: addrMeta(a.Meta, 1)}
	for _, x := range a.Addrs {
		ip := net.ParseIP(x.Host)
		if ip == nil || x.Port < 0 || x.Port > 65535 {
			continue
		}
		if v4 := ip.To4(); v4 != nil {
			ip = v4
		}
		out.Addresses = append(out.Addresses, TransportAddress{IP: []byte(ip), Port: int32(x.Port), Meta: addrMeta(x.Meta, x.Weight)})
	}
	return out
}

// Metadata keys carried by AddrMeta.
const (
	MetaAuthority = "authority"
	MetaNodeName  = "nodeName"
)

func addrMeta(m map[string]any, weight float64) *AddrMeta {
	var out AddrMeta
	set := false
	if s, ok := m[MetaAuthority].(string); ok {
		out.Authority, set = &s, true
	}
	if s, ok := m[MetaNodeName].(string); ok {
		out.NodeName, set = &s, true
	}
	if weight > 0 && weight != 1 {
		out.Weight, set = &weight, true
	}
	if !set {
		return nil
	}
	return &out
}

func (s *Server) dtab(ctx context.Context, seq int32, req *DtabReq) ([]byte, error) {
	o := s.dtabs.get(req.Ns, func() *observer[string] {
		octx, cancel := context.WithCancel(s.ctx)
		o := newObserver(s.stamps, func(a, b string) bool { return a == b }, cancel)
		go s.runDtab(octx, o, req.Ns)
		return o
	})
	stamp, text, stateErr, err := o.wait(ctx, req.Stamp)
	if err != nil {
		return nil, err
	}
	if stateErr != nil {
		return encodeMessage(MethodDtab, thrift.REPLY, seq, 1, &DtabFailure{Reason: stateErr.Error()})
	}
	return encodeMessage(MethodDtab, thrift.REPLY, seq, 0, &DtabRef{Stamp: stamp, Dtab: text})
}

func (s *Server) runDtab(ctx context.Context, o *observer[string], ns string) {
	sig := follow.NewSignal()
	obs := &follow.Slot[watch.Activity[storage.Observation]]{}
	cancel := s.o.Store.Observe(ns).Subscribe(func(a watch.Activity[storage.Observation]) { obs.Set(a); sig.Poke() })
	defer cancel()
	for {
		select {
		case <-ctx.Done():
			return
		case <-sig:
		}
		a, _ := obs.Get()
		switch a.State {
		case watch.Failed:
			o.update("", fmt.Errorf("dtab namespace %q: %w", ns, a.Err))
		case watch.Ok:
			if a.Value == nil {
				o.update("", nil)
			} else {
				o.update(a.Value.Dtab.String(), nil)
			}
		}
	}
}
