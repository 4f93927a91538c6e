// Package fs is the io.l5d.fs interpreter: the default interpreter with a
// dtab read from a file and reloaded whenever the file changes (Linkerd
// 1.x's FsInterpreterConfig):
//
//	interpreter:
//	  kind: io.l5d.fs
//	  dtabFile: /etc/linkerd/dtab
//
// The file's dtab comes before the router's `dtab:` (later dentries win,
// so the router's dtab and the request's l5d-dtab take precedence).
// The file's directory is watched, so atomic renames (write a temporary
// file, rename it over) and Kubernetes ConfigMap volume updates (a
// symlink swap of ..data) are seen as well as in-place writes. While the
// file does not exist the interpreter waits for it (bindings are pending,
// as in Linkerd); a file that cannot be parsed is logged and the last
// good dtab stays in force.
package fs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/linnet-mesh/linnet/internal/config"
	"github.com/linnet-mesh/linnet/internal/naming"
	"github.com/linnet-mesh/linnet/internal/naming/dtabsource"
)

// Kind is the interpreter kind.
const Kind = "io.l5d.fs"

// maxDtabFile bounds the file read (a dtab is a few kilobytes).
const maxDtabFile = 4 << 20

func init() {
	config.Register[naming.InterpreterConfig](Kind, func() naming.InterpreterConfig { return new(Config) })
}

// Config is the io.l5d.fs interpreter block.
type Config struct {
	// DtabFile is the file holding the dtab (relative paths are relative
	// to the working directory).
	DtabFile string `yaml:"dtabFile" config:"required"`
	// Transformers rewrite every bound tree, in order (config.md §4.7).
	Transformers []config.Kinded[naming.TransformerConfig] `yaml:"transformers"`
	// Experimental is accepted for compatibility.
	Experimental bool `yaml:"experimental"`
}

// Validate implements config.Validator.
func (c *Config) Validate() error {
	if strings.TrimSpace(c.DtabFile) == "" {
		return config.FieldError("dtabFile", "must name the file holding the dtab")
	}
	return nil
}

// NewInterpreter implements naming.InterpreterConfig.
func (c *Config) NewInterpreter(env naming.InterpreterEnv) (naming.Interpreter, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	live, err := Watch(env.Ctx, c.DtabFile, env.Logger)
	if err != nil {
		return nil, err
	}
	return dtabsource.NewFromEnv(env, c.Transformers, live, Kind, filepath.Base(c.DtabFile))
}

// settle is how long the watcher waits after a change before reading, so
// that a burst of events (truncate, write, chmod) is read once, whole.
const settle = 20 * time.Millisecond

// Watch follows file's dtab until ctx is done. It fails only when the
// file's directory cannot be watched.
func Watch(ctx context.Context, file string, logger *slog.Logger) (*dtabsource.Live, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	abs, err := filepath.Abs(file)
	if err != nil {
		return nil, fmt.Errorf("dtabFile %q: %w", file, err)
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("dtabFile %q: watching: %w", file, err)
	}
	// Watch the directory before the first read so no change is lost.
	if err := w.Add(filepath.Dir(abs)); err != nil {
		w.Close()
		return nil, fmt.Errorf("dtabFile %q: watching its directory: %w", file, err)
	}
	f := &follower{path: abs, live: dtabsource.NewLive("dtab file "+abs, logger), log: logger}
	f.read()
	go f.run(ctx, w)
	return f.live, nil
}

type follower struct {
	path string
	live *dtabsource.Live
	log  *slog.Logger
	last []byte // content last published (or rejected)
	seen bool
	// missing is set while the file does not exist (logged once).
	missing bool
	// emptied is set when the file was found empty once, to be confirmed.
	emptied bool
}

func (f *follower) run(ctx context.Context, w *fsnotify.Watcher) {
	defer w.Close()
	var timer *time.Timer
	var fire <-chan time.Time
	arm := func() {
		if timer == nil {
			timer = time.NewTimer(settle)
			fire = timer.C
		}
	}
	for {
		select {
		case <-ctx.Done():
			if timer != nil {
				timer.Stop()
			}
			return
		case _, ok := <-w.Events:
			if !ok {
				return
			}
			// Any change in the directory may be the file's (renames over
			// it, symlink swaps of the ..data directory): read it again.
			arm()
		case err, ok := <-w.Errors:
			if !ok {
				return
			}
			f.log.Warn("io.l5d.fs interpreter: watch error; re-reading", "dtabFile", f.path, "err", err)
			arm()
		case <-fire:
			timer, fire = nil, nil
			if f.read() {
				arm()
			}
		}
	}
}

// read reads the file and publishes it when its content changed. It
// returns true when it wants to read again after the settle time: a file
// that was just emptied may be in the middle of an in-place rewrite
// (truncate, then write), so an empty file replacing a non-empty one is
// only believed when it is still empty on the next read.
func (f *follower) read() (again bool) {
	b, err := readLimited(f.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if !f.missing {
			f.log.Warn("io.l5d.fs interpreter: dtab file does not exist; waiting for it", "dtabFile", f.path)
		}
		f.missing, f.seen, f.last = true, false, nil
		return false
	case err != nil:
		f.last = nil
		f.live.Fail(fmt.Errorf("dtab file %s: %w", f.path, err))
		return false
	}
	f.missing = false
	if f.seen && bytes.Equal(b, f.last) {
		return false
	}
	if len(bytes.TrimSpace(b)) == 0 && len(bytes.TrimSpace(f.last)) > 0 && !f.emptied {
		f.emptied = true
		return true
	}
	f.emptied = false
	f.seen, f.last = true, b
	_ = f.live.SetText(string(b)) // a parse error is logged by Live
	return false
}

func readLimited(path string) ([]byte, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	if st, err := fh.Stat(); err != nil {
		return nil, err
	} else if st.IsDir() {
		return nil, errors.New("is a directory")
	}
	b, err := io.ReadAll(io.LimitReader(fh, maxDtabFile+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxDtabFile {
		return nil, fmt.Errorf("larger than %d bytes", maxDtabFile)
	}
	return b, nil
}
