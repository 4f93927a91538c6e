package namerdtest

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/linnet-mesh/linnet/internal/config"
	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/naming"
	"github.com/linnet-mesh/linnet/internal/telemetry"
	"github.com/linnet-mesh/linnet/internal/watch"
)

// This file helps test the routers' namerd interpreters against a real
// namerd: watching what they bind, and changing what namerd sees.

// Recorder keeps the latest value of a subscription and lets a test wait
// for a condition on it.
type Recorder[T any] struct {
	mu sync.Mutex
	v  T
	ch chan struct{}
}

// Record subscribes to v until the test ends.
func Record[T any](t testing.TB, v watch.Value[T]) *Recorder[T] {
	r := &Recorder[T]{ch: make(chan struct{}, 1)}
	t.Cleanup(v.Subscribe(func(x T) {
		r.mu.Lock()
		r.v = x
		r.mu.Unlock()
		select {
		case r.ch <- struct{}{}:
		default:
		}
	}))
	return r
}

// Get returns the latest value.
func (r *Recorder[T]) Get() T {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.v
}

// Await waits up to d for ok to hold on the latest value, and returns it;
// the test fails (naming what) if it does not.
func (r *Recorder[T]) Await(t testing.TB, what string, d time.Duration, ok func(T) bool) T {
	t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		if v := r.Get(); ok(v) {
			return v
		}
		select {
		case <-r.ch:
		case <-deadline.C:
			t.Fatalf("%s: not within %v; last value %+v", what, d, r.Get())
		}
	}
}

// LeafID is the id of a binding that is one leaf, or "".
func LeafID(a watch.Activity[naming.BoundTree]) string {
	if a.State != watch.Ok || a.Value.Kind != dtab.Leaf || a.Value.Value == nil {
		return ""
	}
	return a.Value.Value.ID.String()
}

// WriteFile replaces a file of an io.l5d.fs namer's directory at once
// (written aside, then renamed), so that the namer never reads half of it.
func WriteFile(t testing.TB, dir, name, text string) {
	t.Helper()
	tmp := filepath.Join(dir, "."+name+".tmp")
	if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
}

// PutDtab replaces a namespace's dtab through the HTTP API of the namerd
// whose httpController listens on 127.0.0.1:port, as namerctl does.
func PutDtab(t testing.TB, port int, ns, text string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPut, fmt.Sprintf("http://127.0.0.1:%d/api/1/dtabs/%s", port, ns), strings.NewReader(text))
	req.Header.Set("Content-Type", "application/dtab")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("PUT dtab: %d %s", resp.StatusCode, b)
	}
}

// NewInterpreter builds an interpreter from the text of a router's
// `interpreter:` block (its keys, indented by two spaces), as a router
// does: it runs until ctx ends and reports its metrics to scope.
func NewInterpreter(t testing.TB, ctx context.Context, block string, scope telemetry.Scope) naming.Interpreter {
	t.Helper()
	var c struct {
		Interpreter config.Kinded[naming.InterpreterConfig] `yaml:"interpreter"`
	}
	if err := config.Load([]byte("interpreter:\n"+block), &c); err != nil {
		t.Fatal(err)
	}
	in, err := c.Interpreter.Value.NewInterpreter(naming.InterpreterEnv{Env: naming.Env{Ctx: ctx, Scope: scope}})
	if err != nil {
		t.Fatal(err)
	}
	return in
}
