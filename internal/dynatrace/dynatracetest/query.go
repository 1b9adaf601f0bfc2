package dynatracetest

import (
	"cmp"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/problemhook/problemhook/internal/dynatrace"
)

var (
	severityLevels = []string{"AVAILABILITY", "ERROR", "PERFORMANCE", "RESOURCE_CONTENTION", "CUSTOM_ALERT", "MONITORING_UNAVAILABLE"}
	impactLevels   = []string{"APPLICATION", "SERVICES", "INFRASTRUCTURE", "ENVIRONMENT"}
)

// problemFilter reads the time frame and the selectors of a listing.
func (s *Server) problemFilter(query url.Values) (func(dynatrace.Problem) bool, *apiError) {
	now := s.now()
	from, e := timeParam(query, "from", "now-2h", now)
	if e != nil {
		return nil, e
	}
	to, e := timeParam(query, "to", "now", now)
	if e != nil {
		return nil, e
	}
	if from.After(to) {
		return nil, badRequest("Constraints violated.", queryViolation("from", "must not be after to"))
	}
	problemMatch, err := problemSelector(query.Get("problemSelector"))
	if err != nil {
		return nil, badRequest("Constraints violated.", queryViolation("problemSelector", err.Error()))
	}
	entityMatch, err := entitySelector(query.Get("entitySelector"))
	if err != nil {
		return nil, badRequest("Constraints violated.", queryViolation("entitySelector", err.Error()))
	}
	inFrame := func(ms int64) bool {
		t := time.UnixMilli(ms)
		return ms >= 0 && !t.Before(from) && !t.After(to)
	}
	return func(p dynatrace.Problem) bool {
		// Listed when it starts or ends in the frame; an open problem's end is -1.
		return (inFrame(p.StartTime) || inFrame(p.EndTime)) && problemMatch(p) && entityMatch(p)
	}, nil
}

func timeParam(query url.Values, name, def string, now time.Time) (time.Time, *apiError) {
	v := cmp.Or(query.Get(name), def)
	t, err := parseTime(v, now)
	if err != nil {
		return time.Time{}, badRequest("Constraints violated.", queryViolation(name, err.Error()))
	}
	return t, nil
}

