package admin

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/pprof"
	"runtime"
	rpprof "runtime/pprof"
	"strconv"
	"strings"
)

// handleDiagnostics mounts the Go equivalents of TwitterServer's JVM
// diagnostic pages (headers-admin.md §5.1, optional rows): goroutines
// stand in for threads, the mutex profile for lock contention. All of
// them are in the Diagnostics security category.
func (s *Server) handleDiagnostics() {
	s.Handle("/admin/threads", http.HandlerFunc(threadsText))
	s.Handle("/admin/threads.json", http.HandlerFunc(threadsJSON))
	s.Handle("/admin/contention", http.HandlerFunc(contentionText))
	s.Handle("/admin/pprof/contention", http.HandlerFunc(contentionProfile))
	s.Handle("/admin/metrics/usage", http.HandlerFunc(usage))
}

// threadsText is /admin/threads: every goroutine with its full stack.
func threadsText(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_ = rpprof.Lookup("goroutine").WriteTo(w, 2)
}

// goroutineInfo is one entry of /admin/threads.json, shaped like
// TwitterServer's thread entries where a goroutine has an equivalent.
type goroutineInfo struct {
	Thread string   `json:"thread"`
	State  string   `json:"state"`
	Stack  []string `json:"stack"`
}

// threadsJSON is /admin/threads.json: {"threads": {"<id>": {...}}}.
func threadsJSON(w http.ResponseWriter, _ *http.Request) {
	var dump bytes.Buffer
	_ = rpprof.Lookup("goroutine").WriteTo(&dump, 2)
	writeAdminJSON(w, map[string]any{"threads": parseGoroutines(dump.Bytes())})
}

// parseGoroutines splits a debug=2 goroutine dump ("goroutine 7 [chan
// receive, 3 minutes]:" followed by function/file line pairs) into
// entries keyed by goroutine id.
func parseGoroutines(dump []byte) map[string]goroutineInfo {
	out := map[string]goroutineInfo{}
	var id string
	var cur goroutineInfo
	flush := func() {
		if id != "" {
			out[id] = cur
		}
		id, cur = "", goroutineInfo{}
	}
	sc := bufio.NewScanner(bytes.NewReader(dump))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "goroutine "); ok && strings.HasSuffix(line, ":") {
			flush()
			num, state, _ := strings.Cut(strings.TrimSuffix(rest, ":"), " ")
			id = num
			cur = goroutineInfo{Thread: "goroutine " + num, State: strings.Trim(state, "[]"), Stack: []string{}}
			continue
		}
		if id == "" || strings.TrimSpace(line) == "" || strings.HasPrefix(line, "\t") {
			// File:line lines belong to the function line above them.
			if id != "" && strings.HasPrefix(line, "\t") && len(cur.Stack) > 0 {
				cur.Stack[len(cur.Stack)-1] += " (" + strings.TrimSpace(line) + ")"
			}
			continue
		}
		cur.Stack = append(cur.Stack, line)
	}
	flush()
	return out
}

// contentionText is /admin/contention: where goroutines wait on locks,
// from the mutex profile (empty unless mutex profiling is enabled, e.g.
// for the seconds of an /admin/pprof/contention?seconds=N request).
func contentionText(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_ = rpprof.Lookup("mutex").WriteTo(w, 1)
}

// contentionProfile is /admin/pprof/contention: the mutex profile in
// pprof format. With seconds=N it is the contention seen during those N
// seconds, and mutex sampling is switched on for that window if it was
// off (it costs too much to leave on).
func contentionProfile(w http.ResponseWriter, r *http.Request) {
	if sec, err := strconv.Atoi(r.URL.Query().Get("seconds")); err == nil && sec > 0 {
		if runtime.SetMutexProfileFraction(-1) == 0 {
			runtime.SetMutexProfileFraction(contentionSampleRate)
			defer runtime.SetMutexProfileFraction(0)
		}
	}
	pprof.Handler("mutex").ServeHTTP(w, r)
}

// contentionSampleRate samples one in this many contention events while a
// contention profile is being taken.
const contentionSampleRate = 5

// usage is /admin/metrics/usage. Linkerd served the report it sent to
// Buoyant every hour; Linnet never reports anything anywhere, so the
// document is empty (config.md §3.2).
func usage(w http.ResponseWriter, _ *http.Request) {
	writeAdminJSON(w, map[string]any{})
}

// writeAdminJSON writes v as JSON without HTML escaping (dtabs contain
// "=>", which Linkerd's pages print as is).
func writeAdminJSON(w http.ResponseWriter, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		http.Error(w, "cannot render JSON: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(buf.Bytes())
}
