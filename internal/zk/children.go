package zk

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// ChildrenWatch follows one znode's children and the data of each child,
// for a caller that turns them into an answer (the serversets and curator
// namers): every change of the set or of a child's data is published
// whole, and every break (a failed request, an ended watch, a lost
// connection) is reported while the caller keeps its last answer. The
// watch starts over after a break, pausing longer while ZooKeeper keeps
// failing (100ms doubling to 5s), and at once when the znode is created
// or deleted.
//
// Only Accept may be nil. The callbacks are called from Run's goroutine
// only, one at a time.
type ChildrenWatch[T any] struct {
	Client *Client
	Path   string

	// Accept picks the children to read; the others are ignored. Nil
	// accepts every child.
	Accept func(name string) bool
	// Parse turns a child's data into its value. An error leaves the child
	// out of the answer (it is not fatal) until its data changes.
	Parse func(ctx context.Context, name string, data []byte) (T, error)
	// Publish receives the answer: the usable children by name (a fresh
	// map the callee may keep), or nil when the znode does not exist.
	Publish func(children map[string]T)
	// LeftOut is told when a child is left out: each time its data is
	// read (after each change, and on each new pass) and does not parse.
	LeftOut func(name string, err error)
	// Fail is told of each break, and of the connection going down.
	Fail func(err error)
	// Reconnected is told when the connection is back up after Fail was
	// told it went down.
	Reconnected func()

	down bool // Fail was told the connection is down (Run's goroutine only)
}

// Run watches the znode until ctx ends.
func (w *ChildrenWatch[T]) Run(ctx context.Context) {
	const minPause, maxPause = 100 * time.Millisecond, 5 * time.Second
	pause := minPause
	for ctx.Err() == nil {
		synced, err := w.sync(ctx)
		if ctx.Err() != nil {
			return
		}
		if synced {
			pause = minPause
		}
		if err == nil {
			continue // the znode appeared or went: read it again now
		}
		w.Fail(err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(pause):
		}
		pause = min(2*pause, maxPause)
	}
}

// childEvent is a fired watch: of the znode's children (child == ""), or
// of one child's data, registered as generation gen.
type childEvent struct {
	child string
	gen   uint64
	ev    Event
}

// childSync is the state of one pass of sync.
type childSync[T any] struct {
	w      *ChildrenWatch[T]
	ctx    context.Context
	events chan childEvent
	gen    uint64
	gens   map[string]uint64 // live data watch of each child read
	values map[string]T
}

func (s *childSync[T]) forward(child string, gen uint64, w Watch) {
	go func() {
		select {
		case ev, ok := <-w:
			if !ok {
				return
			}
			select {
			case s.events <- childEvent{child, gen, ev}:
			case <-s.ctx.Done():
			}
		case <-s.ctx.Done():
		}
	}()
}

// sync reads the znode's children with watches and follows their events
// until the znode is created or deleted (nil error: start over), or a
// watch or request fails. synced reports whether an answer was published.
func (w *ChildrenWatch[T]) sync(ctx context.Context) (synced bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cli := w.Client
	s := &childSync[T]{w: w, ctx: ctx, events: make(chan childEvent, 16), gens: map[string]uint64{}, values: map[string]T{}}
	// Taken before anything is read, and re-armed before each read of the
	// connection state, so that no change of it is missed.
	changed := cli.Changed()
	names, cw, err := cli.ChildrenW(ctx, w.Path)
	if errors.Is(err, ErrNoNode) {
		exists, ew, err := cli.ExistsW(ctx, w.Path)
		if err != nil {
			return false, err
		}
		if exists {
			return true, nil
		}
		w.Publish(nil)
		return true, s.wait(ew)
	}
	if err != nil {
		return false, err
	}
	s.forward("", 0, cw)
	for _, name := range names {
		if err := s.read(name); err != nil {
			return false, err
		}
	}
	s.publish()
	for {
		var e childEvent
		select {
		case <-ctx.Done():
			return true, nil
		case <-changed:
			changed = cli.Changed()
			w.connectionChanged()
			continue
		case e = <-s.events:
		}
		if e.ev.Type == EventNotWatching {
			return true, fmt.Errorf("watch ended: %v", e.ev.Err)
		}
		if e.child == "" {
			if e.ev.Type == EventNodeDeleted {
				return true, nil
			}
			names, cw, err := cli.ChildrenW(ctx, w.Path)
			if errors.Is(err, ErrNoNode) {
				return true, nil
			}
			if err != nil {
				return true, err
			}
			s.forward("", 0, cw)
			for name := range s.gens {
				if !slices.Contains(names, name) {
					s.forget(name)
				}
			}
			for _, name := range names {
				if _, known := s.gens[name]; !known {
					if err := s.read(name); err != nil {
						return true, err
					}
				}
			}
			s.publish()
			continue
		}
		if s.gens[e.child] != e.gen {
			continue // a child this pass has forgotten
		}
		s.forget(e.child)
		if err := s.read(e.child); err != nil {
			return true, err
		}
		s.publish()
	}
}

// wait waits for the watch of a missing znode (or for ctx).
func (s *childSync[T]) wait(w Watch) error {
	changed := s.w.Client.Changed()
	for {
		select {
		case <-s.ctx.Done():
			return nil
		case <-changed:
			changed = s.w.Client.Changed()
			s.w.connectionChanged()
		case ev, ok := <-w:
			if ok && ev.Type == EventNotWatching {
				return fmt.Errorf("watch ended: %v", ev.Err)
			}
			return nil
		}
	}
}

// connectionChanged tells the caller the connection went down (a
// failure) or came back.
func (w *ChildrenWatch[T]) connectionChanged() {
	ok, why := w.Client.Status()
	if ok {
		if w.down {
			w.down = false
			w.Reconnected()
		}
		return
	}
	w.down = true
	w.Fail(fmt.Errorf("zookeeper %s: %s", w.Client.Servers(), why))
}

func (s *childSync[T]) forget(name string) {
	delete(s.gens, name)
	delete(s.values, name)
}

// read reads a child znode with a data watch. A child Accept refuses is
// ignored; one whose data does not parse is left out, not fatal.
func (s *childSync[T]) read(name string) error {
	if s.w.Accept != nil && !s.w.Accept(name) {
		return nil
	}
	n, w, err := s.w.Client.GetW(s.ctx, s.w.Path+"/"+name)
	if errors.Is(err, ErrNoNode) {
		return nil // gone already; the children watch tells
	}
	if err != nil {
		return err
	}
	s.gen++
	s.gens[name] = s.gen
	s.forward(name, s.gen, w)
	v, err := s.w.Parse(s.ctx, name, n.Data)
	if err != nil {
		s.w.LeftOut(name, err)
		return nil
	}
	s.values[name] = v
	return nil
}

func (s *childSync[T]) publish() {
	values := make(map[string]T, len(s.values))
	for k, v := range s.values {
		values[k] = v
	}
	s.w.Publish(values)
}
