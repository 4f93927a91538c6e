package marathon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/linnet-mesh/linnet/internal/dtab"
)

// maxBody bounds one Marathon answer: /v2/apps carries every app's full
// definition, which is large on big clusters but far below this.
const maxBody = 64 << 20

// errNotFound is Marathon's 404 for an app that does not exist.
var errNotFound = errors.New("not found")

// api asks Marathon's v2 REST API.
type api struct {
	base    string // scheme://host:port[/uriPrefix]
	host    string // the Host header ("": the URL's)
	client  *http.Client
	timeout time.Duration
	basic   string       // MARATHON_HTTP_AUTH_CREDENTIAL, when set
	tokens  *tokenSource // DC/OS service account login, when set
}

// appIDs is GET /v2/apps: the ids of every app.
func (a *api) appIDs(ctx context.Context) ([]dtab.Path, error) {
	b, err := a.get(ctx, "/v2/apps")
	if err != nil {
		return nil, err
	}
	return ParseApps(b)
}

// appEndpoints is GET /v2/apps/<id>?embed=app.tasks: the endpoints of the
// app's tasks. An app that does not exist is errNotFound.
func (a *api) appEndpoints(ctx context.Context, id dtab.Path, useHealthCheck bool) ([]Endpoint, error) {
	var p strings.Builder
	p.WriteString("/v2/apps")
	for _, s := range id {
		p.WriteString("/" + url.PathEscape(s))
	}
	path := p.String() + "?embed=app.tasks"
	b, err := a.get(ctx, path)
	if err != nil {
		return nil, err
	}
	eps, err := ParseApp(b, useHealthCheck)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", path, err)
	}
	return eps, nil
}

// get fetches base+path, authenticated, and returns a 200's body. With a
// DC/OS account, a 401 logs in again once and retries (the token may
// have expired).
func (a *api) get(ctx context.Context, path string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	token := ""
	if a.tokens != nil {
		var err error
		if token, err = a.tokens.get(ctx, ""); err != nil {
			return nil, err
		}
	}
	status, b, err := a.do(ctx, path, token)
	if err == nil && status == http.StatusUnauthorized && a.tokens != nil {
		if token, err = a.tokens.get(ctx, token); err != nil {
			return nil, err
		}
		status, b, err = a.do(ctx, path, token)
	}
	switch {
	case err != nil:
		return nil, err
	case status == http.StatusOK:
		return b, nil
	case status == http.StatusNotFound:
		return nil, fmt.Errorf("GET %s: %w", path, errNotFound)
	}
	return nil, fmt.Errorf("GET %s: Marathon answered %d %s: %s", path, status, http.StatusText(status), snippet(b))
}

func (a *api) do(ctx context.Context, path, token string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.base+path, nil)
	if err != nil {
		return 0, nil, fmt.Errorf("GET %s: %w", path, err)
	}
	if a.host != "" {
		req.Host = a.host
	}
	req.Header.Set("Accept", "application/json")
	switch {
	case token != "":
		req.Header.Set("Authorization", "token="+token)
	case a.basic != "":
		req.Header.Set("Authorization", "Basic "+a.basic)
	}
	rsp, err := a.client.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("GET %s: %w", a.base+path, err)
	}
	defer rsp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(rsp.Body, maxBody+1))
	if err != nil {
		return 0, nil, fmt.Errorf("GET %s: reading the answer: %w", path, err)
	}
	if len(b) > maxBody {
		return 0, nil, fmt.Errorf("GET %s: the answer is larger than %d MiB", path, maxBody>>20)
	}
	return rsp.StatusCode, b, nil
}
