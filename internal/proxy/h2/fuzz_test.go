package h2

import (
	"net/http"
	"strconv"
	"testing"
	"time"
)

// FuzzParseGRPCTimeout: a grpc-timeout value (1 to 8 ASCII digits and a
// unit) is accepted exactly when it has that form, and then decodes to a
// non-negative duration, saturating instead of overflowing.
func FuzzParseGRPCTimeout(f *testing.F) {
	for _, s := range []string{"1S", "100m", "99999999H", "99999999M", "5u", "0n", "", "S", "123456789S", "+5S", "-5S",
		" 5S", "5s", "1 S", "00000001H"} {
		f.Add(s)
	}
	units := map[byte]time.Duration{'H': time.Hour, 'M': time.Minute, 'S': time.Second, 'm': time.Millisecond,
		'u': time.Microsecond, 'n': time.Nanosecond}
	f.Fuzz(func(t *testing.T, v string) {
		d, ok := ParseGRPCTimeout(v)
		valid := len(v) >= 2 && len(v) <= 9 && units[v[len(v)-1]] != 0
		for i := 0; valid && i < len(v)-1; i++ {
			valid = v[i] >= '0' && v[i] <= '9'
		}
		if ok != valid {
			t.Fatalf("ParseGRPCTimeout(%q) ok = %v, want %v", v, ok, valid)
		}
		if !ok {
			return
		}
		if d < 0 {
			t.Fatalf("ParseGRPCTimeout(%q) = %v, negative", v, d)
		}
		n, _ := strconv.ParseInt(v[:len(v)-1], 10, 64)
		unit := units[v[len(v)-1]]
		if n <= int64(maxDuration/unit) && d != time.Duration(n)*unit {
			t.Fatalf("ParseGRPCTimeout(%q) = %v, want %v", v, d, time.Duration(n)*unit)
		}
	})
}

const maxDuration = time.Duration(1<<63 - 1)

// FuzzGRPCStatus: any grpc-status header value yields a known code or
// Unknown, never a panic, and a valid one is read as its number.
func FuzzGRPCStatus(f *testing.F) {
	for _, s := range []string{"0", "14", " 2 ", "-1", "abc", "", "99999999999999999999", "+3"} {
		f.Add(s, false)
	}
	f.Add("4", true)
	f.Fuzz(func(t *testing.T, v string, trailer bool) {
		resp := &http.Response{Header: http.Header{}, Trailer: http.Header{}}
		if trailer {
			resp.Trailer.Set(hdrGRPCStatus, v)
		} else {
			resp.Header.Set(hdrGRPCStatus, v)
		}
		code, ok := GRPCStatus(resp)
		if !ok {
			t.Fatalf("grpc-status %q: not found", v)
		}
		if code < 0 {
			t.Fatalf("grpc-status %q: code %d", v, code)
		}
		if n, err := strconv.Atoi(v); err == nil && n >= 0 && code != GRPCCode(n) {
			t.Fatalf("grpc-status %q: code %d", v, code)
		}
	})
}
