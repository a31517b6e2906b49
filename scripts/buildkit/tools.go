//go:build tools

// Package tools pins the BuildKit commands scripts/build-buildkit.sh builds (buildkitd, buildctl)
// at the versions of this module's go.mod.
package tools

import (
	_ "github.com/moby/buildkit/cmd/buildctl"
	_ "github.com/moby/buildkit/cmd/buildkitd"
)
