//go:build !linnet_slim

package plugins

import (
	_ "github.com/linnet-mesh/linnet/internal/k8s/ingress"  // io.l5d.ingress
	_ "github.com/linnet-mesh/linnet/internal/namer/k8s"    // io.l5d.k8s, .ns, .external, .daemonset, .localnode
	_ "github.com/linnet-mesh/linnet/internal/storage/etcd" // io.l5d.etcd
	_ "github.com/linnet-mesh/linnet/internal/storage/k8s"  // io.l5d.k8s (namerd)
)
