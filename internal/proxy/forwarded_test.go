package proxy

import (
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

func fwdRequest(remote, host, target string) *http.Request {
	u, err := url.ParseRequestURI(target)
	if err != nil {
		panic(err)
	}
	return &http.Request{RemoteAddr: remote, Host: host, URL: u, Header: http.Header{}}
}

func tcpAddr(s string) net.Addr {
	a, err := net.ResolveTCPAddr("tcp", s)
	if err != nil {
		panic(err)
	}
	return a
}

func TestForwardedElementGolden(t *testing.T) {
	ip := Labeler{Kind: LabelIP}
	ipPort := Labeler{Kind: LabelIPPort}
	for _, tc := range []struct {
		name   string
		f      Forwarded
		remote string
		local  net.Addr
		host   string
		target string
		scheme string
		want   string
	}{
		{"ipv4 ip", Forwarded{By: ip, For: ip}, "192.0.2.43:5555", tcpAddr("198.51.100.1:4140"), "web", "/a", "",
			"by=198.51.100.1;for=192.0.2.43;host=web"},
		{"ipv4 ip:port is quoted", Forwarded{By: ipPort, For: ipPort}, "192.0.2.43:5555", tcpAddr("198.51.100.1:4140"), "web", "/a", "",
			`by="198.51.100.1:4140";for="192.0.2.43:5555";host=web`},
		{"ipv6 ip is bracketed and quoted", Forwarded{By: ip, For: ip}, "[2001:db8:cafe::17]:5555", tcpAddr("[::1]:4140"), "web", "/", "",
			`by="[::1]";for="[2001:db8:cafe::17]";host=web`},
		{"ipv6 ip:port", Forwarded{By: ipPort, For: ipPort}, "[2001:db8:cafe::17]:5555", tcpAddr("[::1]:4140"), "", "/", "",
			`by="[::1]:4140";for="[2001:db8:cafe::17]:5555"`},
		{"ipv4-mapped ipv6 is ipv4", Forwarded{By: ip, For: ip}, "[::ffff:192.0.2.43]:1", tcpAddr("127.0.0.1:1"), "", "/", "",
			"by=127.0.0.1;for=192.0.2.43"},
		{"zone dropped", Forwarded{By: ip, For: ip}, "[fe80::1%eth0]:1", nil, "", "/", "",
			`by=unknown;for="[fe80::1]"`},
		{"unknown addresses", Forwarded{By: ipPort, For: ip}, "not-an-addr", nil, "", "/", "",
			"by=unknown;for=unknown"},
		{"unspecified", Forwarded{By: ip, For: ip}, "0.0.0.0:1", tcpAddr("[::]:1"), "", "/", "",
			"by=unknown;for=unknown"},
		{"static and host with port quoted", Forwarded{By: NewStaticLabeler("linkerd"), For: NewStaticLabeler("_edge")}, "192.0.2.1:1", nil, "web:8080", "/", "",
			`by=_linkerd;for=_edge;host="web:8080"`},
		{"absolute-form target gives proto", Forwarded{By: NewStaticLabeler("a"), For: ip}, "192.0.2.1:1", nil, "example.com", "http://example.com/x", "",
			"by=_a;for=192.0.2.1;host=example.com;proto=http"},
		{"conn scheme wins", Forwarded{By: NewStaticLabeler("a"), For: ip}, "192.0.2.1:1", nil, "example.com", "/x", "https",
			"by=_a;for=192.0.2.1;host=example.com;proto=https"},
		{"host with quote is escaped", Forwarded{By: NewStaticLabeler("a"), For: ip}, "192.0.2.1:1", nil, `a"b\c`, "/", "",
			`by=_a;for=192.0.2.1;host="a\"b\\c"`},
		{"router label that is not a token is quoted", Forwarded{By: NewStaticLabeler("my router"), For: ip}, "192.0.2.1:1", nil, "", "/", "",
			`by="_my router";for=192.0.2.1`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.f.Element(fwdRequest(tc.remote, tc.host, tc.target), Conn{Local: tc.local, Scheme: tc.scheme})
			if got != tc.want {
				t.Errorf("Element() = %s; want %s", got, tc.want)
			}
		})
	}
}

var obfuscated = regexp.MustCompile(`^by=(_[A-Za-z0-9]{6});for=(_[A-Za-z0-9]{6})$`)

