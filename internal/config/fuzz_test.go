package config

import (
	"errors"
	"testing"
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
