//go:build linnet_slim

package plugins

import (
	"github.com/linnet-mesh/linnet/internal/config"
	"github.com/linnet-mesh/linnet/internal/naming"
	"github.com/linnet-mesh/linnet/internal/storage"
)

func init() {
	// The Kubernetes, Consul, ZooKeeper and io.l5d.mesh kinds are declared unsupported where their
	// extension points are; etcd is not, as the standard build always has it.
	config.RegisterUnsupported[storage.Config]("io.l5d.etcd")
	// io.l5d.curator is implemented only in the standard build (cluster.go).
	config.RegisterUnsupported[naming.NamerConfig]("io.l5d.curator")
	config.SetBuildNote("this linnet is a slim build, made with -tags linnet_slim, which leaves out the Kubernetes, etcd, Consul, ZooKeeper and io.l5d.mesh (gRPC) plug-ins; use the standard build")
}
