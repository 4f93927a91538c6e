package curator

import (
	"strings"
	"testing"
)

// curatorJSON is an instance as Curator's JsonInstanceSerializer writes it.
const curatorJSON = `{"name":"web","id":"0c5d0d8e-5f5e-4a51-9d8a-0e6c3c1f3b2a","address":"10.0.0.7","port":8080,"sslPort":null,` +
	`"payload":{"@class":"org.example.Details","zone":"a"},"registrationTimeUTC":1700000000000,"serviceType":"DYNAMIC",` +
	`"uriSpec":{"parts":[{"value":"scheme","variable":true},{"value":"://","variable":false},{"value":"address","variable":true}]}}`

func TestParseInstance(t *testing.T) {
	in, err := ParseInstance([]byte(curatorJSON))
	if err != nil {
		t.Fatal(err)
	}
	if in.Name != "web" || in.ID != "0c5d0d8e-5f5e-4a51-9d8a-0e6c3c1f3b2a" || in.Address != "10.0.0.7" || in.Port != 8080 || in.SSLPort != 0 || in.ServiceType != "DYNAMIC" {
		t.Fatalf("ParseInstance = %+v", in)
	}
	if p, ssl := in.Target(); p != 8080 || ssl {
		t.Errorf("Target() = %d, %v; want 8080, false", p, ssl)
	}
	for _, tc := range []struct {
		data     string
		port     int
		ssl      bool
		wantErr  string
		wantAddr string
	}{
		{`{"address":"10.0.0.1","port":80,"sslPort":443}`, 443, true, "", "10.0.0.1"},
		{`{"address":"10.0.0.1","sslPort":8443}`, 8443, true, "", "10.0.0.1"},
		{`{"address":" web-1.example ","port":"80"}`, 0, false, "port: \"80\" is not a TCP port", ""},
		{`{"address":"web-1.example","port":80,"serviceType":"PERMANENT"}`, 80, false, "", "web-1.example"},
		{`{"address":"::1","port":80,"serviceType":"STATIC","unknown":[1,2]}`, 80, false, "", "::1"},
		{`  {"address":"10.0.0.1","port":80}  `, 80, false, "", "10.0.0.1"},
		{``, 0, false, "not a JSON object", ""},
		{`[]`, 0, false, "not a JSON object", ""},
		{`{"address":"10.0.0.1","port":80`, 0, false, "not valid JSON", ""},
		{`{"port":80}`, 0, false, "address: required", ""},
		{`{"address":null,"port":80}`, 0, false, "address: required", ""},
		{`{"address":"  ","port":80}`, 0, false, "address: required", ""},
		{`{"address":7,"port":80}`, 0, false, "address: expected a string, got 7", ""},
		{`{"address":"a b","port":80}`, 0, false, `address: "a b" is not a host name or IP address`, ""},
		{`{"address":"http://x","port":80}`, 0, false, "is not a host name", ""},
		{`{"address":"10.0.0.1"}`, 0, false, "port: required (the instance has neither port nor sslPort)", ""},
		{`{"address":"10.0.0.1","port":null,"sslPort":null}`, 0, false, "neither port nor sslPort", ""},
		{`{"address":"10.0.0.1","port":0}`, 0, false, "port: 0 is not a TCP port (1-65535)", ""},
		{`{"address":"10.0.0.1","port":70000}`, 0, false, "port: 70000 is not a TCP port", ""},
		{`{"address":"10.0.0.1","port":80.5}`, 0, false, "port: 80.5 is not a TCP port", ""},
		{`{"address":"10.0.0.1","port":80,"sslPort":-1}`, 0, false, "sslPort: -1 is not a TCP port", ""},
		{`{"address":"10.0.0.1","port":80,"name":{}}`, 0, false, "name: expected a string, got {}", ""},
		{`{"address":"10.0.0.1","port":80,"serviceType":1}`, 0, false, "serviceType: expected a string", ""},
		{`{"address":"10.0.0.1","port":80,"id":["x"]}`, 0, false, "id: expected a string", ""},
		{"{\"address\":\"\xff\",\"port\":80}", 0, false, "not UTF-8", ""},
		{`{"address":"10.0.0.1","port":80,"payload":"` + strings.Repeat("x", MaxInstanceSize) + `"}`, 0, false, "more than", ""},
	} {
		in, err := ParseInstance([]byte(tc.data))
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ParseInstance(%.60q) = %+v, %v; want error %q", tc.data, in, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseInstance(%.60q): %v", tc.data, err)
			continue
		}
		if p, ssl := in.Target(); p != tc.port || ssl != tc.ssl || in.Address != tc.wantAddr {
			t.Errorf("ParseInstance(%.60q) = %+v (target %d %v); want %s:%d ssl=%v", tc.data, in, p, ssl, tc.wantAddr, tc.port, tc.ssl)
		}
	}
}

// FuzzParseInstance: never a panic; an accepted instance has an address
// and a target port in range.
func FuzzParseInstance(f *testing.F) {
	for _, s := range []string{
		curatorJSON,
		`{"address":"10.0.0.1","port":80,"sslPort":443}`,
		`{"address":"web","sslPort":8443,"serviceType":"STATIC"}`,
		`{"address":"10.0.0.1","port":null}`,
		`{"address":7}`,
		`{}`, `[]`, `null`, ``, `{"port":1e3,"address":"x"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		in, err := ParseInstance(data)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		p, _ := in.Target()
		if in.Address == "" || p < 1 || p > 65535 || strings.ContainsAny(in.Address, " /,") {
			t.Fatalf("accepted %q as %+v", data, in)
		}
	})
}
