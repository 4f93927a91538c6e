//go:build tools

// Package tools pins the commands the Kubernetes integration tests build:
// scripts/k8s-apiserver.sh runs `go build` on them inside this module.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
