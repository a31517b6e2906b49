//go:build tools

// Package tools pins the Engine 29 daemon commands so `go mod tidy` records their dependencies.
package tools

import (
	_ "github.com/moby/moby/v2/cmd/docker-proxy"
	_ "github.com/moby/moby/v2/cmd/dockerd"
)
