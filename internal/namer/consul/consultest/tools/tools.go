//go:build tools

// Package tools pins the command the Consul integration tests build:
// scripts/consul.sh runs `go build` on it inside this module.
package tools

import _ "github.com/hashicorp/consul"
