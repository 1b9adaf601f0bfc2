package cli

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
	"github.com/problemhook/problemhook/internal/dtconn"
	"github.com/problemhook/problemhook/internal/dynatrace"
	"github.com/problemhook/problemhook/internal/feed"
)

// Output formats of Poll.
const (
	OutputTable = "table"
	OutputJSON  = "json"
)

// DefaultRelativeTime is the time frame Poll lists when none is given.
const DefaultRelativeTime = "hour"

// eventsPageSize bounds each list of ProblemEvents: a target may keep
// many thousands.
const eventsPageSize = 500

// RelativeTimes returns the time frames Poll knows, shortest first.
func RelativeTimes() []string { return dynatrace.RelativeTimeNames() }

// PollOptions say what Poll lists and how it prints it.
type PollOptions struct {
	// Target is the NotificationTarget whose Dynatrace connection is read.
	Target types.NamespacedName
	// RelativeTime is the time frame, one of RelativeTimes; DefaultRelativeTime when empty.
	RelativeTime string
	// Output is OutputTable (the default when empty) or OutputJSON.
	Output string
	// PageSize is the number of problems asked for per page; 500, the
	// API's largest, when zero.
	PageSize int
}

// validate checks the options.
func (o *PollOptions) validate() error {
	if _, err := o.from(); err != nil {
		return err
	}
	switch o.Output {
	case "", OutputTable, OutputJSON:
	default:
		return fmt.Errorf("unknown output format %q: use %s or %s", o.Output, OutputTable, OutputJSON)
	}
	if o.Target.Namespace == "" || o.Target.Name == "" {
		return errors.New("the target's namespace and name are required")
	}
	return nil
}

// from is the API's from parameter for the time frame.
func (o *PollOptions) from() (string, error) {
	return dynatrace.FromRelativeTime(cmp.Or(o.RelativeTime, DefaultRelativeTime))
}

// Poll lists the problems of the time frame opts selects through the
// Dynatrace connection of opts.Target, newest first, and prints them to
// out with the problem states problemhook has recorded as ProblemEvents of
// that target. It reads the target, its token Secret and its events
// through c.
func Poll(ctx context.Context, c client.Reader, opts PollOptions, out io.Writer) error {
	if err := opts.validate(); err != nil {
		return err
	}
	from, _ := opts.from()
	target, err := getTarget(ctx, c, opts.Target)
	if err != nil {
		return err
	}
	if target.Spec.Dynatrace == nil {
		return fmt.Errorf("NotificationTarget %s %w: poll reads the problems through it", opts.Target, dtconn.ErrNoConnection)
	}
	dc, err := (&dtconn.Clients{}).For(ctx, c, target)
	if err != nil {
		return err
	}
	problems, listErr := dc.ListProblems(ctx, dynatrace.ListOptions{
		From:     from,
		Sort:     "-startTime",
		PageSize: cmp.Or(opts.PageSize, dynatrace.MaxPageSize),
	})
	// With too many pages the problems read so far are still worth showing.
	if listErr != nil && !errors.Is(listErr, dynatrace.ErrPageLimit) {
		return fmt.Errorf("NotificationTarget %s: %w", opts.Target, listErr)
	}
	events, err := targetEvents(ctx, c, target)
	if err != nil {
		return err
	}
	rows := feed.Rows(target, problems, events)
	if opts.Output == OutputJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		err = enc.Encode(rows)
	} else {
		err = printTable(out, rows, from)
	}
	if err != nil {
		return fmt.Errorf("writing the problems: %w", err)
	}
	return listErr
}

// targetEvents lists target's ProblemEvents, a page at a time: a target
// may keep many thousands.
func targetEvents(ctx context.Context, c client.Reader, target *problemhookv1alpha1.NotificationTarget) ([]problemhookv1alpha1.ProblemEvent, error) {
	var events []problemhookv1alpha1.ProblemEvent
	next := ""
	for {
		var list problemhookv1alpha1.ProblemEventList
		err := c.List(ctx, &list, client.InNamespace(target.Namespace),
			client.MatchingLabels{problemhookv1alpha1.LabelTarget: target.Name},
			client.Limit(eventsPageSize), client.Continue(next))
		if err != nil {
			return nil, fmt.Errorf("listing the ProblemEvents of NotificationTarget %s/%s: %w", target.Namespace, target.Name, err)
		}
		events = append(events, list.Items...)
		if next = list.Continue; next == "" {
			return events, nil
		}
	}
}

// printTable writes rows as a table, or says there is nothing to show.
func printTable(out io.Writer, rows []feed.Row, from string) error {
	if len(rows) == 0 {
		_, err := fmt.Fprintf(out, "No problems from %s to now.\n", from)
		return err
	}
	w := tabwriter.NewWriter(out, 0, 8, 3, ' ', 0)
	_, _ = fmt.Fprintln(w, "PROBLEM\tSTATUS\tSEVERITY\tIMPACT\tSTARTED\tENDED\tTITLE\tRECORDED")
	for _, r := range rows {
		ended := "-"
		if r.End != nil {
			ended = r.End.Format(time.RFC3339)
		}
		var recorded []string
		for _, ev := range r.Events {
			if !slices.Contains(recorded, ev.State) {
				recorded = append(recorded, ev.State)
			}
		}
		_, _ = fmt.Fprintln(w, strings.Join([]string{
			cell(r.DisplayID), cell(r.Status), cell(r.Severity), cell(r.Impact), r.Start.Format(time.RFC3339), ended, cell(r.Title), cell(strings.Join(recorded, ",")),
		}, "\t"))
	}
	return w.Flush()
}

// cell is s fit for a table cell: on one line, without tabs, "-" when empty.
func cell(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if s == "" {
		return "-"
	}
	return s
}
