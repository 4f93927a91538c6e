// Package plugins links every namer, storage backend, telemeter and
// interpreter into the binary by importing them for their init
// registrations (Caddy's modules/standard).
//
// The plug-ins with heavy dependencies (Kubernetes, etcd, Consul, and
// the gRPC io.l5d.mesh) are in cluster.go. Building with -tags
// linnet_slim (make build-slim) leaves them out: every package a binary
// links runs its init in every process, and these cost the router about
// 10 MB of resident memory whether or not its config uses them
// (docs/performance.md). A slim binary refuses their kinds with a message
// that says so.
package plugins

import (
	_ "github.com/linnet-mesh/linnet/internal/interpreter/fs"       // io.l5d.fs (interpreter)
	_ "github.com/linnet-mesh/linnet/internal/namer/dnssrv"         // io.l5d.dnssrv
	_ "github.com/linnet-mesh/linnet/internal/namer/fs"             // io.l5d.fs
	_ "github.com/linnet-mesh/linnet/internal/namer/marathon"       // io.l5d.marathon
	_ "github.com/linnet-mesh/linnet/internal/namer/rewrite"        // io.l5d.rewrite
	_ "github.com/linnet-mesh/linnet/internal/namerd/client"        // io.l5d.namerd.http
	_ "github.com/linnet-mesh/linnet/internal/namerd/thrift"        // io.l5d.namerd
	_ "github.com/linnet-mesh/linnet/internal/storage/file"         // io.linnet.file
	_ "github.com/linnet-mesh/linnet/internal/storage/memory"       // io.l5d.inMemory
	_ "github.com/linnet-mesh/linnet/internal/telemetry/influxdb"   // io.l5d.influxdb
	_ "github.com/linnet-mesh/linnet/internal/telemetry/prometheus" // io.l5d.prometheus
	_ "github.com/linnet-mesh/linnet/internal/telemetry/recent"     // io.l5d.recentRequests
	_ "github.com/linnet-mesh/linnet/internal/telemetry/statsd"     // io.l5d.statsd
	_ "github.com/linnet-mesh/linnet/internal/telemetry/tracelog"   // io.l5d.tracelog
	_ "github.com/linnet-mesh/linnet/internal/telemetry/zipkin"     // io.l5d.zipkin
)
