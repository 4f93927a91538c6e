package accesslog

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// RollPolicy says when an access log file is rolled: Linkerd's
// httpAccessLogRollPolicy values "never", "hourly", "daily", "weekly(n)"
// (n = day of the week, 0 = Sunday) or a size such as "10.megabytes".
type RollPolicy struct {
	every   time.Duration // hourly/daily/weekly: roll when this period ends
	weekday time.Weekday  // weekly: the day a period starts
	weekly  bool
	size    int64 // roll before a write would exceed this many bytes
}

var (
	reWeekly = regexp.MustCompile(`^weekly\(([0-6])\)$`)
	// Twitter's StorageUnit form ("10.megabytes") and the short ones
	// ("10mb", "1.5 gb", "4096").
	reSize = regexp.MustCompile(`^([0-9]+(?:\.[0-9]+)?)\.?\s*(bytes?|kilobytes?|megabytes?|gigabytes?|b|kb|mb|gb)?$`)
)

// ParseRollPolicy parses a roll policy; "" means never.
func ParseRollPolicy(s string) (RollPolicy, error) {
	v := strings.ToLower(strings.TrimSpace(s))
	switch v {
	case "", "never":
		return RollPolicy{}, nil
	case "hourly":
		return RollPolicy{every: time.Hour}, nil
	case "daily":
		return RollPolicy{every: 24 * time.Hour}, nil
	}
	if m := reWeekly.FindStringSubmatch(v); m != nil {
		d, _ := strconv.Atoi(m[1])
		return RollPolicy{every: 7 * 24 * time.Hour, weekly: true, weekday: time.Weekday(d)}, nil
	}
	if m := reSize.FindStringSubmatch(v); m != nil {
		n, err := strconv.ParseFloat(m[1], 64)
		mult := 1.0
		if m[2] != "" {
			mult = map[byte]float64{'b': 1, 'k': 1 << 10, 'm': 1 << 20, 'g': 1 << 30}[m[2][0]]
		}
		// Out-of-range float→int conversion differs by platform: refuse
		// sizes past int64 before converting.
		if f := n * mult; err == nil && f >= 1 && f < 1<<63 {
			return RollPolicy{size: int64(f)}, nil
		}
	}
	return RollPolicy{}, fmt.Errorf("unknown roll policy %q (want never, hourly, daily, weekly(0-6) or a size like 10.megabytes)", s)
}

// periodStart returns the start of the period t falls in.
func (p RollPolicy) periodStart(t time.Time) time.Time {
	switch {
	case p.weekly:
		d := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, t.Location())
		back := (int(d.Weekday()) - int(p.weekday) + 7) % 7
		return d.AddDate(0, 0, -back)
	case p.every == 24*time.Hour:
		return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, t.Location())
	case p.every > 0:
		return t.Truncate(p.every)
	}
	return time.Time{}
}

// FileOptions configure OpenFile; they mirror a router's
// httpAccessLog{RollPolicy,Append,RotateCount} keys.
type FileOptions struct {
	Policy RollPolicy
	// Append keeps an existing file's content (Linkerd's default, true);
	// false truncates it on open.
	Append bool
	// RotateCount is how many rolled files to keep; -1 keeps all.
	RotateCount int
	// Now is the clock (tests); nil means time.Now.
	Now func() time.Time
}

// File is an access log file that rolls by its policy: the current file
// keeps its name; rolled ones get a ".<yyyyMMdd-HHmmss>" suffix.
type File struct {
	mu     sync.Mutex
	path   string
	opts   FileOptions
	f      *os.File
	size   int64
	period time.Time
}

// OpenFile opens (creating) the access log at path.
func OpenFile(path string, opts FileOptions) (*File, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	fl := &File{path: path, opts: opts}
	if err := fl.open(!opts.Append); err != nil {
		return nil, err
	}
	return fl, nil
}

func (fl *File) open(truncate bool) error {
	flags := os.O_CREATE | os.O_WRONLY | os.O_APPEND
	if truncate {
		flags |= os.O_TRUNC
	}
	f, err := os.OpenFile(fl.path, flags, 0o644)
	if err != nil {
		return fmt.Errorf("access log: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("access log: %w", err)
	}
	fl.f, fl.size = f, st.Size()
	fl.period = fl.opts.Policy.periodStart(fl.opts.Now())
	return nil
}

// Write appends one or more complete lines, rolling first if the policy
// says so.
func (fl *File) Write(p []byte) (int, error) {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	if fl.f == nil {
		return 0, os.ErrClosed
	}
	pol := fl.opts.Policy
	now := fl.opts.Now()
	if (pol.every > 0 && pol.periodStart(now).After(fl.period)) ||
		(pol.size > 0 && fl.size > 0 && fl.size+int64(len(p)) > pol.size) {
		if err := fl.roll(now); err != nil {
			return 0, err
		}
	}
	n, err := fl.f.Write(p)
	fl.size += int64(n)
	return n, err
}

func (fl *File) roll(now time.Time) error {
	if err := fl.f.Close(); err != nil {
		return fmt.Errorf("access log: %w", err)
	}
	fl.f = nil
	rolled := fl.path + "." + now.Format("20060102-150405")
	for i := 1; ; i++ { // two rolls within a second get distinct names
		if _, err := os.Stat(rolled); os.IsNotExist(err) {
			break
		}
		rolled = fl.path + "." + now.Format("20060102-150405") + "." + strconv.Itoa(i)
	}
	if err := os.Rename(fl.path, rolled); err != nil {
		return fmt.Errorf("access log: %w", err)
	}
	if err := fl.open(true); err != nil {
		return err
	}
	return fl.prune()
}

// prune removes the oldest rolled files beyond RotateCount.
func (fl *File) prune() error {
	if fl.opts.RotateCount < 0 {
		return nil
	}
	old, err := filepath.Glob(fl.path + ".2*")
	if err != nil {
		return err
	}
	sort.Strings(old) // the suffix sorts by time
	for len(old) > fl.opts.RotateCount {
		if err := os.Remove(old[0]); err != nil {
			return fmt.Errorf("access log: %w", err)
		}
		old = old[1:]
	}
	return nil
}

// Close closes the file.
func (fl *File) Close() error {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	if fl.f == nil {
		return nil
	}
	err := fl.f.Close()
	fl.f = nil
	return err
}

// Open opens the access log described by a router's keys
// (httpAccessLog, httpAccessLogRollPolicy, httpAccessLogAppend,
// httpAccessLogRotateCount; or the h2AccessLog* ones).
func Open(path, rollPolicy string, appendTo bool, rotateCount int) (*File, error) {
	pol, err := ParseRollPolicy(rollPolicy)
	if err != nil {
		return nil, err
	}
	return OpenFile(path, FileOptions{Policy: pol, Append: appendTo, RotateCount: rotateCount})
}
