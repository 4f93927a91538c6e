// Command memfloor measures the resident-memory floor that the libraries
// Linnet's cluster plug-ins build on set for any process that links them.
//
// It links client-go's REST client and informer cache (the Kubernetes
// namers, ingress and storage), the etcd v3 client (namerd's io.l5d.etcd)
// and gRPC (io.l5d.mesh), does nothing, and prints its own peak resident
// set. Go runs the init of every linked package before main, and the
// kernel maps the 64 KB around every page those inits touch, so this
// figure is paid by every process of a binary that links these libraries,
// whatever its configuration uses. scripts/bench.sh prints it beside
// Linnet's own figures (docs/performance.md, seventh pass).
//
//	go build -o /tmp/memfloor ./scripts/memfloor && /tmp/memfloor
package main

import (
	"bufio"
	"fmt"
	"os"
	"strings"

	_ "go.etcd.io/etcd/client/v3"
	_ "google.golang.org/grpc"
	_ "k8s.io/client-go/rest"
	_ "k8s.io/client-go/tools/cache"
)

func main() {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		fmt.Fprintln(os.Stderr, "memfloor:", err)
		os.Exit(1)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		for _, k := range []string{"VmHWM:", "RssAnon:", "RssFile:"} {
			if strings.HasPrefix(line, k) {
				fmt.Println(strings.Join(strings.Fields(line), " "))
			}
		}
	}
}
