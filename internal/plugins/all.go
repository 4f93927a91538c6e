// Package plugins links every namer, storage backend, telemeter and
// interpreter into the binary by importing them for their init
// registrations (Caddy's modules/standard).
package plugins

import (
	_ "github.com/linnet-mesh/linnet/internal/k8s/ingress"          // io.l5d.ingress
	_ "github.com/linnet-mesh/linnet/internal/namer/dnssrv"         // io.l5d.dnssrv
	_ "github.com/linnet-mesh/linnet/internal/namer/fs"             // io.l5d.fs
	_ "github.com/linnet-mesh/linnet/internal/namer/k8s"            // io.l5d.k8s, .ns, .external, .daemonset, .localnode
	_ "github.com/linnet-mesh/linnet/internal/namer/rewrite"        // io.l5d.rewrite
	_ "github.com/linnet-mesh/linnet/internal/namerd/client"        // io.l5d.namerd.http
	_ "github.com/linnet-mesh/linnet/internal/namerd/thrift"        // io.l5d.namerd
	_ "github.com/linnet-mesh/linnet/internal/storage/etcd"         // io.l5d.etcd
	_ "github.com/linnet-mesh/linnet/internal/storage/file"         // io.linnet.file
	_ "github.com/linnet-mesh/linnet/internal/storage/k8s"          // io.l5d.k8s (namerd)
	_ "github.com/linnet-mesh/linnet/internal/storage/memory"       // io.l5d.inMemory
	_ "github.com/linnet-mesh/linnet/internal/telemetry/influxdb"   // io.l5d.influxdb
	_ "github.com/linnet-mesh/linnet/internal/telemetry/prometheus" // io.l5d.prometheus
	_ "github.com/linnet-mesh/linnet/internal/telemetry/recent"     // io.l5d.recentRequests
	_ "github.com/linnet-mesh/linnet/internal/telemetry/zipkin"     // io.l5d.zipkin
)
