package proxy

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/middleware"
	"github.com/linnet-mesh/linnet/internal/router"
)

// ErrorResponse is a response Linkerd writes itself (headers-admin.md §4).
type ErrorResponse struct {
	Status int
	// Message is the body and, URL-encoded, the l5d-err header.
	Message string
	// Retryable is true when the request was never sent (l5d-retryable).
	Retryable bool
}

// CallDepthError says the Via header shows more hops than maxCallDepth.
type CallDepthError struct{ Max int }

func (e *CallDepthError) Error() string {
	return fmt.Sprintf("Maximum number of calls (%d) has been exceeded. Please check for proxy loops.", e.Max)
}

// OverloadError says maxConcurrentRequests was reached.
type OverloadError struct{ Max int }

func (e *OverloadError) Error() string {
	return fmt.Sprintf("server is at maxConcurrentRequests (%d); request rejected", e.Max)
}

// statusError is implemented by typed errors of other packages
// (middleware's timeouts and rejections) that know their status.
type statusError interface {
	error
	HTTPStatus() int
}

// retryableError is implemented by errors that know whether the request
// was sent.
type retryableError interface {
	error
	Retryable() bool
}

// MapError is the one mapping from a failure to Linkerd's error response.
// req is the inbound request (for "Unknown destination" summaries).
func MapError(req *http.Request, err error) ErrorResponse {
	var (
		unid *UnidentifiedError
		dtE  *DtabError
		cd   *CallDepthError
		ov   *OverloadError
		nr   *router.NoRouteError
		bt   *router.BindingTimeoutError
		ce   *router.ConnectError
		se   statusError
		re   retryableError
		ne   net.Error
	)
	switch {
	case errors.As(err, &unid):
		return ErrorResponse{Status: http.StatusBadRequest,
			Message: "Unknown destination: " + RequestSummary(req) + " / " + unid.Reason}
	case errors.As(err, &dtE):
		return ErrorResponse{Status: http.StatusBadRequest, Message: dtE.Error()}
	case errors.As(err, &cd):
		return ErrorResponse{Status: http.StatusBadRequest, Message: cd.Error()}
	case errors.As(err, &ov):
		return ErrorResponse{Status: http.StatusServiceUnavailable, Message: ov.Error(), Retryable: true}
	case errors.As(err, &nr):
		return ErrorResponse{Status: http.StatusBadGateway, Message: NoRouteMessage(nr)}
	case errors.As(err, &bt):
		return ErrorResponse{Status: http.StatusServiceUnavailable, Message: bt.Error()}
	case errors.As(err, &ce):
		return ErrorResponse{Status: http.StatusBadGateway, Message: ce.Error(), Retryable: true}
	case errors.As(err, &se):
		out := ErrorResponse{Status: se.HTTPStatus(), Message: se.Error()}
		if errors.As(err, &re) {
			out.Retryable = re.Retryable()
		}
		return out
	case errors.As(err, &ne) && ne.Timeout():
		return ErrorResponse{Status: http.StatusServiceUnavailable, Message: err.Error()}
	}
	// Timeouts, rejections and connection failures of the middleware.
	status, retryable := middleware.ErrorStatus(err)
	out := ErrorResponse{Status: status, Message: err.Error(), Retryable: retryable}
	if errors.As(err, &re) {
		out.Retryable = re.Retryable()
	}
	return out
}

// RequestSummary describes a request the way Linkerd's errors do:
// Request("GET /path", from 127.0.0.1:51234).
func RequestSummary(r *http.Request) string {
	if r == nil {
		return "Request(unknown)"
	}
	return "Request(\"" + r.Method + " " + r.URL.RequestURI() + "\", from " + r.RemoteAddr + ")"
}

// NoRouteMessage is the body of a 502 for a name that routes nowhere: what
// was asked, why it failed, and the dtabs that were used, so that a person
// can see which rule to fix.
func NoRouteMessage(e *router.NoRouteError) string {
	var b strings.Builder
	b.WriteString("Unable to route request!\n\n")
	b.WriteString("service name: " + e.Name.String() + "\n")
	if e.Bound != nil {
		b.WriteString("client name: " + e.Bound.String() + "\n")
	}
	b.WriteString("reason: " + e.Reason + "\n")
	full := make(dtab.Dtab, 0, len(e.Base)+len(e.Local))
	full = append(append(full, e.Base...), e.Local...)
	writeDtab(&b, "dtab", full)
	writeDtab(&b, "base dtab", e.Base)
	writeDtab(&b, "override dtab", e.Local)
	return b.String()
}

func writeDtab(b *strings.Builder, title string, d dtab.Dtab) {
	b.WriteString(title + ":\n")
	for _, de := range d {
		b.WriteString("  " + de.Prefix.String() + " => " + dtab.ShowTree(de.Dst) + "\n")
	}
}

// WriteError writes e as Linkerd does: status, l5d-err (form-encoded,
// truncated to maxHeaderBytes), text/plain body. With clearContext the
// l5d-* headers and the body are left out (headers-admin.md §3).
func WriteError(w http.ResponseWriter, e ErrorResponse, clearContext bool, maxHeaderBytes int) {
	h := w.Header()
	if clearContext {
		h.Set("Content-Length", "0")
		w.WriteHeader(e.Status)
		return
	}
	v := url.QueryEscape(e.Message)
	if maxHeaderBytes > 0 && len(v) > maxHeaderBytes {
		v = v[:maxHeaderBytes]
		// Do not cut a %XX escape in half.
		if i := strings.LastIndexByte(v, '%'); i >= 0 && i > len(v)-3 {
			v = v[:i]
		}
	}
	h[HeaderErr] = []string{v}
	if e.Retryable {
		h[HeaderRetryable] = []string{"true"}
	}
	h["Content-Type"] = []string{"text/plain"}
	h["Content-Length"] = []string{strconv.Itoa(len(e.Message))}
	w.WriteHeader(e.Status)
	_, _ = w.Write([]byte(e.Message))
}