// parseTime reads a time as the API does: now-<n><unit> (unit m, h, d, w, M
// or y), "now", ISO-8601 or epoch milliseconds.
func parseTime(v string, now time.Time) (time.Time, error) {
	if v == "now" {
		return now, nil
	}
	if rel, ok := strings.CutPrefix(v, "now-"); ok {
		return relativeTime(rel, now)
	}
	if ms, err := strconv.ParseInt(v, 10, 64); err == nil && ms >= 0 {
		return time.UnixMilli(ms), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a time: use now-<n><m|h|d|w|M|y>, ISO-8601 or epoch milliseconds", v)
}

func relativeTime(rel string, now time.Time) (time.Time, error) {
	if len(rel) < 2 {
		return time.Time{}, fmt.Errorf("%q is not a relative time", "now-"+rel)
	}
	n, err := strconv.Atoi(rel[:len(rel)-1])
	if err != nil || n < 0 {
		return time.Time{}, fmt.Errorf("%q is not a relative time (alignments are not supported by this fake)", "now-"+rel)
	}
	switch rel[len(rel)-1] {
	case 'm':
		return now.Add(-time.Duration(n) * time.Minute), nil
	case 'h':
		return now.Add(-time.Duration(n) * time.Hour), nil
	case 'd':
		return now.AddDate(0, 0, -n), nil
	case 'w':
		return now.AddDate(0, 0, -7*n), nil
	case 'M':
		return now.AddDate(0, -n, 0), nil
	case 'y':
		return now.AddDate(-n, 0, 0), nil
	}
	return time.Time{}, fmt.Errorf("%q has an unknown unit: use m, h, d, w, M or y", "now-"+rel)
}

// criterion is one name("value", ...) of a selector.
type criterion struct {
	name   string
	values []string
}

// parseSelector reads a selector: criteria separated by commas, each a name
// and a list of values in parentheses, quoted ("..." with ~ escaping) or not.
func parseSelector(sel string) ([]criterion, error) {
	var out []criterion
	rest := strings.TrimSpace(sel)
	for rest != "" {
		open := strings.IndexByte(rest, '(')
		if open < 1 {
			return nil, fmt.Errorf("expected name(\"value\") at %q", rest)
		}
		c := criterion{name: strings.TrimSpace(rest[:open])}
		rest = rest[open+1:]
		for {
			v, after, err := selectorValue(strings.TrimLeft(rest, " "))
			if err != nil {
				return nil, err
			}
			c.values = append(c.values, v)
			rest = strings.TrimLeft(after, " ")
			if r, ok := strings.CutPrefix(rest, ","); ok {
				rest = r
				continue
			}
			if r, ok := strings.CutPrefix(rest, ")"); ok {
				rest = r
				break
			}
			return nil, fmt.Errorf("expected , or ) in %s(", c.name)
		}
		out = append(out, c)
		rest = strings.TrimLeft(rest, " ")
		if rest == "" {
			break
		}
		r, ok := strings.CutPrefix(rest, ",")
		if rest = strings.TrimLeft(r, " "); !ok || rest == "" {
			return nil, errors.New("criteria must be separated by single commas")
		}
	}
	return out, nil
}

// selectorValue reads one value at the start of s, and returns what follows.
func selectorValue(s string) (value, rest string, err error) {
	if !strings.HasPrefix(s, `"`) {
		end := strings.IndexAny(s, ",)")
		if end < 0 {
			return "", "", errors.New("unterminated value")
		}
		if value = strings.TrimSpace(s[:end]); value == "" {
			return "", "", errors.New("empty value")
		}
		return value, s[end:], nil
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '~':
			if i++; i == len(s) {
				return "", "", errors.New("unterminated escape")
			}
			b.WriteByte(s[i])
		case '"':
			return b.String(), s[i+1:], nil
		default:
			b.WriteByte(s[i])
		}
	}
	return "", "", errors.New("unterminated quoted value")
}

// problemSelector returns a filter for a problemSelector: every criterion
// must match, and one of its values.
func problemSelector(sel string) (func(dynatrace.Problem) bool, error) {
	criteria, err := parseSelector(sel)
	if err != nil {
		return nil, err
	}
	var tests []func(dynatrace.Problem) bool
	for _, c := range criteria {
		var field func(dynatrace.Problem) []string
		switch c.name {
		case "status":
			if err := oneOf(c, "open", "closed"); err != nil {
				return nil, err
			}
			field = func(p dynatrace.Problem) []string { return []string{p.Status} }
		case "severityLevel":
			if err := oneOf(c, severityLevels...); err != nil {
				return nil, err
			}
			field = func(p dynatrace.Problem) []string { return []string{p.SeverityLevel} }
		case "impactLevel":
			if err := oneOf(c, impactLevels...); err != nil {
				return nil, err
			}
			field = func(p dynatrace.Problem) []string { return []string{p.ImpactLevel} }
		case "problemId":
			field = func(p dynatrace.Problem) []string { return []string{p.ProblemID} }
		case "displayId":
			field = func(p dynatrace.Problem) []string { return []string{p.DisplayID} }
		case "managementZones":
			field = func(p dynatrace.Problem) []string {
				return zoneField(p, func(z dynatrace.ManagementZone) string { return z.Name })
			}
		case "managementZoneIds":
			field = func(p dynatrace.Problem) []string {
				return zoneField(p, func(z dynatrace.ManagementZone) string { return z.ID })
			}
		case "text":
			tests = append(tests, func(p dynatrace.Problem) bool {
				return slices.ContainsFunc(c.values, func(v string) bool {
					return strings.Contains(strings.ToLower(p.Title), strings.ToLower(v))
				})
			})
			continue
		default:
			return nil, fmt.Errorf("unsupported criterion %q (this fake supports status, severityLevel, impactLevel, "+
				"problemId, displayId, managementZones, managementZoneIds and text)", c.name)
		}
		tests = append(tests, func(p dynatrace.Problem) bool { return anyEqualFold(field(p), c.values) })
	}
	return func(p dynatrace.Problem) bool {
		for _, t := range tests {
			if !t(p) {
				return false
			}
		}
		return true
	}, nil
}

