package namerd

import (
	"encoding/json"
	"net/http"
	"slices"
	"testing"
)

// namerd's admin serves /namer_state/<prefix>.json for its namers, as
// Linkerd's namerd did: the io.l5d.fs namer's root and the names it serves.
func TestNamerStatePage(t *testing.T) {
	text, dir := fsConfigDir(t)
	p := startProcess(t, text)
	adm := "http://" + p.AdminAddr()
	api := "http://" + p.InterfaceAddrs()[0]
	if code, body := get(t, api+"/api/1/resolve/default?path=/svc/hello"); code != http.StatusOK {
		t.Fatalf("resolve: %d %q", code, body)
	}
	code, body := get(t, adm+"/namer_state/io.l5d.fs.json")
	if code != http.StatusOK {
		t.Fatalf("/namer_state/io.l5d.fs.json: %d %q", code, body)
	}
	var doc struct {
		RootDir string `json:"rootDir"`
		Names   map[string]struct {
			State     string   `json:"state"`
			Addresses []string `json:"addresses"`
		} `json:"names"`
	}
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatalf("decoding %q: %v", body, err)
	}
	if doc.RootDir != dir {
		t.Errorf("rootDir %q, want %q", doc.RootDir, dir)
	}
	hello := doc.Names["hello"]
	if hello.State != "bound" || !slices.Equal(hello.Addresses, []string{"127.0.0.1:8080", "127.0.0.1:8081"}) {
		t.Errorf("names[hello] = %+v in %s", hello, body)
	}
	if code, _ := get(t, adm+"/namer_state/io.l5d.nothere.json"); code != http.StatusNotFound {
		t.Errorf("unknown namer: %d, want 404", code)
	}
}
