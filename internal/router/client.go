package router

import "sync"

// clientEntry is the client tier for one endpoint address: the transport
// holding its pooled connections.
type clientEntry struct {
	r         *Router
	addr      string
	once      sync.Once
	transport Transport
}

func (r *Router) newClientEntry(addr string) *clientEntry {
	return &clientEntry{r: r, addr: addr}
}

func (c *clientEntry) init() {
	c.once.Do(func() { c.transport = c.r.p.NewTransport(c.addr) })
}

// close drops the idle connections; connections in use are closed by the
// transport when their request finishes and nobody reuses them.
func (c *clientEntry) close() {
	c.init()
	c.transport.CloseIdleConnections()
}
