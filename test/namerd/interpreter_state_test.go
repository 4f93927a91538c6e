package namerd

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"
)

// interpreterState is the part of /<router>/interpreter_state/<kind>/<ns>.json
// the test reads: bind watches by path then dtab, address watches by id
// (under "addr" or "resolve"), each with the stream record under "poll"
// or "watch".
type interpreterState struct {
	Bind map[string]map[string]stateEntry `json:"bind"`
	Addr map[string]stateEntry            `json:"addr"`
	// Resolve is io.l5d.mesh's name for Addr.
	Resolve map[string]stateEntry `json:"resolve"`
}

type stateEntry struct {
	State struct {
		Running       bool   `json:"running"`
		LastUpdatedAt string `json:"lastUpdatedAt"`
		Value         struct {
			State     string   `json:"state"`
			Tree      string   `json:"tree"`
			Addresses []string `json:"addresses"`
		} `json:"value"`
	} `json:"state"`
	Poll  *streamRecord `json:"poll"`
	Watch *streamRecord `json:"watch"`
}

type streamRecord struct {
	Streaming bool   `json:"streaming"`
	Responses int    `json:"responses"`
	Error     string `json:"error"`
}

// get fetches url; it returns the status and body.
func get(t *testing.T, method, url string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// TestInterpreterStatePages runs a real namerd with its HTTP, Thrift and
// mesh interfaces, and for each of the three namerd-backed interpreters a
// real router following it: after traffic, the router's
// /<router>/interpreter_state/<kind>/<ns>.json lists the bind watch of
// /svc/world with its bound tree and the address watch of the bound id,
// and it follows a dtab change made with `linnet dtab update`.
func TestInterpreterStatePages(t *testing.T) {
	v1, v2 := backend(t, "world-v1"), backend(t, "world-v2")
	ndAdmin, ndAPI, ndThrift, ndMesh := freePort(t), freePort(t), freePort(t), freePort(t)
	cfg := namerdConfig(ndAdmin, ndAPI, "  kind: io.linnet.file\n  dir: "+t.TempDir()) +
		fmt.Sprintf("- kind: io.l5d.thriftNameInterpreter\n  port: %d\n- kind: io.l5d.mesh\n  port: %d\n", ndThrift, ndMesh)
	start(t, "namerd", cfg, ndAdmin)
	base := fmt.Sprintf("http://127.0.0.1:%d", ndAPI)

	for _, c := range []struct {
		kind, interp, addrKey, streamKey string
	}{
		{"io.l5d.namerd.http", fmt.Sprintf("kind: io.l5d.namerd.http\nexperimental: true\ndst: /$/inet/127.0.0.1/%d\nnamespace: ns-http\n", ndAPI), "addr", "watch"},
		{"io.l5d.namerd", fmt.Sprintf("kind: io.l5d.namerd\ndst: /$/inet/127.0.0.1/%d\nnamespace: ns-thrift\n", ndThrift), "addr", "poll"},
		{"io.l5d.mesh", fmt.Sprintf("kind: io.l5d.mesh\ndst: /$/inet/127.0.0.1/%d\nroot: /ns-mesh\n", ndMesh), "resolve", "watch"},
	} {
		t.Run(c.kind, func(t *testing.T) {
			ns := map[string]string{"io.l5d.namerd.http": "ns-http", "io.l5d.namerd": "ns-thrift", "io.l5d.mesh": "ns-mesh"}[c.kind]
			dtabCLI(t, base, fmt.Sprintf("/svc/world => %s;\n", inet(v1)), "create", ns, "-").want(t, 0, "Created "+ns+"\n")
			rtAdmin, rtPort := startRouter(t, "out", c.interp+"retry:\n  baseSeconds: 1\n  maxSeconds: 1\n")
			page := fmt.Sprintf("http://127.0.0.1:%d/out/interpreter_state/%s/%s.json", rtAdmin, c.kind, ns)

			var st interpreterState
			read := func() {
				t.Helper()
				code, body := get(t, "GET", page)
				if code != 200 {
					t.Fatalf("GET %s: %d %s", page, code, body)
				}
				st = interpreterState{}
				if err := json.Unmarshal(body, &st); err != nil {
					t.Fatalf("GET %s: %v in %s", page, err, body)
				}
			}
			read()
			if len(st.Bind) != 0 {
				t.Errorf("before traffic the page lists binds: %+v", st.Bind)
			}

			tr := sendTraffic(t, fmt.Sprintf("http://127.0.0.1:%d/", rtPort), "world", 1)
			tr.awaitOnly(t, "world-v1", 5, 10*time.Second)
			read()
			addrs := st.Addr
			if c.addrKey == "resolve" {
				addrs = st.Resolve
			}
			b, ok := st.Bind["/svc/world"][""]
			rec := b.Watch
			if c.streamKey == "poll" {
				rec = b.Poll
			}
			if !ok || !b.State.Running || b.State.Value.State != "ok" || b.State.Value.Tree != inet(v1) || rec == nil || !rec.Streaming || rec.Responses < 1 {
				t.Fatalf("bind /svc/world (empty dtab) = %+v (%s %+v); want running, ok, tree %s, streaming; page %+v", b, c.streamKey, rec, inet(v1), st)
			}
			a, ok := addrs[inet(v1)]
			if !ok || a.State.Value.State != "bound" || fmt.Sprint(a.State.Value.Addresses) != fmt.Sprintf("[127.0.0.1:%d]", v1) {
				t.Fatalf("%s %s = %+v; want bound to 127.0.0.1:%d; page %+v", c.addrKey, inet(v1), a, v1, st)
			}
			first := b.State.LastUpdatedAt

			// The dtab changes: the bind watch's tree follows.
			dtabCLI(t, base, fmt.Sprintf("/svc/world => %s;\n", inet(v2)), "update", ns, "-").want(t, 0, "Updated "+ns+"\n")
			deadline := time.Now().Add(10 * time.Second)
			for {
				read()
				b = st.Bind["/svc/world"][""]
				if b.State.Value.Tree == inet(v2) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("bind tree after the dtab update = %q; want %s within 10s; page %+v", b.State.Value.Tree, inet(v2), st)
				}
				time.Sleep(50 * time.Millisecond)
			}
			if b.State.LastUpdatedAt == first || b.State.LastUpdatedAt == "" {
				t.Errorf("lastUpdatedAt %q did not move from %q after the dtab update", b.State.LastUpdatedAt, first)
			}
			tr.awaitOnly(t, "world-v2", 5, 10*time.Second)
			tr.halt()

			for _, bad := range []string{
				fmt.Sprintf("/out/interpreter_state/%s/nope.json", c.kind),
				fmt.Sprintf("/out/interpreter_state/io.l5d.other/%s.json", ns),
				fmt.Sprintf("/in/interpreter_state/%s/%s.json", c.kind, ns),
			} {
				if code, body := get(t, "GET", fmt.Sprintf("http://127.0.0.1:%d%s", rtAdmin, bad)); code != 404 {
					t.Errorf("GET %s: %d %s; want 404", bad, code, body)
				}
			}
			if code, _ := get(t, "POST", page); code != 405 {
				t.Errorf("POST %s: %d; want 405", page, code)
			}
		})
	}
}
