package dynatrace_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/problemhook/problemhook/internal/dynatrace"
	"github.com/problemhook/problemhook/internal/dynatrace/dynatracetest"
)

const (
	token      = "dt0c01.SECRETTOKENPART.0123456789abcdef"
	readOnly   = "dt0c01.READONLY.0123456789abcdef"
	writeOnly  = "dt0c01.WRITEONLY.0123456789abcdef"
	unknownTok = "dt0c01.UNKNOWN.0123456789abcdef"
)

// now is the fake's clock: problems are placed relative to it.
var now = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func ago(d time.Duration) int64 { return now.Add(-d).UnixMilli() }

// newFake starts a fake environment with the tokens above.
func newFake(t *testing.T, o dynatracetest.ServerOptions) *dynatracetest.Server {
	t.Helper()
	o.Now = func() time.Time { return now }
	s := dynatracetest.NewServer(o)
	t.Cleanup(s.Close)
	s.AddToken(token, dynatracetest.ScopeRead, dynatracetest.ScopeWrite)
	s.AddToken(readOnly, dynatracetest.ScopeRead)
	s.AddToken(writeOnly, dynatracetest.ScopeWrite)
	return s
}

// newClient returns a client of o (with the token above unless o has one)
// that records its waits between attempts instead of sleeping.
func newClient(t *testing.T, o dynatrace.Options) (*dynatrace.Client, *[]time.Duration) {
	t.Helper()
	if o.Token == "" {
		o.Token = token
	}
	c, err := dynatrace.New(o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	waits := &[]time.Duration{}
	dynatrace.SetSleep(c, func(ctx context.Context, d time.Duration) error {
		*waits = append(*waits, d)
		return ctx.Err()
	})
	return c, waits
}

// expectAPIError checks that err is an *APIError with status, and that it
// does not contain a token.
func expectAPIError(g Gomega, err error, status int) *dynatrace.APIError {
	var apiErr *dynatrace.APIError
	g.ExpectWithOffset(1, errors.As(err, &apiErr)).To(BeTrue(), "want an *APIError, got %v", err)
	g.ExpectWithOffset(1, apiErr.StatusCode).To(Equal(status), "%v", err)
	expectNoToken(g, err.Error())
	return apiErr
}

func expectNoToken(g Gomega, text string) {
	for _, tok := range []string{token, readOnly, writeOnly, unknownTok, "SECRETTOKENPART"} {
		g.ExpectWithOffset(2, text).NotTo(ContainSubstring(tok))
	}
}

// problem returns a problem with id, open since start ago.
func problem(id, severity, impact string, start time.Duration) dynatrace.Problem {
	return dynatrace.Problem{
		ProblemID:     id,
		DisplayID:     "P-" + id,
		Title:         fmt.Sprintf("%s problem %s", severity, id),
		ImpactLevel:   impact,
		SeverityLevel: severity,
		Status:        "OPEN",
		StartTime:     ago(start),
		EndTime:       -1,
		AffectedEntities: []dynatrace.EntityStub{{
			EntityID: dynatrace.EntityID{ID: "SERVICE-" + id, Type: "SERVICE"}, Name: "service " + id,
		}},
	}
}

// closed returns p closed end ago.
func closed(p dynatrace.Problem, end time.Duration) dynatrace.Problem {
	p.Status = "CLOSED"
	p.EndTime = ago(end)
	return p
}

func ids(problems []dynatrace.Problem) []string {
	out := make([]string, len(problems))
	for i, p := range problems {
		out[i] = p.ProblemID
	}
	return out
}
