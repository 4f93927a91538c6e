package proxy

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/linnet-mesh/linnet/internal/dtab"
)

// Identifier names a request: it returns the logical path the router binds,
// already under the router's dstPrefix (e.g. /svc/www.hello.world). An
// identifier that cannot name the request returns an *UnidentifiedError;
// routers with a list of identifiers then try the next one.
//
// Identify may rewrite r (io.l5d.path with consume: true strips the path
// segments it used), but only when it succeeds.
type Identifier interface {
	Identify(r *http.Request) (dtab.Path, error)
}

// IdentifierEnv is what an identifier is built with.
type IdentifierEnv struct {
	// Ctx is cancelled when the router shuts down; watches an identifier
	// starts (io.l5d.ingress) must stop then.
	Ctx    context.Context
	Logger *slog.Logger
	// DstPrefix is the router's dstPrefix (default /svc); every name an
	// identifier produces starts with it.
	DstPrefix dtab.Path
	// Label is the router's label.
	Label string
}

// IdentifierConfig is the config of one `identifier:` entry of a router.
// Each kind registers a constructor of its config struct with
// config.Register[proxy.IdentifierConfig](kind, ...).
type IdentifierConfig interface {
	NewIdentifier(env IdentifierEnv) (Identifier, error)
}

// UnidentifiedError says why an identifier could not name a request. The
// router answers it with 400 "Unknown destination: <request> / <reason>".
type UnidentifiedError struct {
	Reason string
}

func (e *UnidentifiedError) Error() string { return e.Reason }

// Unidentified returns an *UnidentifiedError with a formatted reason.
func Unidentified(format string, args ...any) error {
	return &UnidentifiedError{Reason: fmt.Sprintf(format, args...)}
}

// Identifiers tries each identifier in order and returns the first name;
// if none matches, the error lists every reason.
type Identifiers []Identifier

// Identify implements Identifier.
func (ids Identifiers) Identify(r *http.Request) (dtab.Path, error) {
	if len(ids) == 1 {
		return ids[0].Identify(r)
	}
	var reasons string
	for i, id := range ids {
		p, err := id.Identify(r)
		if err == nil {
			return p, nil
		}
		if i > 0 {
			reasons += "; "
		}
		reasons += err.Error()
	}
	return nil, &UnidentifiedError{Reason: reasons}
}

var _ Identifier = Identifiers(nil)
