// Command local-run is what `make run` runs: package localrun
// (test/localrun), with its flags.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/problemhook/problemhook/test/localrun"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := localrun.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
