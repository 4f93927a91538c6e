// Package logging builds the process's log/slog logger: the level from the
// -log.level flag (Linkerd / twitter-server level names accepted), text
// or JSON output, and an admin handler (/logging.json) to read and change
// the level at run time.
package logging

import (
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net/http"
	"strings"
)

// Extra levels for Linkerd's names outside slog's four.
const (
	LevelTrace    = slog.LevelDebug - 4 // TRACE, ALL
	LevelCritical = slog.LevelError + 4 // CRITICAL, FATAL
	LevelOff      = slog.Level(1 << 20) // OFF: nothing is logged
)

// ParseLevel parses a level name: the slog names (debug, info, warn,
// error) and Linkerd's (ALL, TRACE, DEBUG, INFO, WARNING, ERROR,
// CRITICAL, FATAL, OFF), case-insensitively.
func ParseLevel(s string) (slog.Level, error) {
	switch strings.ToUpper(strings.TrimSpace(s)) {
	case "ALL", "TRACE":
		return LevelTrace, nil
	case "DEBUG":
		return slog.LevelDebug, nil
	case "INFO", "":
		return slog.LevelInfo, nil
	case "WARN", "WARNING":
		return slog.LevelWarn, nil
	case "ERROR":
		return slog.LevelError, nil
	case "CRITICAL", "FATAL":
		return LevelCritical, nil
	case "OFF", "NONE":
		return LevelOff, nil
	}
	return 0, fmt.Errorf("unknown log level %q (want one of ALL, TRACE, DEBUG, INFO, WARNING, ERROR, CRITICAL, FATAL, OFF)", s)
}

// LevelName returns Linkerd's name of l.
func LevelName(l slog.Level) string {
	switch {
	case l >= LevelOff:
		return "OFF"
	case l >= LevelCritical:
		return "CRITICAL"
	case l >= slog.LevelError:
		return "ERROR"
	case l >= slog.LevelWarn:
		return "WARNING"
	case l >= slog.LevelInfo:
		return "INFO"
	case l >= slog.LevelDebug:
		return "DEBUG"
	}
	return "TRACE"
}

// Options configure New.
type Options struct {
	// Level is the minimum level; a *slog.LevelVar allows changing it at
	// run time (see Handler). Nil means INFO.
	Level slog.Leveler
	// JSON selects JSON lines instead of logfmt-style text.
	JSON bool
}

// New returns a logger writing to w.
func New(w io.Writer, opts Options) *slog.Logger {
	ho := &slog.HandlerOptions{Level: opts.Level, ReplaceAttr: levelNames}
	if opts.JSON {
		return slog.New(slog.NewJSONHandler(w, ho))
	}
	return slog.New(slog.NewTextHandler(w, ho))
}

// levelNames prints TRACE and CRITICAL rather than DEBUG-4 and ERROR+4.
func levelNames(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 && a.Key == slog.LevelKey {
		if l, ok := a.Value.Any().(slog.Level); ok && (l < slog.LevelDebug || l > slog.LevelError) {
			a.Value = slog.StringValue(LevelName(l))
		}
	}
	return a
}

// RootLogger is the name /logging.json gives the process's one logger
// (Linkerd's java.util.logging root logger has the empty name, shown as
// "root").
const RootLogger = "root"

// LoggerLevel is one entry of /logging.json, in Linkerd's shape.
type LoggerLevel struct {
	Logger string `json:"logger"`
	Level  string `json:"level"`
}

// Levels returns /logging.json's document: the one logger and its level.
func Levels(lv *slog.LevelVar) []LoggerLevel {
	return []LoggerLevel{{Logger: RootLogger, Level: LevelName(lv.Level())}}
}

// Handler serves /logging.json as Linkerd does. GET returns the loggers
// and their levels, [{"logger":"root","level":"INFO"}]. POST with form or
// query values level=<name> (and logger=root, which may be left out)
// changes the level and answers the new list. Linkerd answers 200 whatever
// the values; here an unknown level or logger is a 400 naming it, and the
// level is left unchanged.
func Handler(lv *slog.LevelVar) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet, http.MethodHead:
		case http.MethodPost:
			if name := r.FormValue("logger"); name != "" && name != RootLogger {
				http.Error(w, fmt.Sprintf("unknown logger %q (this process has one logger, %q)", name, RootLogger), http.StatusBadRequest)
				return
			}
			v := r.FormValue("level")
			if v == "" {
				http.Error(w, "missing parameter level (one of ALL, TRACE, DEBUG, INFO, WARNING, ERROR, CRITICAL, FATAL, OFF)", http.StatusBadRequest)
				return
			}
			l, err := ParseLevel(v)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			lv.Set(l)
		default:
			w.Header().Set("Allow", "GET, POST")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(Levels(lv))
	})
}

// PageHandler serves /logging: an HTML page listing the loggers and their
// levels, with a form per logger that posts to /logging.json. As in
// Linkerd, the list is also embedded as JSON in
// <script id="logger-data" type="application/json">.
func PageHandler(lv *slog.LevelVar) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		data, err := json.Marshal(Levels(lv))
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_ = pageTmpl.Execute(w, pageData{Loggers: Levels(lv), Names: levelNamesList, JSON: template.JS(data)})
	})
}

// levelNamesList is the choice offered by the /logging page, most verbose
// first.
var levelNamesList = []string{"ALL", "TRACE", "DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL", "OFF"}

type pageData struct {
	Loggers []LoggerLevel
	Names   []string
	JSON    template.JS
}

var pageTmpl = template.Must(template.New("logging").Parse(`<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>logging</title></head>
<body>
<h1>Logging</h1>
<table>
<thead><tr><th>Logger</th><th>Level</th><th>Change</th></tr></thead>
<tbody>
{{- range $l := .Loggers}}
<tr><td>{{$l.Logger}}</td><td>{{$l.Level}}</td><td>
<form method="post" action="logging.json"><input type="hidden" name="logger" value="{{$l.Logger}}">
<select name="level">{{range $.Names}}<option{{if eq . $l.Level}} selected{{end}}>{{.}}</option>{{end}}</select>
<button type="submit">set</button></form></td></tr>
{{- end}}
</tbody>
</table>
<script id="logger-data" type="application/json">{{.JSON}}</script>
</body></html>
`))

// LevelFlag adapts lv to a command-line flag (flag.Value and pflag.Value):
//
//	lv := new(slog.LevelVar)
//	cmd.Flags().Var(logging.LevelFlag{Var: lv}, "log.level", "log level (DEBUG, INFO, WARNING, ERROR, ...)")
type LevelFlag struct{ Var *slog.LevelVar }

// String implements flag.Value.
func (f LevelFlag) String() string {
	if f.Var == nil {
		return "INFO"
	}
	return LevelName(f.Var.Level())
}

// Set implements flag.Value.
func (f LevelFlag) Set(s string) error {
	l, err := ParseLevel(s)
	if err != nil {
		return err
	}
	f.Var.Set(l)
	return nil
}

// Type implements pflag.Value.
func (LevelFlag) Type() string { return "level" }
