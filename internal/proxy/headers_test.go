package proxy

import (
	"fmt"
	"net/http"
	"testing"
)

// hopKeys finds each hop-by-hop header by its bit, and RemoveHopByHop
// removes them all from small and large headers alike.
func TestHopKeys(t *testing.T) {
	for i, k := range hopHeaders {
		if got := hopKeys(http.Header{k: {"x"}, "X-Other": {"y"}}); got != 1<<i {
			t.Errorf("hopKeys(%s) = %b, want %b", k, got, 1<<i)
		}
	}
	for _, n := range []int{0, 30} { // small (one pass) and large (all bits)
		h := http.Header{}
		for i := range n {
			h.Set(fmt.Sprintf("X-Filler-%d", i), "v")
		}
		for _, k := range hopHeaders {
			h[k] = []string{"x"}
		}
		h["Connection"] = []string{"X-Filler-0, close"}
		RemoveHopByHop(h)
		for _, k := range append([]string{"X-Filler-0"}, hopHeaders...) {
			if _, ok := h[k]; ok {
				t.Errorf("%d fillers: %s survived", n, k)
			}
		}
		if n > 0 && len(h) != n-1 {
			t.Errorf("%d fillers: %d headers left, want %d", n, len(h), n-1)
		}
	}
}
