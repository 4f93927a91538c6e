#!/bin/sh
# Installs what the test suite needs when it is missing: Debian packages with
# apt-get (as root, or through sudo) and Go tools with go install. Idempotent:
# a second run installs nothing.
set -eu

# kube-apiserver and kubectl for the Kubernetes tests take minutes to build
# cold: start that first, in the background; the tests wait for the binaries
# (scripts/k8s-apiserver.sh; a no-op when they are already cached).
"$(dirname "$0")/k8s-apiserver.sh" --bg
# The Consul agent for the io.l5d.consul namer and storage tests (~3.5 min
# cold; scripts/consul.sh, the same way).
"$(dirname "$0")/consul.sh" --bg

need_pkgs=""
have() { command -v "$1" >/dev/null 2>&1; }
want() { # want COMMAND PACKAGE
	have "$1" || need_pkgs="$need_pkgs $2"
}

want etcd etcd-server
want etcdctl etcd-client
want chromium chromium
want promtool prometheus
want ip iproute2
want openssl openssl
want dnsmasq dnsmasq-base
# ZooKeeper for io.l5d.zk storage and the io.l5d.serversets / io.l5d.zkLeader
# namers (internal/zk/zktest runs its jars with java; no command on PATH).
[ -f /usr/share/java/zookeeper.jar ] && have java || need_pkgs="$need_pkgs zookeeper"

if [ -n "$need_pkgs" ]; then
	SUDO=""
	[ "$(id -u)" = 0 ] || SUDO="sudo"
	echo "test-deps: installing$need_pkgs"
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $need_pkgs >/dev/null
	# Debian starts these as services; the tests start their own on free ports.
	for svc in etcd prometheus prometheus-node-exporter zookeeper; do
		$SUDO systemctl stop "$svc" >/dev/null 2>&1 || $SUDO service "$svc" stop >/dev/null 2>&1 || true
	done
fi

# Go tools, installed into $(go env GOPATH)/bin (where the tests also look).
gobin="$(go env GOPATH)/bin"
want_go() { # want_go COMMAND MODULE@VERSION
	have "$1" || [ -x "$gobin/$1" ] || {
		echo "test-deps: go install $2"
		go install "$2"
	}
}

# h2spec: HTTP/2 conformance of the h2 router server (internal/proxy/h2).
# Pinned: the test compares with Go's own score under this version.
want_go h2spec github.com/summerwind/h2spec/cmd/h2spec@v2.2.1+incompatible

# grpc-go's interop client (internal/proxy/h2): its binary is named
# "client", so it is installed into a scratch GOBIN and renamed.
if ! have grpc-interop-client && [ ! -x "$gobin/grpc-interop-client" ]; then
	echo "test-deps: go install google.golang.org/grpc/interop/client@v1.85.0 (as grpc-interop-client)"
	tmpbin="$(mktemp -d)"
	GOBIN="$tmpbin" go install google.golang.org/grpc/interop/client@v1.85.0
	mkdir -p "$gobin"
	mv "$tmpbin/client" "$gobin/grpc-interop-client"
	rmdir "$tmpbin"
fi
