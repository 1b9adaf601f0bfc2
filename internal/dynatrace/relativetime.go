package dynatrace

import (
	"fmt"
	"strings"
)

// RelativeTime is a time frame of the deprecated v1 problem feed, which
// the old webhook's page and CLI offered, and the from parameter of the
// Problems API v2 that stands for it.
type RelativeTime struct {
	Name, From string
}

// RelativeTimes are the feed's time frames, shortest first.
var RelativeTimes = []RelativeTime{
	{"hour", "now-1h"}, {"2hours", "now-2h"}, {"6hours", "now-6h"},
	{"day", "now-1d"}, {"week", "now-1w"}, {"month", "now-30d"},
}

// RelativeTimeNames lists the names of RelativeTimes.
func RelativeTimeNames() []string {
	names := make([]string, len(RelativeTimes))
	for i, rt := range RelativeTimes {
		names[i] = rt.Name
	}
	return names
}

// FromRelativeTime returns the from parameter of the time frame name, or
// an error that lists the names there are.
func FromRelativeTime(name string) (string, error) {
	for _, rt := range RelativeTimes {
		if rt.Name == name {
			return rt.From, nil
		}
	}
	return "", fmt.Errorf("relative time %q is not one of %s", name, strings.Join(RelativeTimeNames(), ", "))
}
