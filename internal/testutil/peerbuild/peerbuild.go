// Package peerbuild waits for the binaries of a real peer (kube-apiserver,
// Consul) that `make test` builds in the background while the suite
// compiles: a test asks for them, and gets them as soon as the build has
// written them, or a clear failure — the build's own error, the command to
// start a build when none is running, or the wait's limit — never a silent
// skip.
package peerbuild

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Build describes one peer's background build.
type Build struct {
	// Dir holds the binaries and the build's log, build.log.
	Dir string
	// Names are the binaries to wait for, in Dir.
	Names []string
	// Failed is what the build writes to its log when it fails
	// ("k8s-apiserver: FAILED").
	Failed string
	// Script is the command that builds the peer, named when no build is
	// running.
	Script string
	// WaitEnv names the variable that overrides Wait (a Go duration).
	WaitEnv string
	// Wait bounds the wait for a build in progress.
	Wait time.Duration
}

// Await returns once every binary of b is in b.Dir, polling every
// interval; it fails when no build is running, when the build reports a
// failure, or after the wait.
func (b Build) Await(interval time.Duration) error {
	wait := b.Wait
	if v := os.Getenv(b.WaitEnv); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("%s=%q: %v", b.WaitEnv, v, err)
		}
		wait = d
	}
	deadline := time.Now().Add(wait)
	logPath := filepath.Join(b.Dir, "build.log")
	for {
		missing := ""
		for _, n := range b.Names {
			if _, err := os.Stat(filepath.Join(b.Dir, n)); err != nil {
				missing = n
				break
			}
		}
		if missing == "" {
			return nil
		}
		log, err := os.ReadFile(logPath)
		if err != nil {
			return fmt.Errorf("%s is missing and no build is running (no %s); run %s", filepath.Join(b.Dir, missing), logPath, b.Script)
		}
		if bytes.Contains(log, []byte(b.Failed)) {
			return fmt.Errorf("building %s failed; %s says:\n%s", missing, logPath, Tail(log, 2000))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not built after %v (%s); %s says:\n%s", missing, wait, b.WaitEnv, logPath, Tail(log, 2000))
		}
		time.Sleep(interval)
	}
}

// Tail returns the last n bytes of b, for quoting a log in an error.
func Tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
