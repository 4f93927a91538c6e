package namerd

import (
	"bytes"
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/linnet-mesh/linnet/internal/watch"
)

// signal is a coalescing wake-up: any number of pokes before the reader
// looks collapse into one.
type signal chan struct{}

func newSignal() signal { return make(signal, 1) }

func (s signal) poke() {
	select {
	case s <- struct{}{}:
	default:
	}
}

// latest keeps the most recent value pushed by a subscription and pokes a
// signal; the reader always sees the newest state, never a backlog.
type latest[T any] struct {
	mu  sync.Mutex
	v   T
	gen uint64 // bumped on every set
	sig signal
}

func (l *latest[T]) set(v T) {
	l.mu.Lock()
	l.v = v
	l.gen++
	l.mu.Unlock()
	l.sig.poke()
}

func (l *latest[T]) get() (T, uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.v, l.gen
}

// follow subscribes to v and returns the slot its values land in, and the
// cancel function.
func follow[T any](v watch.Value[T], sig signal) (*latest[T], func()) {
	l := &latest[T]{sig: sig}
	cancel := v.Subscribe(l.set)
	return l, cancel
}

// streamWriteTimeout bounds writing one document to a streaming client: a
// client that stops reading for that long is dropped instead of holding
// the handler (and its watches) forever.
const streamWriteTimeout = 30 * time.Second

// docWriter writes the documents of a response: one-shot, or a stream of
// newline-terminated documents with consecutive duplicates dropped.
type docWriter struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	started bool
	last    []byte
}

func newDocWriter(w http.ResponseWriter) *docWriter {
	return &docWriter{w: w, rc: http.NewResponseController(w)}
}

// start sends the status and headers of a stream right away (spec §4).
func (d *docWriter) start(contentType string) {
	if contentType != "" {
		d.w.Header().Set("Content-Type", contentType)
	}
	d.w.WriteHeader(http.StatusOK)
	d.started = true
	_ = d.rc.Flush()
}

// doc writes one document plus "\n" and flushes, unless it equals the
// previous one. The error is the client's: the stream should end.
func (d *docWriter) doc(b []byte) error {
	if d.last != nil && bytes.Equal(b, d.last) {
		return nil
	}
	d.last = append(d.last[:0], b...)
	_ = d.rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
	if _, err := d.w.Write(append(b, '\n')); err != nil {
		return err
	}
	return d.rc.Flush()
}

// fail ends a stream with the error text as its last line (spec §4).
func (d *docWriter) fail(err error) {
	_, _ = d.w.Write([]byte(err.Error() + "\n"))
	_ = d.rc.Flush()
}

// streamValue serves a watched value: each Ok state is rendered and written
// (duplicates dropped); Pending states are skipped; a Failed state ends the
// stream with its error. It returns when the client goes away.
func streamValue[T any](ctx context.Context, d *docWriter, v watch.Value[watch.Activity[T]], render func(T) ([]byte, bool)) {
	sig := newSignal()
	l, cancel := follow(v, sig)
	defer cancel()
	for {
		select {
		case <-ctx.Done():
			return
		case <-sig:
		}
		a, _ := l.get()
		switch a.State {
		case watch.Failed:
			d.fail(a.Err)
			return
		case watch.Ok:
			b, ok := render(a.Value)
			if !ok {
				continue
			}
			if err := d.doc(b); err != nil {
				return
			}
		}
	}
}
