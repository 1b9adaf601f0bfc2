package routing

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
)

// A route's muteTimeIntervals mean what Alertmanager's time_intervals
// mean: the same fields, names and ranges, negative days of the month
// counted from its end, weekday ranges that wrap around the week's end
// (friday:monday), and times of the day from their start up to, not
// including, their end. Alertmanager's own package is not imported: it
// would bring Alertmanager's module, whose requirements move a dozen of
// this module's, for two hundred lines.

// mutedLookahead bounds how far ahead MutedUntil looks for the end of a
// mute: a mute that lasts longer is reported as such.
const mutedLookahead = 7 * 24 * time.Hour

// muteInterval is one parsed TimeInterval: a time is in it when each list
// that is not nil holds it.
type muteInterval struct {
	minutes                       []span // minutes of the day, end excluded
	weekdays, days, months, years []span
	location                      *time.Location
}

// span is an inclusive range of numbers.
type span struct{ begin, end int }

var (
	weekdayNames = map[string]int{"sunday": 0, "monday": 1, "tuesday": 2, "wednesday": 3, "thursday": 4, "friday": 5, "saturday": 6}
	monthNames   = map[string]int{"january": 1, "february": 2, "march": 3, "april": 4, "may": 5, "june": 6,
		"july": 7, "august": 8, "september": 9, "october": 10, "november": 11, "december": 12}
)

// compileMutes parses the route's muteTimeIntervals, naming the field of
// each value it refuses.
func compileMutes(intervals []problemhookv1alpha1.TimeInterval) ([]muteInterval, []error) {
	var (
		out  []muteInterval
		errs []error
	)
	for i, in := range intervals {
		field := fmt.Sprintf("spec.muteTimeIntervals[%d]", i)
		fail := func(f string, j int, err error) {
			errs = append(errs, &FieldError{Field: fmt.Sprintf("%s.%s[%d]", field, f, j), Reason: problemhookv1alpha1.ReasonInvalidSpec, Err: err})
		}
		var mi muteInterval
		for j, t := range in.Times {
			begin, err1 := minuteOfDay(t.StartTime)
			end, err2 := minuteOfDay(t.EndTime)
			switch {
			case err1 != nil:
				fail("times", j, fmt.Errorf("startTime: %w", err1))
			case err2 != nil:
				fail("times", j, fmt.Errorf("endTime: %w", err2))
			case begin >= end:
				fail("times", j, fmt.Errorf("startTime %s is not before endTime %s", t.StartTime, t.EndTime))
			default:
				mi.minutes = append(mi.minutes, span{begin, end})
			}
		}
		for _, list := range []struct {
			name   string
			values []string
			into   *[]span
			parse  func(string) (span, error)
		}{
			{"weekdays", in.Weekdays, &mi.weekdays, parseRange(weekdayNames, 1, 0, "weekday")},
			{"daysOfMonth", in.DaysOfMonth, &mi.days, parseDays},
			{"months", in.Months, &mi.months, parseRange(monthNames, 1, 12, "month")},
			{"years", in.Years, &mi.years, parseRange(nil, 1, 9999, "year")},
		} {
			for j, v := range list.values {
				s, err := list.parse(strings.ToLower(v))
				if err != nil {
					fail(list.name, j, err)
					continue
				}
				*list.into = append(*list.into, s)
			}
		}
		if in.Location != "" {
			loc, err := time.LoadLocation(in.Location)
			if err != nil {
				errs = append(errs, &FieldError{Field: field + ".location", Reason: problemhookv1alpha1.ReasonInvalidSpec,
					Err: fmt.Errorf("%q is not an IANA time zone such as Europe/Berlin", in.Location)})
			}
			mi.location = loc
		}
		out = append(out, mi)
	}
	return out, errs
}

// minuteOfDay reads HH:MM, up to 24:00.
func minuteOfDay(s string) (int, error) {
	h, m, ok := strings.Cut(s, ":")
	hours, err1 := strconv.Atoi(h)
	minutes, err2 := strconv.Atoi(m)
	if !ok || len(h) != 2 || len(m) != 2 || err1 != nil || err2 != nil || minutes > 59 || hours > 24 || hours == 24 && minutes > 0 {
		return 0, fmt.Errorf("%q is not a time of the day (HH:MM, 00:00 to 24:00)", s)
	}
	return hours*60 + minutes, nil
}

