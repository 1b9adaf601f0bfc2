//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
	"github.com/problemhook/problemhook/test/harness/node"
)

// A remediation ladder on the real node: a Job restarts; five seconds
// after it, and only while Dynatrace says the problem is open, a second
// Job scales out; then a message pages, once a person approved it with
// `manager approve`. Each step waits for the one before it, and the
// comment on the problem says what ran and who approved.
func TestARemediationLadderRunsStepByStep(t *testing.T) {
	e := newEnv(t)
	var mu sync.Mutex
	var pages []string
	pager := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		pages = append(pages, string(body))
		mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(pager.Close)
	job := func(name, say string) string {
		return fmt.Sprintf(`    job:
      template:
        spec:
          backoffLimit: 0
          template:
            spec:
              restartPolicy: Never
              terminationGracePeriodSeconds: 1
              securityContext: {runAsUser: 65534}
              containers:
              - name: %s
                image: %s
                imagePullPolicy: Never
                command: ["sh", "-c", "echo %s $PROBLEM_DISPLAY_ID"]`, name, node.BusyboxImage, say)
	}
	e.apply(fmt.Sprintf(`apiVersion: problemhook.io/v1alpha1
kind: IntegrationRoute
metadata: {name: ladder}
spec:
  match: {states: [OPEN]}
  actions:
  - name: restart
%s
  - name: scale-out
    delay: 5s
    onlyWhileOpen: true
%s
  - name: page
    approval: {required: true, timeout: 5m}
    http:
      url: %s/page
      body: '{"problem": {{json .DisplayID}}, "approve": "manager approve {{.Namespace}}/{{.Event}} page"}'
`, job("restart", "restarted"), job("scale-out", "scaled out for"), pager.URL))

	pid := e.problem("P-9301", "HOST-00000000000E2E31")
	e.notify(pid, "P-9301", "OPEN")
	waiting := e.openEvent(pid, "to wait for the scale-out's delay", 2*time.Minute, func(ev *problemhookv1alpha1.ProblemEvent) error {
		if ev.Status.Phase != problemhookv1alpha1.PhaseWaiting || ev.Status.Actions[0].State != problemhookv1alpha1.ActionSucceeded {
			return fmt.Errorf("phase %s, actions %s", ev.Status.Phase, actionsLine(ev))
		}
		return nil
	})
	due := waiting.Status.Actions[1].NextAttemptTime
	if due == nil || !strings.HasPrefix(waiting.Status.Actions[1].Message, "Waiting until ") {
		t.Fatalf("the scale-out does not say until when it waits: %s", actionsLine(waiting))
	}

	ev := e.openEvent(pid, "to await approval of the page", 2*time.Minute, func(ev *problemhookv1alpha1.ProblemEvent) error {
		if ev.Status.Phase != problemhookv1alpha1.PhaseAwaitingApproval {
			return fmt.Errorf("phase %s, actions %s", ev.Status.Phase, actionsLine(ev))
		}
		return nil
	})
	for _, j := range e.jobs(ev.Name) {
		if j.Labels[problemhookv1alpha1.LabelAction] == "scale-out" && j.CreationTimestamp.Before(due) {
			t.Errorf("Job %s was created at %s, before the delay ended at %s", j.Name, j.CreationTimestamp, due)
		}
	}
	if ev.Status.Actions[1].State != problemhookv1alpha1.ActionSucceeded {
		t.Errorf("the scale-out did not run: %s", actionsLine(ev))
	}
	mu.Lock()
	if len(pages) != 0 {
		t.Errorf("the page left before it was approved: %q", pages)
	}
	mu.Unlock()

	// The command as a person runs it, with the node's admin kubeconfig.
	approve := exec.Command(os.Getenv("E2E_MANAGER"), "approve", ev.Namespace+"/"+ev.Name, "page", "--kubeconfig", os.Getenv("E2E_KUBECONFIG"))
	if out, err := approve.CombinedOutput(); err != nil {
		t.Fatalf("manager approve: %v: %s", err, out)
	}
	review := &authenticationv1.SelfSubjectReview{}
	if err := kube.Create(context.Background(), review); err != nil {
		t.Fatal(err)
	}
	me := review.Status.UserInfo.Username

	done := e.openEvent(pid, "to page and comment", 2*time.Minute, func(ev *problemhookv1alpha1.ProblemEvent) error {
		if ev.Status.Phase != problemhookv1alpha1.PhaseSucceeded || ev.Status.Comment == nil || !ev.Status.Comment.Posted {
			return fmt.Errorf("phase %s, actions %s", ev.Status.Phase, actionsLine(ev))
		}
		return nil
	})
	page := done.Status.Actions[2]
	if page.Approval == nil || page.Approval.Decision != problemhookv1alpha1.ApprovalApproved || page.Approval.By != me {
		t.Errorf("the page's approval is %+v, want Approved by %s", page.Approval, me)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := `{"problem": "9301", "approve": "manager approve ` + ev.Namespace + "/" + ev.Name + ` page"}`; len(pages) != 1 || pages[0] != want {
		t.Errorf("pages %q, want one: %s", pages, want)
	}
	comments := dt.Comments(pid)
	if len(comments) != 1 || !strings.Contains(comments[0].Content, "problemhook ran Job ladder/scale-out: succeeded\n") ||
		!strings.Contains(comments[0].Content, "(approved by "+me+")") {
		t.Errorf("comments %+v", comments)
	}
	t.Logf("ladder: %s", actionsLine(done))
}
