package metrics

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Totals are problemhook's counters as one replica has counted them since
// it started.
type Totals struct {
	Notifications NotificationTotals `json:"notifications"`
	Actions       ActionTotals       `json:"actions"`
	Polls         PollTotals         `json:"polls"`
}

// NotificationTotals are the receiver's answers by result.
type NotificationTotals struct {
	Received  int64 `json:"received"`
	Stored    int64 `json:"stored"`
	Duplicate int64 `json:"duplicate"`
	Ignored   int64 `json:"ignored"`
	Rejected  int64 `json:"rejected"`
	Throttled int64 `json:"throttled"`
	Shed      int64 `json:"shed"`
	Failed    int64 `json:"failed"`
}

// ActionTotals are the action runs that ended, by result. Reconcilers
// run on the leader, so only the leader's are not zero.
type ActionTotals struct {
	Succeeded int64 `json:"succeeded"`
	Failed    int64 `json:"failed"`
	Stopped   int64 `json:"stopped"`
	Muted     int64 `json:"muted"`
	Skipped   int64 `json:"skipped"`
}

// PollTotals are the catch-up polls and what they recorded.
type PollTotals struct {
	Succeeded int64 `json:"succeeded"`
	Failed    int64 `json:"failed"`
	Recorded  int64 `json:"recorded"`
}

// ReadTotals sums problemhook's counters from g (the manager's registry,
// or a test's) over all their other labels.
func ReadTotals(g prometheus.Gatherer) (Totals, error) {
	var t Totals
	families, err := g.Gather()
	if err != nil {
		return t, fmt.Errorf("reading metrics: %w", err)
	}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			label := func(name string) string {
				for _, l := range m.GetLabel() {
					if l.GetName() == name {
						return l.GetValue()
					}
				}
				return ""
			}
			t.add(f.GetName(), int64(m.GetCounter().GetValue()), label)
		}
	}
	return t, nil
}

// add counts v of the metric named name, whose labels label reads.
func (t *Totals) add(name string, v int64, label func(string) string) {
	switch name {
	case ReceiverNotificationsName:
		n := &t.Notifications
		n.Received += v
		switch label("result") {
		case ResultCreated:
			n.Stored += v
		case ResultDuplicate:
			n.Duplicate += v
		case ResultIgnored:
			n.Ignored += v
		case ResultRejected:
			n.Rejected += v
		case ResultThrottled:
			n.Throttled += v
		case ResultShed:
			n.Shed += v
		case ResultFailed:
			n.Failed += v
		}
	case ActionsName:
		switch label("result") {
		case ActionSucceeded:
			t.Actions.Succeeded += v
		case ActionFailed:
			t.Actions.Failed += v
		case ActionStopped:
			t.Actions.Stopped += v
		case ActionMuted:
			t.Actions.Muted += v
		case ActionSkipped:
			t.Actions.Skipped += v
		}
	case PollsName:
		if label("result") == PollSucceeded {
			t.Polls.Succeeded += v
		} else {
			t.Polls.Failed += v
		}
	case PollRecordedEventsName:
		t.Polls.Recorded += v
	}
}
