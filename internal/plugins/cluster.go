//go:build !linnet_slim

package plugins

import (
	_ "github.com/linnet-mesh/linnet/internal/interpreter/consul" // io.l5d.consul.interpreter
	_ "github.com/linnet-mesh/linnet/internal/k8s/configmap"      // io.l5d.k8s.configMap (interpreter)
	_ "github.com/linnet-mesh/linnet/internal/k8s/ingress"        // io.l5d.ingress
	_ "github.com/linnet-mesh/linnet/internal/namer/consul"       // io.l5d.consul
	_ "github.com/linnet-mesh/linnet/internal/namer/curator"      // io.l5d.curator (ZooKeeper, Curator service discovery)
	_ "github.com/linnet-mesh/linnet/internal/namer/k8s"          // io.l5d.k8s, .ns, .external, .daemonset, .localnode
	_ "github.com/linnet-mesh/linnet/internal/namer/serversets"   // io.l5d.serversets, io.l5d.zkLeader (ZooKeeper)
	_ "github.com/linnet-mesh/linnet/internal/namerd/mesh"        // io.l5d.mesh (namerd interface and interpreter; gRPC)
	_ "github.com/linnet-mesh/linnet/internal/storage/consul"     // io.l5d.consul (namerd)
	_ "github.com/linnet-mesh/linnet/internal/storage/etcd"       // io.l5d.etcd
	_ "github.com/linnet-mesh/linnet/internal/storage/k8s"        // io.l5d.k8s (namerd)
	_ "github.com/linnet-mesh/linnet/internal/storage/zk"         // io.l5d.zk (namerd, ZooKeeper)
)
