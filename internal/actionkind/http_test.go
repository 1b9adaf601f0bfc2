package actionkind

import (
	"testing"

	. "github.com/onsi/gomega"
)

// A rendered http.path extends the URL's path; what a problem puts in it
// never reaches another host.
func TestJoinPath(t *testing.T) {
	g := NewWithT(t)
	for _, tc := range []struct{ base, path, want, err string }{
		{"https://api.opsgenie.com", "/v2/alerts/P-1/close?identifierType=alias", "https://api.opsgenie.com/v2/alerts/P-1/close?identifierType=alias", ""},
		{"https://api.opsgenie.com/", "v2/alerts", "https://api.opsgenie.com/v2/alerts", ""},
		{"https://hooks.example/base", "/x", "https://hooks.example/base/x", ""},
		{"https://hooks.example", "/@evil.example/x", "https://hooks.example/@evil.example/x", ""},
		{"https://hooks.example/base", "/../other", "", `the path "/../other" leaves the URL's host or path`},
		{"https://hooks.example?token=1", "/x", "", "a URL with a query cannot take a path"},
	} {
		got, err := JoinPath(tc.base, tc.path)
		if tc.err != "" {
			g.Expect(err).To(MatchError(tc.err), tc.path)
			continue
		}
		g.Expect(err).NotTo(HaveOccurred(), tc.path)
		g.Expect(got).To(Equal(tc.want))
	}
}
