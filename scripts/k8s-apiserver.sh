#!/bin/sh
# Builds kube-apiserver and kubectl (the release pinned in test/k8s/tools/go.mod)
# into a cache folder that the Kubernetes integration tests look in, and reuses
# them when they are already there. Cold, this takes ~5.5 min on 2 cores, so
# `make deps` starts it in the background and the tests wait for the binaries.
#
#   scripts/k8s-apiserver.sh          build (or reuse) and print the folder
#   scripts/k8s-apiserver.sh --bg     same, detached; progress in $DIR/build.log
#
# The folder is $LINNET_K8S_BIN when set, else ${XDG_CACHE_HOME:-$HOME/.cache}/linnet/k8s/v1.37.2.
# A build writes to temporary names and renames into place, so a test never
# sees a half-written binary; `flock` keeps two builds from racing.
set -eu

version=v1.37.2
minor=37
root=$(cd "$(dirname "$0")/.." && pwd)
dir=${LINNET_K8S_BIN:-${XDG_CACHE_HOME:-$HOME/.cache}/linnet/k8s/$version}
mkdir -p "$dir"

if [ "${1:-}" = "--bg" ]; then
	nohup "$0" >"$dir/build.log" 2>&1 </dev/null &
	echo "k8s-apiserver: building in the background into $dir (log: $dir/build.log)"
	exit 0
fi

build() {
	cd "$root/test/k8s/tools" || return 1
	ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$version -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor"
	for cmd in kube-apiserver kubectl; do
		[ -x "$dir/$cmd" ] && continue
		echo "k8s-apiserver: building $cmd $version into $dir"
		CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags "$ldflags" -o "$dir/.$cmd.tmp" "k8s.io/kubernetes/cmd/$cmd" || return 1
		mv "$dir/.$cmd.tmp" "$dir/$cmd" || return 1
	done
}

if command -v flock >/dev/null 2>&1; then
	exec 9>"$dir/.lock"
	flock 9
fi
if ! (build); then
	echo "k8s-apiserver: FAILED (see the messages above)"
	exit 1
fi
echo "$dir"
