//go:build linux

// Command drills is what `make drills` runs: the fault drills of package
// drills (test/drills), with their flags.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/problemhook/problemhook/test/drills"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := drills.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
