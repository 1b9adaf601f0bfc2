//go:build !linux

package node

import (
	"context"
	"errors"
	"io"
)

var errLinuxOnly = errors.New("a node runs on Linux only")

// Up refuses: a node needs Linux's cgroups, mounts and network namespaces.
func Up(context.Context, Options) error { return errLinuxOnly }

// Down has nothing to take down where no node can run.
func Down(context.Context, string, io.Writer) error { return nil }
