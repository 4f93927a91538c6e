package router

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/linnet-mesh/linnet/internal/naming"
)

func TestClientStates(t *testing.T) {
	entered, release := make(chan struct{}, 1), make(chan struct{})
	var calls atomic.Int32
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 2 { // the request to /svc/slow
			entered <- struct{}{}
			<-release
		}
		io.WriteString(w, "ok")
	}))
	defer be.Close()
	a := address(t, be.URL)
	f := newFixture(t, Params{}, map[string][]naming.Address{"slow": {a}, "fast": {a}, "idle": {a}})
	if got := f.r.ClientStates(); len(got) != 0 {
		t.Fatalf("before any request: %+v; want no bound names", got)
	}
	resp, err := get(t, f.r, "fast", nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()

	done := make(chan error, 1)
	go func() {
		resp, err := get(t, f.r, "slow", nil)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		done <- err
	}()
	select {
	case <-entered:
	case err := <-done:
		t.Fatalf("request to slow ended early: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("request to slow did not reach the backend")
	}
	got := f.r.ClientStates()
	if len(got) != 2 || got[0].ID != "/#/t/fast" || got[1].ID != "/#/t/slow" {
		t.Fatalf("ClientStates = %+v; want /#/t/fast and /#/t/slow, sorted", got)
	}
	for i, wantLoad := range []int64{0, 1} {
		cs := got[i]
		if cs.State != "bound" || len(cs.Addresses) != 1 || cs.Addresses[0] != a.HostPort() {
			t.Errorf("%s: state %q addresses %v; want bound [%s]", cs.ID, cs.State, cs.Addresses, a.HostPort())
		}
		if len(cs.Endpoints) != 1 || cs.Endpoints[0].Address != a.HostPort() || !cs.Endpoints[0].Available ||
			cs.Endpoints[0].Ejected || cs.Endpoints[0].Load != wantLoad {
			t.Errorf("%s: endpoints %+v; want one available endpoint %s with load %d", cs.ID, cs.Endpoints, a.HostPort(), wantLoad)
		}
	}
	close(release)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("request to slow did not finish")
	}
	deadline := time.Now().Add(5 * time.Second)
	for f.r.ClientStates()[1].Endpoints[0].Load != 0 {
		if time.Now().After(deadline) {
			t.Fatal("load of /#/t/slow did not return to 0 after the response")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if names := f.r.BoundNames(); len(names) != 2 || names[0] != "/#/t/fast" || names[1] != "/#/t/slow" {
		t.Errorf("BoundNames = %v; want [/#/t/fast /#/t/slow]", names)
	}
}
