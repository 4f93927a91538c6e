// Package dtabsource is the interpreter whose dtab comes from a live
// source (a file, a Kubernetes ConfigMap key, a Consul KV key) instead of
// only the router's `dtab:`: Linkerd 1.x's ConfiguredDtabNamer, behind the
// io.l5d.fs, io.l5d.k8s.configMap and io.l5d.consul.interpreter
// interpreter kinds.
//
// A source publishes into a Live: the text (or dtab) it read, or an error.
// Live keeps the last good dtab: a parse error or an unreachable source is
// logged and does not change routing. Before the first good value, Live
// is Pending (bindings wait, up to the router's bindingTimeoutMs); when the
// first value the source yields is unusable, Live is Failed with that
// error, so requests fail with it instead of timing out.
//
// Interpreter binds with the live dtab followed by the dtab the router
// passes (its `dtab:` plus the request's l5d-dtab), as Linkerd does
// (configured ++ local: later dentries win), through the default
// interpreter over the router's namers and transformers. A dtab change
// re-binds every watched binding once; an update whose content equals the
// current dtab changes nothing. While the new binding waits for a namer's
// first answer, the old one keeps serving, so a routed name never turns
// pending because the dtab changed.
package dtabsource

import (
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/watch"
)

// Live is the last good dtab of a live source. Its methods are safe for
// concurrent use.
type Live struct {
	what string // the source, for logs and errors ("dtab file /etc/l5d/dtab")
	log  *slog.Logger
	v    *watch.Var[watch.Activity[dtab.Dtab]]

	mu      sync.Mutex
	good    bool
	cur     dtab.Dtab
	lastErr error
	updates int
	changed time.Time
}

// NewLive returns a Pending Live for the source described by what.
func NewLive(what string, logger *slog.Logger) *Live {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Live{what: what, log: logger, v: watch.NewVar(watch.PendingActivity[dtab.Dtab]())}
}

// Value is the live dtab: Pending until the first value, then Ok (or
// Failed when the first value was unusable).
func (l *Live) Value() watch.Value[watch.Activity[dtab.Dtab]] { return l.v }

// SetText parses text (dtab syntax, as in a router's `dtab:`) and
// publishes it. A parse error is logged and returned; the last good dtab
// stays in force.
func (l *Live) SetText(text string) error {
	d, err := dtab.Parse(text)
	if err != nil {
		err = fmt.Errorf("%s: invalid dtab: %w", l.what, err)
		l.Fail(err)
		return err
	}
	l.Set(d)
	return nil
}

// Set publishes d (nil means the empty dtab). Publishing the dtab already
// in force does nothing.
func (l *Live) Set(d dtab.Dtab) {
	if d == nil {
		d = dtab.Dtab{}
	}
	l.mu.Lock()
	l.lastErr = nil
	if l.good && l.cur.Equal(d) {
		l.mu.Unlock()
		return
	}
	first := !l.good
	l.good, l.cur = true, d
	l.updates++
	l.changed = time.Now()
	// Set under mu so that concurrent publishers cannot reorder values.
	l.v.Set(watch.OkActivity(d))
	l.mu.Unlock()
	if first {
		l.log.Info("dtab loaded", "source", l.what, "dentries", len(d))
	} else {
		l.log.Info("dtab changed", "source", l.what, "dentries", len(d))
	}
}

// Fail reports that the source could not yield a dtab (unreadable,
// unparsable, unreachable). It is logged; the last good dtab stays in
// force. Before any good value, Live becomes Failed with err.
func (l *Live) Fail(err error) {
	l.mu.Lock()
	l.lastErr = err
	if !l.good {
		l.v.Set(watch.FailedActivity[dtab.Dtab](err))
	}
	good := l.good
	l.mu.Unlock()
	if good {
		l.log.Error("keeping the last good dtab", "source", l.what, "err", err)
	} else {
		l.log.Error("no dtab yet", "source", l.what, "err", err)
	}
}

// Current returns the dtab in force and whether there is one.
func (l *Live) Current() (dtab.Dtab, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.cur, l.good
}

// State is what the interpreter state admin page shows.
type State struct {
	Source string `json:"source"`
	// State is pending, ok or failed.
	State string `json:"state"`
	// Dtab is the dtab in force (absent before the first good value).
	Dtab *string `json:"dtab,omitempty"`
	// Updates counts the changes of the dtab in force.
	Updates int `json:"updates"`
	// Changed is when the dtab in force was published.
	Changed *time.Time `json:"changed,omitempty"`
	// Error is the source's latest error, while it lasts.
	Error string `json:"error,omitempty"`
}

// State returns a snapshot for the admin pages.
func (l *Live) State() any {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := State{Source: l.what, State: l.v.Get().State.String(), Updates: l.updates}
	if l.good {
		t, c := l.cur.String(), l.changed
		s.Dtab, s.Changed = &t, &c
	}
	if l.lastErr != nil {
		s.Error = l.lastErr.Error()
	}
	return s
}
