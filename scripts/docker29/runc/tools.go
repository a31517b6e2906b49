//go:build tools

// Package tools pins runc so `go mod tidy` records its dependencies.
package tools

import (
	_ "github.com/opencontainers/runc"
)
