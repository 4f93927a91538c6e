package fs

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/naming"
	"github.com/linnet-mesh/linnet/internal/watch"
)

// Option configures New.
type Option func(*Namer)

// WithPrefix sets the path bound ids start with (default /#/io.l5d.fs).
func WithPrefix(p dtab.Path) Option { return func(n *Namer) { n.prefix = p } }

// WithSettle sets how long the namer waits after a file-system event for
// more events before it rescans (default 20ms).
func WithSettle(d time.Duration) Option { return func(n *Namer) { n.settle = d } }

// Resolver resolves host names found in files.
type Resolver func(ctx context.Context, host string) ([]netip.Addr, error)

// WithResolver replaces the DNS resolver (default net.DefaultResolver).
func WithResolver(r Resolver) Option { return func(n *Namer) { n.resolve = r } }

// Namer is the io.l5d.fs namer. It is safe for concurrent use; Close (or
// cancelling the Env's context) stops the watch.
type Namer struct {
	root    string
	prefix  dtab.Path
	settle  time.Duration
	resolve Resolver
	logger  *slog.Logger
	cancel  context.CancelFunc
	done    chan struct{}
	watcher *fsnotify.Watcher

	mu      sync.Mutex
	files   map[string]*file // by slash-separated path below root
	dirs    map[string]bool  // sub-directories (and "" for root)
	lookups map[string]*lookup
	names   *watch.Var[[]dtab.Path]
}

// file is one name: its parsed content and the address Var every bound
// name of it shares.
type file struct {
	content []byte
	err     error // parse/resolve error: lookups of this name fail
	addr    *watch.Var[naming.Addr]
	bound   map[string]*naming.Bound // by printed residual
}

type lookup struct {
	path dtab.Path
	sig  string // what the current answer is, to publish changes only
	v    *watch.Var[watch.Activity[dtab.Tree[naming.Name]]]
}

// New returns a namer over the files of rootDir (relative to the working
// directory). rootDir must be a directory. The watch runs until env.Ctx is
// cancelled or Close is called.
func New(rootDir string, env naming.Env, opts ...Option) (*Namer, error) {
	abs, err := filepath.Abs(rootDir)
	if err != nil {
		return nil, fmt.Errorf("io.l5d.fs: rootDir %q: %w", rootDir, err)
	}
	st, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("io.l5d.fs: rootDir %q: %w", rootDir, err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("io.l5d.fs: rootDir %q is not a directory", rootDir)
	}
	n := &Namer{
		root:    abs,
		prefix:  dtab.Path{"#", Kind},
		settle:  20 * time.Millisecond,
		resolve: defaultResolve,
		logger:  env.Logger,
		done:    make(chan struct{}),
		files:   map[string]*file{},
		dirs:    map[string]bool{},
		lookups: map[string]*lookup{},
		names:   watch.NewVar[[]dtab.Path](nil),
	}
	for _, o := range opts {
		o(n)
	}
	if n.logger == nil {
		n.logger = slog.New(slog.DiscardHandler)
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("io.l5d.fs: watching %q: %w", rootDir, err)
	}
	n.watcher = w
	ctx := env.Ctx
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, n.cancel = context.WithCancel(ctx)
	// Watch before the first scan so no change between the two is lost.
	if err := w.Add(abs); err != nil {
		w.Close()
		n.cancel()
		return nil, fmt.Errorf("io.l5d.fs: watching %q: %w", rootDir, err)
	}
	n.rescan(ctx)
	go n.run(ctx)
	return n, nil
}

// Close stops the watch and waits for it to end. Lookups keep their last
// answers.
func (n *Namer) Close() error {
	n.cancel()
	<-n.done
	return nil
}

func defaultResolve(ctx context.Context, host string) ([]netip.Addr, error) {
	return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
}

func (n *Namer) run(ctx context.Context) {
	defer close(n.done)
	defer n.watcher.Close()
	var timer *time.Timer
	var fire <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			if timer != nil {
				timer.Stop()
			}
			return
		case ev, ok := <-n.watcher.Events:
			if !ok {
				return
			}
			if ev.Op&fsnotify.Create != 0 {
				// A new sub-directory must be watched at once, before files
				// appear in it.
				if st, err := os.Stat(ev.Name); err == nil && st.IsDir() && !hidden(filepath.Base(ev.Name)) {
					n.addWatch(ev.Name)
				}
			}
			if timer == nil {
				timer = time.NewTimer(n.settle)
				fire = timer.C
			}
		case err, ok := <-n.watcher.Errors:
			if !ok {
				return
			}
			n.logger.Warn("io.l5d.fs: watch error; rescanning", "rootDir", n.root, "err", err)
			if timer == nil {
				timer = time.NewTimer(n.settle)
				fire = timer.C
			}
		case <-fire:
			timer, fire = nil, nil
			n.rescan(ctx)
		}
	}
}

func (n *Namer) addWatch(dir string) {
	if err := n.watcher.Add(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		n.logger.Warn("io.l5d.fs: cannot watch directory", "dir", dir, "err", err)
	}
}

