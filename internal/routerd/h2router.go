package routerd

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/linnet-mesh/linnet/internal/admin"
	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/naming"
	"github.com/linnet-mesh/linnet/internal/proxy"
	"github.com/linnet-mesh/linnet/internal/proxy/h2"
	"github.com/linnet-mesh/linnet/internal/router"
	"github.com/linnet-mesh/linnet/internal/telemetry"
	"github.com/linnet-mesh/linnet/internal/tlsconf"
)

// clientTLSOptions maps a client `tls` block to tlsconf.
func clientTLSOptions(t *ClientTLS) tlsconf.ClientOptions {
	o := tlsconf.ClientOptions{
		CommonName: t.CommonName, TrustCertsBundle: t.TrustCertsBundle, TrustCerts: t.TrustCerts,
		DisableValidation: t.DisableValidation, Protocols: t.Protocols, NextProtos: []string{"h2"},
	}
	if a := t.ClientAuth; a != nil {
		o.ClientCertPath, o.ClientKeyPath, o.ClientIntermediateCertsPath = a.CertPath, a.KeyPath, a.IntermediateCertsPath
	}
	return o
}

func (p *Process) startH2Router(ctx context.Context, hr *H2Router, namers []naming.MountedNamer, env naming.Env) (*router.Router, admin.RouterInfo, error) {
	label := hr.Label
	log := p.log.With("router", label)
	ienv := naming.InterpreterEnv{Env: env, Namers: namers, Label: label}
	ienv.Logger = log
	interp, err := hr.Interpreter.Value.NewInterpreter(ienv)
	if err != nil {
		return nil, admin.RouterInfo{}, fmt.Errorf("interpreter %s: %w", hr.Interpreter.Kind, err)
	}
	idEnv := proxy.IdentifierEnv{Ctx: ctx, Logger: log, DstPrefix: hr.DstPrefix.Path, Label: label}
	var ids proxy.Identifiers
	for i, k := range hr.Identifier {
		id, err := k.Value.NewIdentifier(idEnv)
		if err != nil {
			return nil, admin.RouterInfo{}, fmt.Errorf("identifier[%d] (%s): %w", i, k.Kind, err)
		}
		ids = append(ids, id)
	}
	if len(ids) == 0 {
		ids = append(ids, h2.DefaultIdentifier(idEnv))
	}
	scope := telemetry.RouterScope(p.reg.Scope(), label)
	gc := hr.Client.Global
	// Client TLS belongs to the bound name (its commonName may use the
	// {vars} of an io.l5d.static prefix): chosen per request.
	var (
		tlsMu      sync.Mutex
		tlsClients = map[string]*tlsconf.Client{}
	)
	tlsFor := h2.TLSByClient(func(bound string) (*tls.Config, error) {
		id, err := dtab.ParsePath(bound)
		if err != nil {
			return nil, err
		}
		t := hr.Client.For(id).TLS
		if t == nil || !t.Enabled {
			return nil, nil
		}
		o := clientTLSOptions(t)
		o.Logger = log
		key := fmt.Sprintf("%+v", o)
		tlsMu.Lock()
		defer tlsMu.Unlock()
		c, ok := tlsClients[key]
		if !ok {
			if c, err = tlsconf.NewClient(o); err != nil {
				return nil, err
			}
			tlsClients[key] = c
		}
		return c.Config(nil)
	})
	topts := h2.TransportOptions{
		MaxFrameBytes: uint32(gc.MaxFrameBytes), HeaderTableBytes: uint32(gc.HeaderTableBytes),
		MaxHeaderListBytes: uint32(gc.MaxHeaderListBytes), InitialStreamWindowBytes: gc.InitialStreamWindowBytes,
		TLSFor: tlsFor,
	}
	rt := router.New(router.Params{
		Label:          label,
		Dtab:           hr.Dtab.Dtab,
		Interpreter:    interp,
		BindingTimeout: time.Duration(hr.BindingTimeoutMs) * time.Millisecond,
		IdleTTL:        time.Duration(hr.BindingCache.IdleTTLSecs) * time.Second,
		Scope:          scope,
		Service: func(name dtab.Path) router.ServicePolicy {
			sp := hr.Service.For(name)
			c, err := h2.NewClassifier(sp.ResponseClassifier.Kind, sp.ResponseClassifier.SuccessStatusCodes, sp.ResponseClassifier.RetryableStatusCodes)
			if err != nil {
				c, _ = h2.NewClassifier("", nil, nil)
			}
			return router.ServicePolicy{TotalTimeout: time.Duration(sp.TotalTimeoutMs) * time.Millisecond, Classifier: c}
		},
		Client: func(id dtab.Path) router.ClientPolicy {
			cp := hr.Client.For(id)
			return router.ClientPolicy{AttemptTimeout: time.Duration(cp.RequestAttemptTimeoutMs) * time.Millisecond}
		},
		NewTransport: func(string) router.Transport { return h2.NewTransport(topts) },
	})
	p.routers = append(p.routers, rt)
	for i := range hr.Servers {
		s := &hr.Servers[i]
		so := h2.ServerOptions{
			MaxConcurrentStreams:     uint32(s.MaxConcurrentStreamsPerConnection),
			InitialStreamWindowBytes: s.InitialStreamWindowBytes,
			MaxFrameBytes:            s.MaxFrameBytes,
			HeaderTableBytes:         s.HeaderTableBytes,
			MaxHeaderListBytes:       s.MaxHeaderListBytes,
			Logger:                   log,
		}
		if t := s.TLS; t != nil && t.Enabled {
			st, err := tlsconf.NewServer(tlsconf.ServerOptions{
				CertPath: t.CertPath, KeyPath: t.KeyPath, IntermediateCertsPath: t.IntermediateCertsPath,
				CACertPath: t.CACertPath, RequireClientAuth: t.RequireClientAuth, Protocols: t.Protocols,
				NextProtos: []string{"h2", "http/1.1"},
			})
			if err != nil {
				return nil, admin.RouterInfo{}, fmt.Errorf("servers[%d].tls: %w", i, err)
			}
			so.TLS = st.Config()
		}
		ln, err := net.Listen("tcp", s.Addr())
		if err != nil {
			return nil, admin.RouterInfo{}, fmt.Errorf("servers[%d]: %w", i, err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		h := h2.NewHandler(h2.HandlerParams{
			Router:                rt,
			Identifier:            ids,
			ClearContext:          s.ClearContext,
			MaxConcurrentRequests: s.MaxConcurrentRequests,
			MaxCallDepth:          s.MaxCallDepth,
			Scope:                 telemetry.ServerScope(scope, s.IP, port),
			Logger:                log,
		})
		srv := h2.NewServer(h, so)
		p.servers = append(p.servers, &listener{name: label + " " + ln.Addr().String(), ln: srv.WrapListener(ln), srv: srv.HTTP})
	}
	return rt, admin.RouterInfo{Label: label, Dtab: hr.Dtab.Dtab, Interpreter: interp}, nil
}
