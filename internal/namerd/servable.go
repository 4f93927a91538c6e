package namerd

import (
	"context"
	"log/slog"
	"net"

	"github.com/linnet-mesh/linnet/internal/naming"
	"github.com/linnet-mesh/linnet/internal/storage"
	"github.com/linnet-mesh/linnet/internal/telemetry"
)

// Servable is implemented by the configs of interface kinds that build
// their own server: kinds registered by packages this one cannot import,
// because they import it for InterfaceConfig (namerd/mesh, the gRPC
// io.l5d.mesh interface).
type Servable interface {
	InterfaceConfig
	// NewServer returns the interface's server; Start serves it on the
	// interface's address (with its TLS block, offering NextProtos over
	// ALPN).
	NewServer(env ServeEnv) (Server, error)
	// NextProtos are the ALPN protocols the listener offers with TLS
	// (e.g. "h2" for gRPC).
	NextProtos() []string
}

// ServeEnv is what a Servable's server gets from the namerd process.
type ServeEnv struct {
	// Ctx ends when the process stops.
	Ctx   context.Context
	Store storage.Store
	// Interpreter binds through the dtab given, with namerd's namers and
	// the /$/ system namers (the one every interface shares). It is a
	// naming.Explainer too.
	Interpreter *naming.DefaultInterpreter
	Scope       telemetry.Scope
	Logger      *slog.Logger
}

// Server is what a listener runs. Serve returns http.ErrServerClosed (or
// nil) after Shutdown or Close.
type Server interface {
	Serve(net.Listener) error
	Shutdown(context.Context) error
	Close() error
}