// hidden reports whether a directory entry is not a name.
func hidden(name string) bool {
	return strings.HasPrefix(name, ".") || strings.HasSuffix(name, "~")
}

// scanned is what one walk of the tree found.
type scanned struct {
	files map[string][]byte
	dirs  map[string]bool
}

// walk reads the tree below root, following symlinks (ConfigMap volumes
// are symlinks into ..data), to a bounded depth.
func (n *Namer) walk() scanned {
	s := scanned{files: map[string][]byte{}, dirs: map[string]bool{"": true}}
	var visit func(rel string, depth int)
	visit = func(rel string, depth int) {
		if depth > 16 {
			return
		}
		dir := filepath.Join(n.root, filepath.FromSlash(rel))
		entries, err := os.ReadDir(dir)
		if err != nil {
			return
		}
		for _, e := range entries {
			if hidden(e.Name()) {
				continue
			}
			child := e.Name()
			if rel != "" {
				child = rel + "/" + e.Name()
			}
			full := filepath.Join(dir, e.Name())
			st, err := os.Stat(full) // follows symlinks
			if err != nil {
				continue // dangling symlink, or removed meanwhile
			}
			switch {
			case st.IsDir():
				s.dirs[child] = true
				visit(child, depth+1)
			case st.Mode().IsRegular():
				b, err := os.ReadFile(full)
				if err != nil {
					continue
				}
				s.files[child] = b
			}
		}
	}
	visit("", 0)
	return s
}

// rescan brings the namer up to date with the directory and publishes what
// changed.
func (n *Namer) rescan(ctx context.Context) {
	s := n.walk()
	// Parse changed files outside the lock (resolving may take time).
	n.mu.Lock()
	old := make(map[string][]byte, len(n.files))
	for k, f := range n.files {
		old[k] = f.content
	}
	n.mu.Unlock()
	type parsed struct {
		addrs []naming.Address
		err   error
	}
	results := map[string]parsed{}
	for rel, b := range s.files {
		if prev, ok := old[rel]; ok && bytes.Equal(prev, b) {
			continue
		}
		addrs, err := n.parse(ctx, rel, b)
		results[rel] = parsed{addrs, err}
	}

	var addrSets []func()
	n.mu.Lock()
	for dir := range s.dirs {
		if dir != "" && !n.dirs[dir] {
			n.addWatch(filepath.Join(n.root, filepath.FromSlash(dir)))
		}
	}
	n.dirs = s.dirs
	for rel := range n.files {
		if _, ok := s.files[rel]; !ok {
			delete(n.files, rel) // its lookups turn negative below
		}
	}
	for rel, p := range results {
		f := n.files[rel]
		if f == nil {
			f = &file{addr: watch.NewVar(naming.Addr{State: naming.AddrPending}), bound: map[string]*naming.Bound{}}
			n.files[rel] = f
		}
		f.content = s.files[rel]
		f.err = p.err
		if p.err == nil {
			a := naming.Addr{State: naming.AddrBound, Addrs: p.addrs}
			v := f.addr
			if !naming.AddrEqual(v.Get(), a) {
				addrSets = append(addrSets, func() { v.Set(a) })
			}
		}
	}
	var lookupSets []func()
	for _, l := range n.lookups {
		ans, sig := n.answerLocked(l.path)
		if sig != l.sig {
			l.sig = sig
			v := l.v
			lookupSets = append(lookupSets, func() { v.Set(ans) })
		}
	}
	names := make([]dtab.Path, 0, len(n.files))
	for rel := range n.files {
		names = append(names, dtab.Path(strings.Split(rel, "/")))
	}
	n.mu.Unlock()
	slices.SortFunc(names, func(a, b dtab.Path) int { return slices.Compare(a, b) })
	// Publish outside the lock: subscribers may look up again. Addresses
	// first, so a name that turns bound is bound to its current set.
	for _, f := range addrSets {
		f()
	}
	for _, f := range lookupSets {
		f()
	}
	if !slices.EqualFunc(names, n.names.Get(), func(a, b dtab.Path) bool { return slices.Equal(a, b) }) {
		n.names.Set(names)
	}
}

// BoundNames lists the names the directory holds (ids relative to the
// mount prefix, sorted), for namerd's /api/1/bound-names. Files that fail
// to parse are listed: they exist, their lookups fail.
func (n *Namer) BoundNames() watch.Value[[]dtab.Path] { return n.names }

// Lookup implements naming.Namer: path is below the mount prefix.
func (n *Namer) Lookup(path dtab.Path) naming.Lookup {
	key := path.String()
	n.mu.Lock()
	defer n.mu.Unlock()
	l := n.lookups[key]
	if l == nil {
		ans, sig := n.answerLocked(path)
		l = &lookup{path: path, sig: sig, v: watch.NewVar(ans)}
		n.lookups[key] = l
	}
	return l.v
}

