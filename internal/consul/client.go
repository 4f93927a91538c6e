// Package consul builds the Consul API client shared by the io.l5d.consul
// namer (internal/namer/consul), the io.l5d.consul dtab storage
// (internal/storage/consul) and, through the storage, the
// io.l5d.consul.interpreter.
package consul

import (
	"crypto/tls"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/hashicorp/consul/api"
)

// NewClient returns a Consul API client for host:port (HTTPS when tc is
// set) and its transport, whose idle connections the caller closes when
// done. maxIdle bounds the idle connections kept to the agent: a namer
// holds one blocking query per watched service.
func NewClient(host string, port int, token string, tc *tls.Config, maxIdle int) (*api.Client, *http.Transport, error) {
	tr := &http.Transport{
		Proxy:               nil, // Consul is a local agent: never through a proxy
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost: maxIdle,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: 10 * time.Second,
		TLSClientConfig:     tc,
	}
	scheme := "http"
	if tc != nil {
		scheme = "https"
	}
	cli, err := api.NewClient(&api.Config{
		Address:    net.JoinHostPort(host, strconv.Itoa(port)),
		Scheme:     scheme,
		Token:      token,
		Transport:  tr,
		HttpClient: &http.Client{Transport: tr},
	})
	return cli, tr, err
}
