package jobs

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/problemhook/problemhook/internal/routing"
)

// Job names are a readable prefix and a hash of what makes the Job
// unique, and always fit in a label value.
func TestJobName(t *testing.T) {
	g := NewWithT(t)
	name := Name("dynatrace-1a2b3c4d5e-open", "legacy-incident", "incident", "HOST-1")
	g.Expect(name).To(MatchRegexp(`^legacy-incident-incident-[0-9a-f]{10}$`))
	g.Expect(Name("dynatrace-1a2b3c4d5e-open", "legacy-incident", "incident", "HOST-1")).To(Equal(name), "the same run, the same name")

	for _, other := range [][4]string{
		{"dynatrace-1a2b3c4d5e-resolved", "legacy-incident", "incident", "HOST-1"},
		{"dynatrace-1a2b3c4d5e-open", "legacy-incident", "incident", "HOST-2"},
		{"dynatrace-1a2b3c4d5e-open", "legacy-incident", "incident", ""},
		{"dynatrace-1a2b3c4d5e-open", "legacy", "incident-incident", "HOST-1"},
	} {
		g.Expect(Name(other[0], other[1], other[2], other[3])).NotTo(Equal(name), "%v", other)
	}

	long := Name("ev", strings.Repeat("r", 63), strings.Repeat("a", 63), "")
	g.Expect(len(long)).To(Equal(63))
	g.Expect(validation.IsValidLabelValue(long)).To(BeEmpty())
	// A cut that ends in a separator drops it: names must end alphanumeric.
	cut := Name("ev", strings.Repeat("r", 51)+"-", "x", "")
	g.Expect(cut).To(MatchRegexp(`^r{51}-[0-9a-f]{10}$`))
}

// PROBLEM_JSON fits its bound whatever the problem: what does not fit is
// left out of its lists, longest first, and a field says what was kept.
func TestBoundedProblemJSON(t *testing.T) {
	small := routing.SampleProblem()
	huge := routing.SampleProblem()
	huge.Message = strings.Repeat("m", 8192)
	for i := range 256 {
		huge.ImpactedEntities = append(huge.ImpactedEntities, routing.Entity{ID: fmt.Sprintf("HOST-%0251d", i), Name: strings.Repeat("n", 256), Type: "HOST"})
		huge.Tags = append(huge.Tags, fmt.Sprintf("tag%03d:%s", i, strings.Repeat("v", 240)))
	}
	for _, tc := range []struct {
		name      string
		p         *routing.Problem
		truncated string
		entities  int
	}{
		{"a problem that fits is whole", small, "", 2},
		{"a problem past the bound is cut", huge, "PROBLEM_JSON is cut to 32768 bytes: it lists 32 of 258 impactedEntities, 32 of 259 tags and 1 of 1 managementZones", 32},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			out, err := BoundedProblemJSON(tc.p)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(len(out)).To(BeNumerically("<=", MaxProblemJSON))
			var got struct {
				routing.Problem
				Truncated string `json:"truncated"`
			}
			g.Expect(json.Unmarshal([]byte(out), &got)).To(Succeed(), "PROBLEM_JSON stays JSON")
			g.Expect(got.Truncated).To(Equal(tc.truncated))
			g.Expect(got.ImpactedEntities).To(HaveLen(tc.entities))
			g.Expect(got.Title).To(Equal(tc.p.Title))
		})
	}
}

// Each rerun's Job has a name of its own, as long as the first's, and
// the same name for the same rerun.
func TestRerunName(t *testing.T) {
	g := NewWithT(t)
	first := Name("dynatrace-9bbaaff2fb155f74-open", strings.Repeat("r", 40), strings.Repeat("a", 40), "HOST-1")
	g.Expect(RerunName(first, 0)).To(Equal(first))
	one, two := RerunName(first, 1), RerunName(first, 2)
	g.Expect([]string{one, two}).To(HaveEach(And(HaveLen(len(first)), HavePrefix(first[:len(first)-10]))))
	g.Expect(one).NotTo(Equal(first))
	g.Expect(two).NotTo(Equal(one))
	g.Expect(RerunName(first, 1)).To(Equal(one))
}
