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

func TestPerPrefixForwardClientCertWarned(t *testing.T) {
	c, err := LoadConfig([]byte(`routers:
- protocol: http
  client:
    kind: io.l5d.static
    configs:
    - prefix: /#/io.l5d.fs/secure
      forwardClientCert: true
  servers: [{port: 4140}]
`))
	if err != nil {
		t.Fatal(err)
	}
	hr := c.Routers[0].Value.(*HTTPRouter)
	w, _ := checkHTTPRouter(hr)
	if !slices.Contains(w, warnPerPrefixXFCC) {
		t.Errorf("warnings %q; want %q", w, warnPerPrefixXFCC)
	}
	if on, _ := forwardsClientCert(&hr.Client, hr.Client.Global.ForwardClientCert); on {
		t.Error("a per-prefix forwardClientCert turned the header on for the whole router")
	}
}

func TestServerEdgeFromConfig(t *testing.T) {
	if e := serverEdge("r", nil, "", false); e != nil {
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
	e := serverEdge(hr.Label, hr.Servers[0].AddForwardedHeader, hr.Servers[0].TimestampHeader, false)
	want := proxy.Forwarded{By: proxy.NewStaticLabeler("edge"), For: proxy.Labeler{Kind: proxy.LabelIPPort}}
	if e == nil || e.Forwarded == nil || *e.Forwarded != want || e.TimestampHeader != "X-Request-Start" || e.ForwardClientCert {
		t.Errorf("serverEdge = %+v; want Forwarded %+v and the timestamp header", e, want)
	}
	d := serverEdge(hr.Label, hr.Servers[1].AddForwardedHeader, "", false)
	rnd := proxy.Labeler{Kind: proxy.LabelRequestRandom}
	if d == nil || d.Forwarded == nil || d.Forwarded.By != rnd || d.Forwarded.For != rnd {
		t.Errorf("addForwardedHeader: {} = %+v; want requestRandom for both (Linkerd's default)", d)
	}
}
