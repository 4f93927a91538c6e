package http1

import (
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/linnet-mesh/linnet/internal/proxy"
)

// upgrade completes a 101 Switching Protocols (WebSocket, h2c...): it
// checks that the endpoint switched to the protocol the caller asked for,
// takes over the caller's connection and copies bytes both ways until
// either side closes.
func (h *Handler) upgrade(w http.ResponseWriter, r *http.Request, resp *http.Response) {
	// PrepareOutbound kept Connection/Upgrade in r.Header only if the
	// caller asked for an upgrade.
	asked := proxy.UpgradeType(r.Header)
	got := proxy.UpgradeType(resp.Header)
	backend, ok := resp.Body.(io.ReadWriteCloser)
	if !ok || asked == "" || !strings.EqualFold(asked, got) {
		resp.Body.Close()
		h.fail(w, r, fmt.Errorf("endpoint switched protocol to %q but the request asked for %q", got, asked))
		return
	}
	defer backend.Close()
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		h.fail(w, r, fmt.Errorf("cannot take over the connection for the %s upgrade: %w", got, err))
		return
	}
	defer conn.Close()
	proxy.AppendVia(resp.Header, resp.ProtoMajor, resp.ProtoMinor)
	if h.p.ClearContext {
		proxy.StripL5d(resp.Header)
	}
	resp.Body = nil
	if err := resp.Write(brw); err != nil {
		return
	}
	if err := brw.Flush(); err != nil {
		return
	}
	errc := make(chan error, 2)
	go func() { // caller → endpoint, including bytes already buffered
		_, err := io.Copy(backend, brw.Reader)
		errc <- err
	}()
	go func() {
		_, err := io.Copy(conn, backend)
		errc <- err
	}()
	<-errc
}
