// Command fuzz runs every fuzz target of the module for -fuzztime each,
// one after the other, and fails when any of them finds a crasher.
// `make fuzz` runs it from the root of the module:
//
//	go run ./hack/fuzz -fuzztime 50000x
//
// The targets are found, not listed here (test/harness/fuzz.Targets), so a
// new FuzzXxx in any package's tests is run without naming it anywhere.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"

	"github.com/problemhook/problemhook/test/harness/fuzz"
)

func main() {
	fuzzTime := flag.String("fuzztime", "50000x", "How much each target runs: a count of executions (50000x) or a duration (10m).")
	only := flag.String("run", "", "Run only the targets whose name contains this text.")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := run(ctx, *fuzzTime, *only)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(ctx context.Context, fuzzTime, only string) error {
	targets, err := fuzz.Targets(ctx, ".")
	if err != nil {
		return err
	}
	if len(targets) == 0 {
		return fmt.Errorf("no fuzz targets found in the module")
	}
	var failed []string
	for _, t := range targets {
		if !strings.Contains(t.Name, only) {
			continue
		}
		fmt.Printf("Fuzzing %s for %s\n", t, fuzzTime)
		out, err := t.Run(ctx, ".", fuzzTime)
		os.Stdout.Write(out)
		if err != nil {
			failed = append(failed, t.String())
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d fuzz targets failed: %s", len(failed), strings.Join(failed, ", "))
	}
	return nil
}
