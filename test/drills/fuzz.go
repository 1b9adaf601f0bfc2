//go:build linux

package drills

import (
	"context"
	"fmt"
	"strings"

	"github.com/problemhook/problemhook/test/harness/fuzz"
)

// fuzzTargets runs each fuzz target of the module (the payload parsers,
// the routes' templates and CEL expressions, and any target added
// since: they are found, not listed) for fuzzTime. A crasher fails the drill and is kept by go
// test under the package's testdata/fuzz, where every later `go test`
// runs it.
func fuzzTargets(ctx context.Context, root, fuzzTime string) result {
	var r result
	targets, err := fuzz.Targets(ctx, root)
	if err != nil {
		r.Failures = append(r.Failures, err.Error())
		return r
	}
	if len(targets) == 0 {
		r.Failures = append(r.Failures, "no fuzz targets found in the module")
	}
	names := make([]string, 0, len(targets))
	for _, t := range targets {
		names = append(names, t.Name)
		if out, err := t.Run(ctx, root, fuzzTime); err != nil {
			r.Failures = append(r.Failures, fmt.Sprintf("%v\n%s", err, tailLines(string(out), 20)))
		}
	}
	r.Counts = fmt.Sprintf("%s, %s each", strings.Join(names, ", "), fuzzTime)
	return r
}
