package cli

import (
	"fmt"
	"math"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
)

// The soft memory limit of long-running commands (router, namerd).
//
// By default a process inside a memory-limited cgroup sets the Go
// runtime's soft limit to 90% of the cgroup's limit, so that the garbage
// collector works harder before the kernel's OOM killer would act, instead
// of letting the heap double (GOGC=100) into the cgroup's wall. Outside a
// cgroup limit, or when GOMEMLIMIT is set, the runtime's own setting is
// kept. -memory.limit overrides both. A limit far below the live heap
// makes the collector run continuously: measured on the proxy benchmark,
// 6MiB halved the request rate for 4 MB less RSS (docs/performance.md).

// memoryLimitFraction is the share of a cgroup limit given to Go's heap,
// stacks and runtime; the rest is left to the binary's own pages and the
// kernel's socket buffers charged to the cgroup.
const memoryLimitFraction = 0.9

// parseMemoryLimit parses a -memory.limit value: "off" (or 0) for no
// limit, or a size in bytes with an optional unit (KiB, MiB, GiB, KB, MB,
// GB). It returns math.MaxInt64 for no limit.
func parseMemoryLimit(v string) (int64, error) {
	s := strings.TrimSpace(v)
	if s == "off" || s == "0" {
		return math.MaxInt64, nil
	}
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1}}
	mult := int64(1)
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 || n > math.MaxInt64/mult {
		return 0, fmt.Errorf("-memory.limit=%s: want off or a size like 256MiB (units KiB, MiB, GiB, KB, MB, GB)", v)
	}
	return n * mult, nil
}

// cgroupMemoryLimit returns the memory limit of the process's cgroup
// (v2 memory.max, else v1 memory.limit_in_bytes), or 0 when there is none.
func cgroupMemoryLimit() int64 {
	for _, p := range []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		s := strings.TrimSpace(string(b))
		if s == "max" {
			return 0
		}
		n, err := strconv.ParseInt(s, 10, 64)
		// cgroup v1 reports "no limit" as a huge page-rounded number.
		if err != nil || n <= 0 || n >= 1<<62 {
			return 0
		}
		return n
	}
	return 0
}

// applyMemoryLimit sets the soft memory limit from the flag value (empty:
// the default described above) and describes what it did, for the log.
func applyMemoryLimit(flag string) (string, error) {
	if flag != "" {
		n, err := parseMemoryLimit(flag)
		if err != nil {
			return "", err
		}
		debug.SetMemoryLimit(n)
		if n == math.MaxInt64 {
			return "off (-memory.limit)", nil
		}
		return strconv.FormatInt(n, 10) + " bytes (-memory.limit)", nil
	}
	if os.Getenv("GOMEMLIMIT") != "" {
		return "GOMEMLIMIT=" + os.Getenv("GOMEMLIMIT"), nil
	}
	if c := cgroupMemoryLimit(); c > 0 {
		n := int64(float64(c) * memoryLimitFraction)
		debug.SetMemoryLimit(n)
		return fmt.Sprintf("%d bytes (90%% of the cgroup's %d)", n, c), nil
	}
	return "off", nil
}
