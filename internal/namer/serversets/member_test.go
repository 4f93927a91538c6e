package serversets

import (
	"strings"
	"testing"
)

func TestParseMember(t *testing.T) {
	m, err := ParseMember([]byte(`{"serviceEndpoint":{"host":"10.0.0.1","port":8080},
		"additionalEndpoints":{"admin":{"host":"10.0.0.1","port":9990},"http":{"host":"web-1.example","port":80}},
		"status":"ALIVE","shard":3,"extra":{"ignored":true}}`))
	if err != nil {
		t.Fatal(err)
	}
	if m.ServiceEndpoint != (Endpoint{"10.0.0.1", 8080}) || m.Status != "ALIVE" || m.Shard == nil || *m.Shard != 3 {
		t.Fatalf("parsed %+v", m)
	}
	if e, ok := m.Endpoint("http"); !ok || e != (Endpoint{"web-1.example", 80}) {
		t.Fatalf("endpoint http: %+v %v", e, ok)
	}
	if _, ok := m.Endpoint("nope"); ok {
		t.Fatal("unknown endpoint found")
	}
	if m, err := ParseMember([]byte(`{"serviceEndpoint":{"host":"h","port":1}}`)); err != nil || m.Status != "" || m.Shard != nil {
		t.Fatalf("minimal member: %+v %v", m, err)
	}
	for _, tc := range []struct{ in, want string }{
		{``, "not a JSON object"},
		{`[]`, "not a JSON object"},
		{`{`, "not valid JSON"},
		{`{}`, "serviceEndpoint: required"},
		{`{"serviceEndpoint":null}`, "serviceEndpoint: required"},
		{`{"serviceEndpoint":{"port":1}}`, "serviceEndpoint.host: required"},
		{`{"serviceEndpoint":{"host":"","port":1}}`, "serviceEndpoint.host: required"},
		{`{"serviceEndpoint":{"host":"a b","port":1}}`, `serviceEndpoint.host: "a b" is not`},
		{`{"serviceEndpoint":{"host":"h"}}`, "serviceEndpoint.port: required"},
		{`{"serviceEndpoint":{"host":"h","port":0}}`, "serviceEndpoint.port: 0 is not a TCP port"},
		{`{"serviceEndpoint":{"host":"h","port":"80"}}`, `serviceEndpoint.port: "80" is not a TCP port`},
		{`{"serviceEndpoint":{"host":"h","port":80.5}}`, `serviceEndpoint.port: 80.5 is not a TCP port`},
		{`{"serviceEndpoint":{"host":7,"port":80}}`, `serviceEndpoint.host: expected a string`},
		{`{"serviceEndpoint":{"host":"h","port":80},"additionalEndpoints":{"admin":{"host":"h","port":70000}}}`, `additionalEndpoints."admin".port: 70000 is not a TCP port`},
		{`{"serviceEndpoint":{"host":"h","port":80},"additionalEndpoints":{"":{"host":"h","port":1}}}`, `additionalEndpoints."": empty endpoint name`},
		{`{"serviceEndpoint":{"host":"h","port":80},"additionalEndpoints":[]}`, `additionalEndpoints: expected an object`},
		{`{"serviceEndpoint":{"host":"h","port":80},"status":1}`, `status: expected a string`},
		{`{"serviceEndpoint":{"host":"h","port":80},"shard":"x"}`, `shard: "x" is not an integer`},
		{"{\"serviceEndpoint\":{\"host\":\"\xff\",\"port\":80}}", "not UTF-8"},
	} {
		_, err := ParseMember([]byte(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseMember(%s): %v, want an error containing %q", tc.in, err, tc.want)
		}
	}
}

func TestParseLeaderData(t *testing.T) {
	eps, err := ParseLeaderData([]byte("10.0.0.1:80, [::1]:81\n"))
	if err != nil || len(eps) != 2 || eps[0] != (Endpoint{"10.0.0.1", 80}) || eps[1] != (Endpoint{"::1", 81}) {
		t.Fatalf("%+v %v", eps, err)
	}
	for _, bad := range []string{"", "host", "host:0", "host:x", ":80"} {
		if _, err := ParseLeaderData([]byte(bad)); err == nil {
			t.Errorf("ParseLeaderData(%q) accepted", bad)
		}
	}
}

func TestMemberSeq(t *testing.T) {
	for name, want := range map[string]int64{"member_0000000042": 42, "member_1": 1} {
		if got, ok := memberSeq(name); !ok || got != want {
			t.Errorf("memberSeq(%q) = %d, %v", name, got, ok)
		}
	}
	for _, name := range []string{"member_", "member_x", "other_1", "member_-1", "lock"} {
		if _, ok := memberSeq(name); ok {
			t.Errorf("memberSeq(%q) accepted", name)
		}
	}
}

// FuzzParseMember: any data is either a member with a usable service
// endpoint or an error that names a field or the document; never a panic.
func FuzzParseMember(f *testing.F) {
	for _, s := range []string{
		`{"serviceEndpoint":{"host":"10.0.0.1","port":8080},"additionalEndpoints":{"admin":{"host":"10.0.0.1","port":9990}},"status":"ALIVE","shard":0}`,
		`{"serviceEndpoint":{"host":"h","port":1},"status":"DEAD"}`,
		`{"serviceEndpoint":{"host":"h","port":"1"}}`,
		`{"serviceEndpoint":null}`,
		`{"additionalEndpoints":{"":{}}}`,
		`{"serviceEndpoint":{"host":"h","port":1e3},"shard":null}`,
		`[1,2]`, `{`, ``, "\xff",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseMember(data)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		for name, e := range m.AdditionalEndpoints {
			if name == "" || e.Host == "" || e.Port < 1 || e.Port > 65535 {
				t.Fatalf("accepted additional endpoint %q: %+v", name, e)
			}
		}
		if m.ServiceEndpoint.Host == "" || m.ServiceEndpoint.Port < 1 || m.ServiceEndpoint.Port > 65535 {
			t.Fatalf("accepted service endpoint %+v from %q", m.ServiceEndpoint, data)
		}
	})
}
