package k8s

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/naming"
	"github.com/linnet-mesh/linnet/internal/watch"
)

// stateDoc decodes what /namer_state/<prefix>.json serves.
type stateDoc struct {
	Prefix    string `json:"prefix"`
	Informers struct {
		Synced         bool   `json:"synced"`
		Error          string `json:"error"`
		EndpointSlices *bool  `json:"endpointSlices"`
	} `json:"informers"`
	Names map[string]struct {
		State         string     `json:"state"`
		Addresses     []string   `json:"addresses"`
		Error         string     `json:"error"`
		Subscribers   int        `json:"subscribers"`
		Residuals     []string   `json:"residuals"`
		LastStartedAt time.Time  `json:"lastStartedAt"`
		LastUpdatedAt *time.Time `json:"lastUpdatedAt"`
		Updates       int        `json:"updates"`
	} `json:"names"`
}

func namerState(t *testing.T, n *Namer) (stateDoc, string) {
	t.Helper()
	b, err := json.Marshal(n.State())
	if err != nil {
		t.Fatal(err)
	}
	var d stateDoc
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%v in %s", err, b)
	}
	return d, string(b)
}

// awaitState polls the namer's state until ok holds.
func awaitState(t *testing.T, what string, n *Namer, ok func(stateDoc) bool) stateDoc {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		d, raw := namerState(t, n)
		if ok(d) {
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: namer state still %s after %v", what, raw, waitFor)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The namer's state page (naming.StateReporter) lists the names being
// watched with their answer, subscribers and residuals, and the informers'
// sync state, following a Service through creation, scaling and deletion
// on a real kube-apiserver; a name nobody watches leaves the page.
func TestNamerState(t *testing.T) {
	a := newAPI(t)
	n := namerFromYAML(t, proxyYAML(t, a, "io.l5d.k8s", ""))
	if d, raw := namerState(t, n); d.Prefix != "/#/io.l5d.k8s" || len(d.Names) != 0 {
		t.Fatalf("state before any lookup = %s; want prefix /#/io.l5d.k8s, no names", raw)
	}

	byName := n.Lookup(dtab.Path{a.ns, "http", "world", "residual"})
	stopLookup := byName.Subscribe(func(watch.Activity[dtab.Tree[naming.Name]]) {})
	defer stopLookup()
	key := "/" + a.ns + "/http/world"
	d := awaitState(t, "before the service exists", n, func(d stateDoc) bool { return d.Informers.Synced && d.Names[key].State == "neg" })
	if d.Informers.EndpointSlices == nil || !*d.Informers.EndpointSlices || d.Informers.Error != "" {
		t.Errorf("informers = %+v; want synced on EndpointSlices without error", d.Informers)
	}

	a.service("world", nil, "http:80:http")
	a.slice("world-1", "world", nil, "http:7777", "10.1.0.1@node-a", "10.1.0.2@node-b")
	b := leafBound(t, await(t, "created", byName, treeIs("/#/io.l5d.k8s"+key)))
	stopAddr := b.Addr.Subscribe(func(naming.Addr) {})
	d = awaitState(t, "created", n, func(d stateDoc) bool {
		return fmt.Sprint(d.Names[key].Addresses) == "[10.1.0.1:7777 10.1.0.2:7777]"
	})
	s := d.Names[key]
	if s.State != "bound" || s.Subscribers != 2 || fmt.Sprint(s.Residuals) != "[/residual]" || s.Updates < 1 ||
		s.LastUpdatedAt == nil || s.LastUpdatedAt.Before(s.LastStartedAt) {
		t.Errorf("%s once created = %+v; want bound, 2 subscribers (lookup, addresses), residual /residual, updated after it started", key, s)
	}
	updates := s.Updates

	a.slice("world-1", "world", nil, "http:7777", "10.1.0.3@node-c")
	d = awaitState(t, "scaled", n, func(d stateDoc) bool { return fmt.Sprint(d.Names[key].Addresses) == "[10.1.0.3:7777]" })
	if d.Names[key].Updates <= updates {
		t.Errorf("updates %d after scaling, want more than %d", d.Names[key].Updates, updates)
	}

	a.deleteService("world", "world-1")
	awaitState(t, "deleted", n, func(d stateDoc) bool {
		return d.Names[key].State == "neg" && len(d.Names[key].Addresses) == 0
	})

	stopAddr()
	stopLookup()
	if d, raw := namerState(t, n); len(d.Names) != 0 {
		t.Errorf("state once nothing watches = %s; want no names", raw)
	}
}