func zoneField(p dynatrace.Problem, get func(dynatrace.ManagementZone) string) []string {
	out := make([]string, len(p.ManagementZones))
	for i, z := range p.ManagementZones {
		out[i] = get(z)
	}
	return out
}

func oneOf(c criterion, allowed ...string) error {
	for _, v := range c.values {
		if !slices.ContainsFunc(allowed, func(a string) bool { return strings.EqualFold(a, v) }) {
			return fmt.Errorf("%s(%q): must be one of %s", c.name, v, strings.Join(allowed, ", "))
		}
	}
	return nil
}

func anyEqualFold(have, want []string) bool {
	for _, h := range have {
		for _, w := range want {
			if strings.EqualFold(h, w) {
				return true
			}
		}
	}
	return false
}

// entitySelector returns a filter for an entitySelector: a problem matches
// when one of its affected, impacted or root cause entities matches every
// criterion. The API requires type or entityId.
func entitySelector(sel string) (func(dynatrace.Problem) bool, error) {
	if sel == "" {
		return func(dynatrace.Problem) bool { return true }, nil
	}
	criteria, err := parseSelector(sel)
	if err != nil {
		return nil, err
	}
	scoped := false
	for _, c := range criteria {
		switch c.name {
		case "type", "entityId":
			scoped = true
		case "entityName":
		default:
			return nil, fmt.Errorf("unsupported criterion %q (this fake supports type, entityId and entityName)", c.name)
		}
	}
	if !scoped {
		return nil, errors.New("must contain type or entityId")
	}
	matches := func(e dynatrace.EntityStub) bool {
		for _, c := range criteria {
			value := map[string]string{"type": e.EntityID.Type, "entityId": e.EntityID.ID, "entityName": e.Name}[c.name]
			if !slices.Contains(c.values, value) {
				return false
			}
		}
		return true
	}
	return func(p dynatrace.Problem) bool {
		entities := slices.Concat(p.AffectedEntities, p.ImpactedEntities)
		if p.RootCauseEntity != nil {
			entities = append(entities, *p.RootCauseEntity)
		}
		return slices.ContainsFunc(entities, matches)
	}, nil
}

// parseSort reads a sort parameter: comma-separated status, startTime or
// relevance, each with an optional + or - prefix. The default is -startTime,
// newest first.
func parseSort(sort string) (func(a, b dynatrace.Problem) int, *apiError) {
	var keys []func(a, b dynatrace.Problem) int
	for key := range strings.SplitSeq(cmp.Or(sort, "-startTime"), ",") {
		name, descending := strings.CutPrefix(key, "-")
		if !descending {
			name = strings.TrimPrefix(name, "+")
		}
		var compare func(a, b dynatrace.Problem) int
		switch name {
		case "status":
			compare = func(a, b dynatrace.Problem) int { return cmp.Compare(a.Status, b.Status) }
		case "startTime":
			compare = func(a, b dynatrace.Problem) int { return cmp.Compare(a.StartTime, b.StartTime) }
		case "relevance":
			continue // the fake has no notion of relevance
		default:
			return nil, badRequest("Constraints violated.", queryViolation("sort",
				fmt.Sprintf("unknown sort key %q; use status, startTime or relevance with + or -", key)))
		}
		if descending {
			keys = append(keys, func(a, b dynatrace.Problem) int { return compare(b, a) })
		} else {
			keys = append(keys, compare)
		}
	}
	return func(a, b dynatrace.Problem) int {
		for _, k := range keys {
			if c := k(a, b); c != 0 {
				return c
			}
		}
		return 0
	}, nil
}
