package routerd

import (
	"slices"
	"strings"
	"testing"

	"github.com/linnet-mesh/linnet/internal/config"
	"github.com/linnet-mesh/linnet/internal/proxy"
)

func TestEdgeHeaderConfigErrors(t *testing.T) {
	const http = "routers:\n- protocol: http\n  servers:\n  - port: 4140\n"
	for _, tt := range []struct{ name, text, want string }{
		{"bad timestamp header", http + "    timestampHeader: \"x request start\"\n",
			`routers[0].servers[0].timestampHeader: "x request start" is not a valid header name (byte 1)`},
		{"labeler kind", http + "    addForwardedHeader: {by: {kind: ipPort}}\n",
			`routers[0].servers[0].addForwardedHeader.by.kind: unknown labeler kind "ipPort"`},
		{"static label chars", http + "    addForwardedHeader: {for: {kind: static, label: \"my proxy\"}}\n",
			`routers[0].servers[0].addForwardedHeader.for.label: "my proxy" is not a valid obfuscated identifier`},
		{"static without label", http + "    addForwardedHeader: {for: {kind: static}}\n",
			"routers[0].servers[0].addForwardedHeader.for.label: a static labeler needs `label`"},
		{"timestamp on h2", "routers:\n- protocol: h2\n  servers:\n  - timestampHeader: x\n",
			"routers[0].servers[0].timestampHeader: `timestampHeader` applies to servers of protocol http routers, not h2"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadConfig([]byte(tt.text))
			if err == nil {
				t.Fatalf("loaded; want error %q", tt.want)
			}
			if got := config.AsErrors(err)[0].Error(); !strings.HasPrefix(got, tt.want) {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestEdgeHeadersNoLongerWarned(t *testing.T) {
	c, err := LoadConfig([]byte(`routers:
- protocol: http
  client: {forwardClientCert: true}
  servers:
  - port: 4140
    timestampHeader: x-request-start
    addForwardedHeader: {}
- protocol: h2
  client: {forwardClientCert: true}
  servers:
  - port: 4142
    addForwardedHeader: {by: {kind: router}}
`))
	if err != nil {
		t.Fatal(err)
	}
	hw, err := checkHTTPRouter(c.Routers[0].Value.(*HTTPRouter))
	if err != nil {
		t.Fatal(err)
	}
	warnings := append(hw, checkH2Router(c.Routers[1].Value.(*H2Router))...)
	for _, w := range warnings {
		for _, opt := range []string{"forwardClientCert", "addForwardedHeader", "timestampHeader"} {
			if strings.Contains(w, opt) {
				t.Errorf("warning %q for %s, which is implemented", w, opt)
			}
		}
	}
}

func TestPerPrefixForwardClientCertMode(t *testing.T) {
	c, err := LoadConfig([]byte(`routers:
- protocol: http
  client:
    kind: io.l5d.static
    configs:
    - prefix: /#/io.l5d.fs/secure
      forwardClientCert: true
  servers: [{port: 4140}]
- protocol: http
  label: off
  client:
    kind: io.l5d.static
    configs:
    - prefix: /#/io.l5d.fs/secure
      forwardClientCert: false
    - prefix: /#/io.l5d.fs/other
      requestAttemptTimeoutMs: 100
  servers: [{port: 4141}]
- protocol: h2
  client:
    kind: io.l5d.static
    configs:
    - prefix: /#/io.l5d.fs/secure
      forwardClientCert: true
  servers: [{port: 4142}]
`))
	if err != nil {
		t.Fatal(err)
	}
	on := c.Routers[0].Value.(*HTTPRouter)
	if w, _ := checkHTTPRouter(on); slices.ContainsFunc(w, func(s string) bool { return strings.Contains(s, "forwardClientCert") }) {
		t.Errorf("warnings %q for a per-prefix forwardClientCert, which http routers apply", w)
	}
	if mode, unsupported := forwardsClientCert(&on.Client, on.Client.Global.ForwardClientCert); mode != xfccByName || unsupported {
		t.Errorf("per-prefix forwardClientCert: mode %d, unsupported %v; want per bound name (%d)", mode, unsupported, xfccByName)
	}
	if e := serverEdge("r", nil, "", xfccByName); e == nil || !e.ClientCertByName || e.ForwardClientCert {
		t.Errorf("serverEdge per bound name = %+v; want ClientCertByName only", e)
	}
	off := c.Routers[1].Value.(*HTTPRouter)
	if mode, _ := forwardsClientCert(&off.Client, off.Client.Global.ForwardClientCert); mode != xfccOff {
		t.Errorf("entries that only turn forwardClientCert off: mode %d; want off (no edge, no per-request cost)", mode)
	}
	h2r := c.Routers[2].Value.(*H2Router)
	if w := checkH2Router(h2r); slices.ContainsFunc(w, func(s string) bool { return strings.Contains(s, "forwardClientCert") }) {
		t.Errorf("h2 warnings %q for a per-prefix forwardClientCert, which h2 routers apply", w)
	}
	if mode, unsupported := forwardsClientCert(&h2r.Client, h2r.Client.Global.ForwardClientCert); mode != xfccByName || unsupported {
		t.Errorf("h2 per-prefix forwardClientCert: mode %d, unsupported %v; want per bound name (%d)", mode, unsupported, xfccByName)
	}
}

// forwardsFor must agree with Policy.For, which every other per-prefix
// client key goes through, on which entry wins.
func TestForwardsForMatchesPolicyFor(t *testing.T) {
	c, err := LoadConfig([]byte(`routers:
- protocol: http
  client:
    kind: io.l5d.static
    configs:
    - prefix: /
      forwardClientCert: true
    - prefix: /#/io.l5d.fs/{svc}
      requestAttemptTimeoutMs: 100
    - prefix: /#/io.l5d.fs/plain
      forwardClientCert: false
    - prefix: /$/inet/*/4141
      forwardClientCert: false
    - prefix: /$/inet/127.0.0.1/4141
      forwardClientCert: true
    - prefix: "/#/io.l5d.k8s/*/http/api-{v}"
      forwardClientCert: false
  servers: [{port: 4140}]
`))
	if err != nil {
		t.Fatal(err)
	}
	hr := c.Routers[0].Value.(*HTTPRouter)
	rules := xfccRules(&hr.Client)
	for _, name := range []string{
		"/#/io.l5d.fs/web", "/#/io.l5d.fs/plain", "/#/io.l5d.fs/plain/x", "/#/io.l5d.fs",
		"/$/inet/127.0.0.1/4141", "/$/inet/127.0.0.2/4141", "/$/inet/127.0.0.1/4142",
		"/#/io.l5d.k8s/prod/http/api-v1", "/#/io.l5d.k8s/prod/http/web", "/%/io.l5d.port/x",
	} {
		id := strings.Split(name, "/")[1:]
		want := hr.Client.For(id).ForwardClientCert
		if got := forwardsFor(rules, id); got != want {
			t.Errorf("%s: forwardsFor = %v; Policy.For says %v", name, got, want)
		}
	}
}

func TestServerEdgeFromConfig(t *testing.T) {
	if e := serverEdge("r", nil, "", xfccOff); e != nil {
		t.Errorf("serverEdge with nothing enabled = %+v; want nil (no per-request cost)", e)
	}
	c, err := LoadConfig([]byte(`routers:
- protocol: http
  label: edge
  servers:
  - port: 4140
    timestampHeader: X-Request-Start
    addForwardedHeader:
      by: {kind: router}
      for: {kind: "ip:port"}
  - port: 4141
    addForwardedHeader: {}
`))
	if err != nil {
		t.Fatal(err)
	}
	hr := c.Routers[0].Value.(*HTTPRouter)
	e := serverEdge(hr.Label, hr.Servers[0].AddForwardedHeader, hr.Servers[0].TimestampHeader, xfccOff)
	want := proxy.Forwarded{By: proxy.NewStaticLabeler("edge"), For: proxy.Labeler{Kind: proxy.LabelIPPort}}
	if e == nil || e.Forwarded == nil || *e.Forwarded != want || e.TimestampHeader != "X-Request-Start" || e.ForwardClientCert {
		t.Errorf("serverEdge = %+v; want Forwarded %+v and the timestamp header", e, want)
	}
	d := serverEdge(hr.Label, hr.Servers[1].AddForwardedHeader, "", xfccOff)
	rnd := proxy.Labeler{Kind: proxy.LabelRequestRandom}
	if d == nil || d.Forwarded == nil || d.Forwarded.By != rnd || d.Forwarded.For != rnd {
		t.Errorf("addForwardedHeader: {} = %+v; want requestRandom for both (Linkerd's default)", d)
	}
}
