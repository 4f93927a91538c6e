package config

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzLoad checks that no input makes Load panic or hang, and that every
// failure is a *Error.
func FuzzLoad(f *testing.F) {
	seeds := []string{
		"",
		"admin: {port: 9990}\nplugins:\n- kind: test.dns\n  refreshIntervalSeconds: 3\n",
		"plugins:\n- kind: test.fs\n  rootDir: disco\n  prefix: /x\n",
		"servers:\n- port: 1\n- port: 1\n",
		"servers: {ip: 0.0.0.0, port: 4140}\n",
		`{"admin": {"port": 1}, "plugins": [{"kind": "test.dns"}], "anything": [1, 2.5, "x", null, true]}`,
		"a: &a [1, 2]\nanything: [*a, *a]\n",
		"ptr: {<<: {port: 3}}\n",
		"labels: {a: b, a: c}\n",
		"one: null\nsmall: -1\nratio: 1e400\n",
		"admin: {port: '9990', secure: \"true\"}\nsmall: ' 255 '\nratio: \"0.5\"\n",
		"servers:\n- port: \"+4140\"\n- port: '010'\nptr: {port: \"-0\"}\n",
		"plugins:\n- kind: test.dns\n  refreshIntervalSeconds: '7'\n  experimental: 'True'\n",
		"admin: {port: \"\"}\nsmall: \"256\"\nratio: \"1e400\"\n",
		"admin: {port: '0x10', secure: 'TRUE'}\nratio: '.5e-3'\n",
		`{"admin": {"port": " 80 ", "secure": "False"}, "ratio": "5.", "small": "-1"}`,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, text []byte) {
		var r root
		err := Load(text, &r)
		if err == nil {
			return
		}
		var ce *Error
		if !errors.As(err, &ce) {
			t.Fatalf("error %T (%v) is not a *config.Error", err, err)
		}
		if err.Error() == "" {
			t.Fatal("empty error message")
		}
	})
}

// FuzzQuotedScalars checks the quoted-number rule against strconv: a quoted
// integer is accepted exactly when its trimmed text is an optionally signed
// run of ASCII digits, and then has the value base-10 parsing gives.
func FuzzQuotedScalars(f *testing.F) {
	for _, s := range []string{"10", " -10 ", "+5", "010", "-0", "1.0", "0x10", "1_0", "", "+", "9223372036854775808", "\t7\n", "１"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) {
			return // json.Marshal would replace the bad bytes
		}
		text, err := json.Marshal(map[string]string{"i64": s, "s": s})
		if err != nil {
			t.Fatal(err)
		}
		var got scalars
		err = Load(text, &got)
		if err == nil && got.S != s {
			t.Fatalf("string field: got %q, want %q", got.S, s)
		}
		trimmed := javaTrim(s)
		digits := strings.TrimPrefix(strings.TrimPrefix(trimmed, "+"), "-")
		wellFormed := digits != "" && len(trimmed)-len(digits) <= 1 && strings.Trim(digits, "0123456789") == ""
		want, perr := strconv.ParseInt(strings.TrimPrefix(trimmed, "+"), 10, 64)
		switch {
		case wellFormed && perr == nil:
			if err != nil || got.I64 != want {
				t.Fatalf("%q: got %d, %v; want %d", s, got.I64, err, want)
			}
		case err == nil:
			t.Fatalf("%q accepted as %d", s, got.I64)
		default:
			var ce *Error
			if !errors.As(err, &ce) || !strings.HasPrefix(err.Error(), "i64: ") {
				t.Fatalf("%q: error %v does not name the field", s, err)
			}
		}
	})
}
