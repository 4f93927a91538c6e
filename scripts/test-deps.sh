#!/bin/sh
# Installs what the test suite needs when it is missing: Debian packages with
# apt-get (as root, or through sudo) and Go tools with go install. Idempotent:
# a second run installs nothing.
set -eu

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

if [ -n "$need_pkgs" ]; then
	SUDO=""
	[ "$(id -u)" = 0 ] || SUDO="sudo"
	echo "test-deps: installing$need_pkgs"
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $need_pkgs >/dev/null
	# Debian starts these as services; the tests start their own on free ports.
	for svc in etcd prometheus prometheus-node-exporter; do
		$SUDO systemctl stop "$svc" >/dev/null 2>&1 || $SUDO service "$svc" stop >/dev/null 2>&1 || true
	done
fi
