// Package client talks to namerd's HTTP control API (spec/namerd-api.md):
// the dtab CRUD calls namerctl makes (used by `linnet dtab`), and
// newline-delimited watch streams. It also registers the
// io.l5d.namerd.http interpreter, which routers use to follow namerd.
package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/linnet-mesh/linnet/internal/namerd/api"
)

// ErrNotFound is namerctl's text for a 404.
var ErrNotFound = errors.New("resource was not found by ID or name")

// StatusError is any other unexpected HTTP status.
type StatusError struct {
	Code   int
	Status string // e.g. "409 Conflict"
	Body   string
}

func (e *StatusError) Error() string { return "unexpected response: " + e.Status }

// Client is a namerd HTTP API client. It is safe for concurrent use.
type Client struct {
	base *url.URL
	hc   *http.Client
}

// New returns a client for the API at baseURL (scheme and host required; a
// path is kept as a prefix). hc nil means http.DefaultClient.
func New(baseURL string, hc *http.Client) (*Client, error) {
	if baseURL == "" {
		return nil, errors.New("empty base URL")
	}
	u, err := url.Parse(baseURL)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return nil, fmt.Errorf("invalid base URL: %q", baseURL)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("invalid base URL: %q (scheme must be http or https)", baseURL)
	}
	if hc == nil {
		hc = http.DefaultClient
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return &Client{base: u, hc: hc}, nil
}

// URL returns the absolute URL of an API path with a query.
func (c *Client) URL(path string, q url.Values) string {
	u := *c.base
	u.Path += path
	u.RawQuery = q.Encode()
	return u.String()
}

func (c *Client) do(ctx context.Context, method, path string, header http.Header, body []byte) (*http.Response, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.URL(path, nil), rd)
	if err != nil {
		return nil, nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	return c.send(req)
}

// send makes a one-shot request and reads the whole (bounded) body.
func (c *Client) send(req *http.Request) (*http.Response, []byte, error) {
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, nil, err
	}
	return resp, b, nil
}

func statusError(resp *http.Response, body []byte) error {
	if resp.StatusCode == http.StatusNotFound {
		return ErrNotFound
	}
	return &StatusError{Code: resp.StatusCode, Status: resp.Status, Body: string(body)}
}

func dtabPath(ns string) string { return api.DtabsPath + "/" + ns }

var acceptJSON = http.Header{"Accept": {api.MediaJSON}}

// ListDtabs returns the namespace names (GET /api/1/dtabs).
func (c *Client) ListDtabs(ctx context.Context) ([]string, error) {
	resp, body, err := c.do(ctx, http.MethodGet, api.DtabsPath, acceptJSON, nil)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, statusError(resp, body)
	}
	var names []string
	if err := json.Unmarshal(body, &names); err != nil {
		return nil, err
	}
	return names, nil
}

// GetDtab returns a namespace's dentries and version (its ETag).
func (c *Client) GetDtab(ctx context.Context, ns string) ([]api.Dentry, string, error) {
	resp, body, err := c.do(ctx, http.MethodGet, dtabPath(ns), acceptJSON, nil)
	if err != nil {
		return nil, "", err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, "", statusError(resp, body)
	}
	var d []api.Dentry
	if err := json.Unmarshal(body, &d); err != nil {
		return nil, "", err
	}
	return d, resp.Header.Get("ETag"), nil
}

// CreateDtab creates a namespace (POST) from body of the given media type.
func (c *Client) CreateDtab(ctx context.Context, ns string, body []byte, contentType string) error {
	return c.write(ctx, http.MethodPost, ns, http.Header{"Content-Type": {contentType}}, body)
}

// UpdateDtab replaces a namespace's dtab (PUT), conditionally on version
// when it is not empty (If-Match).
func (c *Client) UpdateDtab(ctx context.Context, ns string, body []byte, contentType, version string) error {
	h := http.Header{"Content-Type": {contentType}}
	if version != "" {
		h.Set("If-Match", version)
	}
	return c.write(ctx, http.MethodPut, ns, h, body)
}

// DeleteDtab deletes a namespace.
func (c *Client) DeleteDtab(ctx context.Context, ns string) error {
	return c.write(ctx, http.MethodDelete, ns, nil, nil)
}

func (c *Client) write(ctx context.Context, method, ns string, h http.Header, body []byte) error {
	resp, rb, err := c.do(ctx, method, dtabPath(ns), h, body)
	if err != nil {
		return err
	}
	switch resp.StatusCode {
	case http.StatusOK, http.StatusCreated, http.StatusNoContent:
		return nil
	}
	return statusError(resp, rb)
}

// Stream opens a watch (GET path?query, with watch=1 added) and calls each
// with every newline-terminated document until the stream ends, ctx ends or
// each returns an error. It returns nil only when the server ended the
// stream cleanly; the caller decides whether to reconnect.
func (c *Client) Stream(ctx context.Context, path string, q url.Values, each func(doc []byte) error) error {
	q2 := url.Values{}
	for k, v := range q {
		q2[k] = v
	}
	q2.Set("watch", "1")
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.URL(path, q2), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", api.MediaJSON)
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return statusError(resp, b)
	}
	r := bufio.NewReaderSize(resp.Body, 64<<10)
	for {
		line, err := r.ReadBytes('\n')
		if len(line) > 0 && line[len(line)-1] == '\n' {
			if doc := bytes.TrimSpace(line); len(doc) > 0 {
				if err := each(doc); err != nil {
					return err
				}
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
