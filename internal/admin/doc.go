// Package admin is the admin HTTP server of a router process (default
// 127.0.0.1:9990, spec/headers-admin.md §5): /admin/ping, /config.json,
// /admin/metrics.json, /delegator.json and the /delegator playground,
// /admin/shutdown, Go's pprof under /admin/pprof/, and whatever pages
// telemeters and the dashboard mount.
package admin
