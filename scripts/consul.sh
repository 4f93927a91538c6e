#!/bin/sh
# Builds the Consul agent (the release pinned in
# internal/namer/consul/consultest/tools/go.mod) into a cache folder that the
# Consul namer and storage tests look in, and reuses it when it is already
# there. Cold, this takes ~3.5 min on 2 cores, so `make deps`
# (scripts/test-deps.sh) starts it in the background and the tests wait for
# the binary (bounded by $LINNET_CONSUL_WAIT).
#
#   scripts/consul.sh          build (or reuse) and print the folder
#   scripts/consul.sh --bg     same, detached; progress in $DIR/build.log
#
# The folder is $LINNET_CONSUL_BIN when set, else
# ${XDG_CACHE_HOME:-$HOME/.cache}/linnet/consul/v1.20.0.
# The build writes to a temporary name and renames into place, so a test never
# sees a half-written binary; `flock` keeps two builds from racing.
set -eu

version=v1.20.0
root=$(cd "$(dirname "$0")/.." && pwd)
dir=${LINNET_CONSUL_BIN:-${XDG_CACHE_HOME:-$HOME/.cache}/linnet/consul/$version}
mkdir -p "$dir"

if [ "${1:-}" = "--bg" ]; then
	if [ -x "$dir/consul" ]; then
		echo "consul: $dir/consul is already built"
		exit 0
	fi
	nohup "$0" >"$dir/build.log" 2>&1 </dev/null &
	echo "consul: building in the background into $dir (log: $dir/build.log)"
	exit 0
fi

build() {
	[ -x "$dir/consul" ] && return 0
	cd "$root/internal/namer/consul/consultest/tools" || return 1
	echo "consul: building consul $version into $dir"
	CGO_ENABLED=0 GOFLAGS=-mod=mod go build -buildvcs=false -trimpath -ldflags "-s -w" -o "$dir/.consul.tmp" github.com/hashicorp/consul || return 1
	mv "$dir/.consul.tmp" "$dir/consul" || return 1
}

if command -v flock >/dev/null 2>&1; then
	exec 9>"$dir/.lock"
	flock 9
fi
if ! (build); then
	echo "consul: FAILED (see the messages above)"
	exit 1
fi
echo "$dir"