// parseRange reads a value or an inclusive range of values, each a name of
// names, or a number from lo to hi when lo <= hi (weekdays are named only).
func parseRange(names map[string]int, lo, hi int, what string) func(string) (span, error) {
	one := func(s string) (int, error) {
		if n, ok := names[s]; ok {
			return n, nil
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < lo || n > hi {
			return 0, fmt.Errorf("%q is not a %s", s, what)
		}
		return n, nil
	}
	return func(s string) (span, error) {
		sp, err := parseSpan(s, one)
		// Weekdays wrap around the week's end; nothing else does.
		if err == nil && sp.end < sp.begin && what != "weekday" {
			return span{}, fmt.Errorf("%q ends before it begins", s)
		}
		return sp, err
	}
}

// parseSpan reads a value or an inclusive range of values, begin:end, each
// read by one.
func parseSpan(s string, one func(string) (int, error)) (span, error) {
	b, e, isRange := strings.Cut(s, ":")
	begin, err := one(b)
	if err != nil {
		return span{}, err
	}
	end := begin
	if isRange {
		if end, err = one(e); err != nil {
			return span{}, err
		}
	}
	return span{begin, end}, nil
}

// parseDays reads a day of the month or an inclusive range of days, from 1
// to 31, or from -31 to -1 counted from the month's last day.
func parseDays(s string) (span, error) {
	one := func(d string) (int, error) {
		n, err := strconv.Atoi(d)
		if err != nil || n == 0 || n < -31 || n > 31 {
			return 0, fmt.Errorf("%q is not a day of the month (1 to 31, or -31 to -1 from its end)", d)
		}
		return n, nil
	}
	sp, err := parseSpan(s, one)
	if err != nil {
		return span{}, err
	}
	begin, end := sp.begin, sp.end
	// As Alertmanager: a range that begins from the end ends from it too,
	// and one that ends before it begins in a month of 28 days always does.
	if begin < 0 && end > 0 {
		return span{}, fmt.Errorf("%q: a range that begins from the month's end must end from it too", s)
	}
	at := func(d int) int {
		if d < 0 {
			return 28 + d + 1
		}
		return d
	}
	if at(begin) > at(end) {
		return span{}, fmt.Errorf("%q ends before it begins", s)
	}
	return span{begin, end}, nil
}

// contains reports whether the interval holds t.
func (mi muteInterval) contains(t time.Time) bool {
	if mi.location != nil {
		t = t.In(mi.location)
	} else {
		t = t.UTC()
	}
	minute := t.Hour()*60 + t.Minute()
	if mi.minutes != nil && !anySpan(mi.minutes, func(s span) bool { return minute >= s.begin && minute < s.end }) {
		return false
	}
	if mi.weekdays != nil && !anySpan(mi.weekdays, func(s span) bool {
		d := int(t.Weekday())
		if s.begin <= s.end {
			return d >= s.begin && d <= s.end
		}
		return d >= s.begin || d <= s.end
	}) {
		return false
	}
	if mi.days != nil {
		last := time.Date(t.Year(), t.Month()+1, 0, 12, 0, 0, 0, t.Location()).Day()
		day := func(d int) int {
			if d < 0 {
				return last + d + 1
			}
			return d
		}
		if !anySpan(mi.days, func(s span) bool {
			begin, end := day(s.begin), min(day(s.end), last)
			return begin <= last && t.Day() >= begin && t.Day() <= end
		}) {
			return false
		}
	}
	if mi.months != nil && !anySpan(mi.months, func(s span) bool { return int(t.Month()) >= s.begin && int(t.Month()) <= s.end }) {
		return false
	}
	if mi.years != nil && !anySpan(mi.years, func(s span) bool { return t.Year() >= s.begin && t.Year() <= s.end }) {
		return false
	}
	return true
}

func anySpan(spans []span, in func(span) bool) bool {
	for _, s := range spans {
		if in(s) {
			return true
		}
	}
	return false
}

// Muted reports whether one of the route's muteTimeIntervals holds t, and
// which.
func (r *Route) Muted(t time.Time) (bool, int) {
	for i, mi := range r.mutes {
		if mi.contains(t) {
			return true, i
		}
	}
	return false, -1
}

// MutedUntil returns when the mute that holds t ends: the first minute
// after t that no interval holds, or the zero time when that is more than
// mutedLookahead away.
func (r *Route) MutedUntil(t time.Time) time.Time {
	end := t.Add(mutedLookahead)
	for next := t.Truncate(time.Minute).Add(time.Minute); !next.After(end); next = next.Add(time.Minute) {
		if muted, _ := r.Muted(next); !muted {
			return next
		}
	}
	return time.Time{}
}
