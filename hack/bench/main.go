// Command bench is what `make bench` runs: the benchmark of package bench
// (test/bench), with its flags.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/problemhook/problemhook/test/bench"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := bench.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
