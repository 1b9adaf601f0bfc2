package routing_test

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
	"github.com/problemhook/problemhook/internal/routing"
)

func mutedRoute(t *testing.T, intervals ...problemhookv1alpha1.TimeInterval) *routing.Route {
	t.Helper()
	spec := problemhookv1alpha1.IntegrationRouteSpec{MuteTimeIntervals: intervals,
		Actions: []problemhookv1alpha1.Action{{Name: "hook", HTTP: &problemhookv1alpha1.HTTPAction{URL: "https://example.com", Body: "{}"}}}}
	r, err := routing.Compile(&spec)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestMuteTimeIntervals(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	at := func(loc *time.Location, value string) time.Time {
		t.Helper()
		tm, err := time.ParseInLocation("2006-01-02 15:04", value, loc)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	night := problemhookv1alpha1.TimeInterval{Location: "Europe/Berlin",
		Times: []problemhookv1alpha1.TimeRange{{StartTime: "22:00", EndTime: "24:00"}, {StartTime: "00:00", EndTime: "06:00"}}}
	for _, tc := range []struct {
		name     string
		interval problemhookv1alpha1.TimeInterval
		at       time.Time
		muted    bool
	}{
		{"a night in Berlin, before midnight", night, at(berlin, "2026-12-07 23:30"), true},
		{"a night in Berlin, after midnight", night, at(berlin, "2026-12-08 05:59"), true},
		{"a night in Berlin, its end is not in it", night, at(berlin, "2026-12-08 06:00"), false},
		{"a time given in UTC is read in Berlin", night, at(time.UTC, "2026-12-07 22:30"), true},
		{"05:30 UTC is 06:30 in Berlin, after the night", night, at(time.UTC, "2026-12-07 05:30"), false},
		{"a weekend that wraps around the week", problemhookv1alpha1.TimeInterval{Weekdays: []string{"Saturday:Monday"}}, at(time.UTC, "2026-12-07 12:00"), true},
		{"a weekend that wraps around the week, on a Tuesday", problemhookv1alpha1.TimeInterval{Weekdays: []string{"saturday:monday"}}, at(time.UTC, "2026-12-08 12:00"), false},
		{"the last three days of a short month", problemhookv1alpha1.TimeInterval{DaysOfMonth: []string{"-3:-1"}}, at(time.UTC, "2027-02-26 12:00"), true},
		{"the last three days, not before", problemhookv1alpha1.TimeInterval{DaysOfMonth: []string{"-3:-1"}}, at(time.UTC, "2027-02-25 12:00"), false},
		{"days past a month's end hold none of it", problemhookv1alpha1.TimeInterval{DaysOfMonth: []string{"30:31"}}, at(time.UTC, "2027-02-28 12:00"), false},
		{"months by name and number", problemhookv1alpha1.TimeInterval{Months: []string{"january:march", "12"}}, at(time.UTC, "2026-12-31 12:00"), true},
		{"years", problemhookv1alpha1.TimeInterval{Years: []string{"2027:2028"}}, at(time.UTC, "2026-12-31 12:00"), false},
		{"every list must hold it", problemhookv1alpha1.TimeInterval{Weekdays: []string{"monday"}, Times: []problemhookv1alpha1.TimeRange{{StartTime: "09:00", EndTime: "17:00"}}},
			at(time.UTC, "2026-12-07 17:00"), false},
		{"an empty interval holds every time", problemhookv1alpha1.TimeInterval{}, at(time.UTC, "2026-12-07 17:00"), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			muted, i := mutedRoute(t, tc.interval).Muted(tc.at)
			NewWithT(t).Expect(muted).To(Equal(tc.muted))
			if muted {
				NewWithT(t).Expect(i).To(Equal(0))
			}
		})
	}
}

func TestMutedUntil(t *testing.T) {
	g := NewWithT(t)
	berlin, err := time.LoadLocation("Europe/Berlin")
	g.Expect(err).NotTo(HaveOccurred())
	r := mutedRoute(t,
		problemhookv1alpha1.TimeInterval{Location: "Europe/Berlin", Times: []problemhookv1alpha1.TimeRange{{StartTime: "22:00", EndTime: "24:00"}}},
		problemhookv1alpha1.TimeInterval{Location: "Europe/Berlin", Times: []problemhookv1alpha1.TimeRange{{StartTime: "00:00", EndTime: "06:00"}}})
	from := time.Date(2026, 12, 7, 23, 30, 15, 0, berlin)
	muted, i := r.Muted(from)
	g.Expect(muted).To(BeTrue())
	g.Expect(i).To(Equal(0))
	g.Expect(r.MutedUntil(from)).To(BeTemporally("==", time.Date(2026, 12, 8, 6, 0, 0, 0, berlin)), "across midnight, from one interval to the next")

	always := mutedRoute(t, problemhookv1alpha1.TimeInterval{})
	g.Expect(always.MutedUntil(from).IsZero()).To(BeTrue(), "muted for more than a week")
}

func TestInvalidMuteTimeIntervalsNameTheField(t *testing.T) {
	for _, tc := range []struct {
		interval problemhookv1alpha1.TimeInterval
		want     string
	}{
		{problemhookv1alpha1.TimeInterval{Weekdays: []string{"monday", "funday"}}, `spec.muteTimeIntervals[0].weekdays[1]: "funday" is not a weekday`},
		{problemhookv1alpha1.TimeInterval{Weekdays: []string{"1"}}, `spec.muteTimeIntervals[0].weekdays[0]: "1" is not a weekday`},
		{problemhookv1alpha1.TimeInterval{DaysOfMonth: []string{"0"}}, `spec.muteTimeIntervals[0].daysOfMonth[0]: "0" is not a day of the month (1 to 31, or -31 to -1 from its end)`},
		{problemhookv1alpha1.TimeInterval{DaysOfMonth: []string{"-3:5"}}, `spec.muteTimeIntervals[0].daysOfMonth[0]: "-3:5": a range that begins from the month's end must end from it too`},
		{problemhookv1alpha1.TimeInterval{DaysOfMonth: []string{"10:2"}}, `spec.muteTimeIntervals[0].daysOfMonth[0]: "10:2" ends before it begins`},
		{problemhookv1alpha1.TimeInterval{Months: []string{"13"}}, `spec.muteTimeIntervals[0].months[0]: "13" is not a month`},
		{problemhookv1alpha1.TimeInterval{Months: []string{"march:january"}}, `spec.muteTimeIntervals[0].months[0]: "march:january" ends before it begins`},
		{problemhookv1alpha1.TimeInterval{Years: []string{"twenty"}}, `spec.muteTimeIntervals[0].years[0]: "twenty" is not a year`},
		{problemhookv1alpha1.TimeInterval{Times: []problemhookv1alpha1.TimeRange{{StartTime: "18:00", EndTime: "06:00"}}},
			`spec.muteTimeIntervals[0].times[0]: startTime 18:00 is not before endTime 06:00`},
		{problemhookv1alpha1.TimeInterval{Times: []problemhookv1alpha1.TimeRange{{StartTime: "7:00", EndTime: "08:00"}}},
			`spec.muteTimeIntervals[0].times[0]: startTime: "7:00" is not a time of the day (HH:MM, 00:00 to 24:00)`},
		{problemhookv1alpha1.TimeInterval{Location: "Mars/Olympus"}, `spec.muteTimeIntervals[0].location: "Mars/Olympus" is not an IANA time zone such as Europe/Berlin`},
	} {
		t.Run(tc.want, func(t *testing.T) {
			g := NewWithT(t)
			spec := problemhookv1alpha1.IntegrationRouteSpec{MuteTimeIntervals: []problemhookv1alpha1.TimeInterval{tc.interval},
				Actions: []problemhookv1alpha1.Action{{Name: "hook", HTTP: &problemhookv1alpha1.HTTPAction{URL: "https://example.com", Body: "{}"}}}}
			_, err := routing.Compile(&spec)
			g.Expect(err).To(MatchError(tc.want))
			var fe *routing.FieldError
			g.Expect(err).To(BeAssignableToTypeOf(fe))
		})
	}
}