func TestForwardedRandomLabels(t *testing.T) {
	req := Forwarded{By: Labeler{Kind: LabelRequestRandom}, For: Labeler{Kind: LabelRequestRandom}}
	conn := Forwarded{By: Labeler{Kind: LabelConnectionRandom}, For: Labeler{Kind: LabelConnectionRandom}}
	local := Conn{Local: tcpAddr("127.0.0.1:4140")}
	r1 := fwdRequest("192.0.2.1:1000", "", "/")
	r2 := fwdRequest("192.0.2.1:1001", "", "/")

	seen := map[string]bool{}
	for range 20 {
		m := obfuscated.FindStringSubmatch(req.Element(r1, local))
		if m == nil {
			t.Fatalf("requestRandom element %q is not two obfuscated labels", req.Element(r1, local))
		}
		seen[m[2]] = true
	}
	if len(seen) < 19 {
		t.Errorf("requestRandom gave %d distinct labels in 20 requests", len(seen))
	}

	a, b := conn.Element(r1, local), conn.Element(r1, local)
	if !obfuscated.MatchString(a) || a != b {
		t.Errorf("connectionRandom on one connection: %q then %q; want the same obfuscated labels", a, b)
	}
	if c := conn.Element(r2, local); c == a {
		t.Errorf("connectionRandom on two connections gave the same element %q", c)
	}
	if strings.Contains(a, "192") || strings.Contains(a, "1000") {
		t.Errorf("connectionRandom label %q leaks the address", a)
	}
}

func TestServerEdgeApply(t *testing.T) {
	e := &ServerEdge{
		Forwarded:       &Forwarded{By: NewStaticLabeler("l5d"), For: Labeler{Kind: LabelIP}},
		TimestampHeader: "x-request-start",
	}
	r := fwdRequest("192.0.2.1:1", "web", "/")
	hdr := http.Header{"Forwarded": {"for=_earlier"}}
	e.Apply(hdr, r, Conn{}, time.UnixMilli(1700000000123))
	if got := hdr["Forwarded"]; len(got) != 2 || got[0] != "for=_earlier" || got[1] != "by=_l5d;for=192.0.2.1;host=web" {
		t.Errorf("Forwarded = %q; want the earlier element kept and ours appended", got)
	}
	if got := hdr["X-Request-Start"]; len(got) != 1 || got[0] != "1700000000123" {
		t.Errorf("X-Request-Start = %q; want epoch milliseconds 1700000000123", got)
	}
}

func TestServerEdgeStripsForgedClientCert(t *testing.T) {
	e := &ServerEdge{ForwardClientCert: true}
	hdr := http.Header{HeaderForwardedClientCert: {"Hash=FORGED"}}
	e.Apply(hdr, fwdRequest("192.0.2.1:1", "", "/"), Conn{}, time.Now())
	if v, ok := hdr[HeaderForwardedClientCert]; ok {
		t.Errorf("x-forwarded-client-cert = %q on a connection without a client certificate; want it removed", v)
	}
	hdr = http.Header{HeaderForwardedClientCert: {"Hash=FORGED"}}
	e.Apply(hdr, fwdRequest("192.0.2.1:1", "", "/"), Conn{PeerCertDER: []byte("not a certificate")}, time.Now())
	if v, ok := hdr[HeaderForwardedClientCert]; ok {
		t.Errorf("x-forwarded-client-cert = %q for an unparseable certificate; want it removed", v)
	}
}

func TestServerEdgeApplyOffKeepsHeaders(t *testing.T) {
	var e ServerEdge
	hdr := http.Header{HeaderForwardedClientCert: {"from the app"}}
	e.Apply(hdr, fwdRequest("192.0.2.1:1", "", "/"), Conn{}, time.Now())
	if len(hdr) != 1 || hdr[HeaderForwardedClientCert][0] != "from the app" {
		t.Errorf("a zero ServerEdge changed the headers: %v", hdr)
	}
}

func BenchmarkForwardedElement(b *testing.B) {
	f := Forwarded{By: Labeler{Kind: LabelIPPort}, For: Labeler{Kind: LabelRequestRandom}}
	r := fwdRequest("192.0.2.43:5555", "web", "/a")
	c := Conn{Local: tcpAddr("198.51.100.1:4140")}
	b.ReportAllocs()
	for b.Loop() {
		_ = f.Element(r, c)
	}
}
