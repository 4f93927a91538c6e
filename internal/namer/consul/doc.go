// Package consul is the io.l5d.consul namer: service discovery from
// Consul's catalog and health checks.
//
// /#/io.l5d.consul/<dc>/<service>/rest binds the id
// /#/io.l5d.consul/<dc>/<service> with residual /rest; with includeTag the
// path is /<dc>/<tag>/<service> and only instances carrying the tag count.
// The datacenter ".local" is the agent's own.
//
//   - Each watched (dc, tag, service) is one blocking query loop on
//     /v1/health/service/<service> (X-Consul-Index), shared by every lookup
//     of it and stopped when the last subscriber cancels; nothing is asked
//     for names nobody watches.
//   - No registered instance (or an unknown datacenter) is negative, so
//     dtab fall-backs apply. With useHealthCheck, instances whose worst
//     check is not in healthStatuses are left out, which may leave a bound,
//     empty set.
//   - An instance's address is the service address when set (and
//     preferServiceAddress, the default), else the node's, resolved when
//     it is a host name; its weight is the largest `weights` entry among
//     its tags, else 1.
//   - A Consul failure backs off and keeps the last answer; a name that
//     never had one stays pending (or, with failFast, fails) until Consul
//     answers. A restarted agent whose index went backwards is followed
//     from scratch.
//   - Answers and address sets are published only when they change.
package consul