// answerLocked computes the answer for path and a signature of it.
func (n *Namer) answerLocked(path dtab.Path) (watch.Activity[dtab.Tree[naming.Name]], string) {
	rel := ""
	for i, elem := range path {
		if elem == "" || hidden(elem) || strings.ContainsAny(elem, `/\`) || elem == ".." {
			break
		}
		if rel == "" {
			rel = elem
		} else {
			rel += "/" + elem
		}
		if f, ok := n.files[rel]; ok {
			if f.err != nil {
				return watch.FailedActivity[dtab.Tree[naming.Name]](f.err), "fail:" + rel + ":" + f.err.Error()
			}
			residual := path[i+1:]
			rkey := residual.String()
			b := f.bound[rkey]
			if b == nil {
				id := slices.Concat(n.prefix, path[:i+1])
				b = &naming.Bound{ID: id, Residual: slices.Clone(residual), Addr: f.addr}
				f.bound[rkey] = b
			}
			return watch.OkActivity(dtab.LeafTree(naming.Name{Bound: b})), "leaf:" + rel + ":" + rkey
		}
		if !n.dirs[rel] {
			break
		}
	}
	return watch.OkActivity(dtab.NegTree[naming.Name]()), "neg"
}

// parse reads one file's addresses. Any malformed line fails the name.
func (n *Namer) parse(ctx context.Context, rel string, b []byte) ([]naming.Address, error) {
	var addrs []naming.Address
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	file := filepath.Join(n.root, filepath.FromSlash(rel))
	for line := 1; sc.Scan(); line++ {
		text := sc.Text()
		body := text
		if i := strings.IndexByte(body, '#'); i >= 0 {
			body = body[:i]
		}
		fields := strings.Fields(body)
		if len(fields) == 0 {
			continue
		}
		bad := func(why string) error {
			return fmt.Errorf("io.l5d.fs: %s line %d: %q: %s", file, line, strings.TrimSpace(text), why)
		}
		if len(fields) != 2 && !(len(fields) == 4 && fields[2] == "*") {
			return nil, bad(`want "host port" or "host port * weight"`)
		}
		port, err := strconv.Atoi(fields[1])
		if err != nil || port < 1 || port > 65535 {
			return nil, bad(fmt.Sprintf("port %q is not a number from 1 to 65535", fields[1]))
		}
		weight := 1.0
		if len(fields) == 4 {
			weight, err = strconv.ParseFloat(fields[3], 64)
			if err != nil || !(weight >= 0) || weight > 1e9 {
				return nil, bad(fmt.Sprintf("weight %q is not a non-negative number", fields[3]))
			}
		}
		ips, err := n.hostIPs(ctx, fields[0])
		if err != nil {
			return nil, bad(err.Error())
		}
		for _, ip := range ips {
			addrs = append(addrs, naming.Address{Host: ip.String(), Port: port, Weight: weight})
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("io.l5d.fs: %s: %w", file, err)
	}
	slices.SortStableFunc(addrs, func(a, b naming.Address) int {
		if c := strings.Compare(a.Host, b.Host); c != 0 {
			return c
		}
		return a.Port - b.Port
	})
	return slices.CompactFunc(addrs, func(a, b naming.Address) bool { return a.Host == b.Host && a.Port == b.Port }), nil
}

// hostIPs returns the addresses of a host: a literal (including the IPv4
// shorthands 127.1 and friends that Java accepts), or a DNS name.
func (n *Namer) hostIPs(ctx context.Context, host string) ([]netip.Addr, error) {
	if ip, ok := literalIP(host); ok {
		return []netip.Addr{ip}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	ips, err := n.resolve(ctx, host)
	if err != nil {
		return nil, fmt.Errorf("cannot resolve host %q: %v", host, err)
	}
	if len(ips) == 0 {
		return nil, fmt.Errorf("host %q has no addresses", host)
	}
	out := make([]netip.Addr, len(ips))
	for i, ip := range ips {
		out[i] = ip.Unmap()
	}
	return out, nil
}

// literalIP parses IPv6 literals (optionally in brackets) and IPv4 in the
// forms a.b.c.d, a.b.c, a.b and a (all decimal), as Java's InetAddress does.
func literalIP(host string) (netip.Addr, bool) {
	if strings.Contains(host, ":") {
		ip, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"))
		return ip, err == nil
	}
	parts := strings.Split(host, ".")
	if len(parts) > 4 {
		return netip.Addr{}, false
	}
	var vals []uint64
	for _, p := range parts {
		if p == "" || len(p) > 10 {
			return netip.Addr{}, false
		}
		v, err := strconv.ParseUint(p, 10, 64)
		if err != nil {
			return netip.Addr{}, false
		}
		vals = append(vals, v)
	}
	last := len(vals) - 1
	var v uint64
	for _, x := range vals[:last] {
		if x > 255 {
			return netip.Addr{}, false
		}
		v = v<<8 | x
	}
	rem := uint(4 - last)
	if vals[last] >= 1<<(8*rem) {
		return netip.Addr{}, false
	}
	v = v<<(8*rem) | vals[last]
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), true
}
