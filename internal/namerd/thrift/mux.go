package thrift

import (
	"bufio"

	"github.com/linnet-mesh/linnet/internal/proxy/mux"
)

// Mux (Finagle's session protocol, which ThriftMux runs Thrift over) is
// the shared codec of internal/proxy/mux; these are its names in this
// package.

const (
	muxTreq        = mux.Treq
	muxRreq        = mux.Rreq
	muxTdispatch   = mux.Tdispatch
	muxRdispatch   = mux.Rdispatch
	muxTdrain      = mux.Tdrain
	muxRdrain      = mux.Rdrain
	muxTping       = mux.Tping
	muxRping       = mux.Rping
	muxTdiscarded  = mux.Tdiscarded
	muxRdiscarded  = mux.Rdiscarded
	muxTlease      = mux.Tlease
	muxTinit       = mux.Tinit
	muxRinit       = mux.Rinit
	muxRerr        = mux.Rerr
	muxBadTdiscard = mux.BadTdiscarded
	muxBadRerr     = mux.BadRerr

	statusOK    = mux.StatusOK
	statusError = mux.StatusError
	statusNack  = mux.StatusNack

	tagMSB     = mux.TagMSB
	maxTag     = mux.MaxTag
	tinitTag   = mux.InitTag
	canTinit   = mux.CanTinit
	muxVersion = mux.Version
)

// muxMsg is one decoded mux frame.
type muxMsg struct {
	typ  int8
	tag  uint32
	body []byte
}

func readFrame(r *bufio.Reader) ([]byte, error) { return mux.ReadFrame(r) }

func parseMux(frame []byte) (muxMsg, error) {
	m, err := mux.Parse(frame)
	return muxMsg{typ: m.Type, tag: m.Tag, body: m.Body}, err
}

func appendMux(b []byte, typ int8, tag uint32, parts ...[]byte) []byte {
	return mux.AppendFrame(b, typ, tag, parts...)
}

// tdispatchHeader is the Tdispatch header Linnet's namerd clients send:
// no contexts, no destination, no dtab.
var tdispatchHeader = mux.EmptyTdispatchHeader

func initBody(version int, headers [][2][]byte) []byte { return mux.InitBody(version, headers) }

func parseInit(body []byte) (int, [][2][]byte, error) { return mux.ParseInit(body) }

// dispatch is a decoded Tdispatch.
type dispatch struct {
	contexts [][2][]byte
	dst      string
	dtab     [][2]string
	body     []byte
}

func parseTdispatch(body []byte) (dispatch, error) {
	d, err := mux.ParseTdispatch(body)
	if err != nil {
		return dispatch{}, err
	}
	out := dispatch{dst: d.Dst, body: d.Body}
	for _, c := range d.Contexts {
		out.contexts = append(out.contexts, [2][]byte{c.Key, c.Value})
	}
	for _, e := range d.Dtab {
		out.dtab = append(out.dtab, [2]string{e.Prefix, e.Dst})
	}
	return out, nil
}

func parseTreq(body []byte) ([]byte, error) { return mux.ParseTreq(body) }

func parseRdispatch(body []byte) (int, []byte, error) { return mux.ParseRdispatch(body) }

func isThriftCall(frame []byte) bool { return mux.IsThriftCall(frame) }
