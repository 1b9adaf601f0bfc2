package localrun

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
	"github.com/problemhook/problemhook/internal/scheme"
	"github.com/problemhook/problemhook/test/harness/controlplane"
)

// TestMakeRun holds `make run` to what it promises: with no cluster it
// starts one, and the curl it prints stores a ProblemEvent that the
// kubeconfig it wrote can read; cancelling it stops everything.
func TestMakeRun(t *testing.T) {
	g := NewWithT(t)
	root := controlplane.RepoRoot()
	tmp := t.TempDir()
	t.Setenv("KUBECONFIG", filepath.Join(tmp, "no-such-kubeconfig"))

	manager := controlplane.BuildManager(t)
	var stdout controlplane.SyncBuffer
	lr := &localRun{
		manager: manager, root: root, kubeconfig: filepath.Join(tmp, "kubeconfig"),
		receiverAddr: controlplane.FreeAddr(t), probeAddr: controlplane.FreeAddr(t), metricsAddr: controlplane.FreeAddr(t), dashboardAddr: controlplane.FreeAddr(t),
		out: &stdout, errOut: os.Stderr,
	}
	ctx, stop := start(t, lr)

	// The printed curl, run as printed.
	curl := regexp.MustCompile(`(?s)\n  (curl .*?/hooks/problemhook-demo/dynatrace)\n`)
	g.Eventually(stdout.String).WithTimeout(60*time.Second).Should(MatchRegexp(curl.String()), "no curl printed")
	answer, err := exec.Command("sh", "-c", curl.FindStringSubmatch(stdout.String())[1]+" --silent --show-error").CombinedOutput()
	g.Expect(err).NotTo(HaveOccurred(), string(answer))
	g.Expect(string(answer)).To(ContainSubstring(`"result":"created"`))

	// What `kubectl --kubeconfig ... get problemevents -A` would show.
	g.Expect(stdout.String()).To(ContainSubstring("--kubeconfig " + lr.kubeconfig + " get problemevents -A"))
	cfg, err := clientcmd.BuildConfigFromFlags("", lr.kubeconfig)
	g.Expect(err).NotTo(HaveOccurred())
	c, err := client.New(cfg, client.Options{Scheme: scheme.New()})
	g.Expect(err).NotTo(HaveOccurred())
	var events problemhookv1alpha1.ProblemEventList
	g.Expect(c.List(ctx, &events, client.MatchingLabels{problemhookv1alpha1.LabelProblemID: problemhookv1alpha1.ProblemIDHash(demoPID)})).To(Succeed())
	g.Expect(events.Items).To(HaveLen(1))
	g.Expect(events.Items[0].Spec.Title).To(Equal("CPU saturation"))
	// The problem whose notifications never arrived is caught up by polling.
	g.Eventually(func(g Gomega) {
		var missed problemhookv1alpha1.ProblemEventList
		g.Expect(c.List(ctx, &missed, client.MatchingLabels{problemhookv1alpha1.LabelProblemID: problemhookv1alpha1.ProblemIDHash(missedPID)})).To(Succeed())
		g.Expect(missed.Items).To(HaveLen(2))
		for _, ev := range missed.Items {
			g.Expect(ev.Spec.Origin).To(Equal(problemhookv1alpha1.OriginPoll))
		}
	}).WithTimeout(30 * time.Second).Should(Succeed())

	// The event is enriched from the fake Dynatrace, and the sample route
	// makes a Job per impacted entity that it named.
	g.Eventually(func(g Gomega) {
		var ev problemhookv1alpha1.ProblemEvent
		g.Expect(c.Get(ctx, client.ObjectKeyFromObject(&events.Items[0]), &ev)).To(Succeed())
		g.Expect(ev.Status.Details).NotTo(BeNil())
		g.Expect(ev.Status.Details.DisplayID).To(Equal("P-1234"))
		g.Expect(ev.Status.Phase).To(Equal(problemhookv1alpha1.PhaseRunning))
		var jobs batchv1.JobList
		g.Expect(c.List(ctx, &jobs, client.InNamespace("problemhook-demo"))).To(Succeed())
		g.Expect(jobs.Items).To(HaveLen(2))
	}).WithTimeout(30 * time.Second).Should(Succeed())
	// The printed dashboard shows both.
	g.Expect(stdout.String()).To(ContainSubstring("\n  http://" + lr.dashboardAddr + "/\n"))
	g.Eventually(func(g Gomega) {
		resp, err := http.Get("http://" + lr.dashboardAddr + "/events?target=problemhook-demo/dynatrace")
		g.Expect(err).NotTo(HaveOccurred())
		page, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(string(page)).To(And(ContainSubstring("CPU saturation"), ContainSubstring("Response time degradation"), ContainSubstring("polled")))
	}).WithTimeout(10*time.Second).Should(Succeed(), "the dashboard reads the manager's cache, a moment behind the API server")
	comments := regexp.MustCompile(`\n  (curl -H 'Authorization: Api-Token [^\n]*/comments)\n`)
	g.Expect(stdout.String()).To(MatchRegexp(comments.String()))
	answer, err = exec.Command("sh", "-c", comments.FindStringSubmatch(stdout.String())[1]+" --silent --show-error --fail").CombinedOutput()
	g.Expect(err).NotTo(HaveOccurred(), string(answer))
	g.Expect(string(answer)).To(ContainSubstring(`"comments":[]`), "no comment while the Jobs are pending")

	g.Expect(stop()).To(Succeed())
	// The manager and the API server are gone with it.
	for _, addr := range []string{lr.receiverAddr, cfg.Host[len("https://"):]} {
		_, err := net.DialTimeout("tcp", addr, time.Second)
		g.Expect(err).To(HaveOccurred(), "%s still listening", addr)
	}
}

// TestMakeRunOnACluster: with a reachable KUBECONFIG, make run runs the
// manager against that cluster, without samples.
func TestMakeRunOnACluster(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	env, err := controlplane.Start(controlplane.RepoRoot())
	g.Expect(err).NotTo(HaveOccurred())
	// A cleanup, not a defer: cleanups run last-in first-out, so the
	// manager stops before the API server it talks to.
	t.Cleanup(func() { _ = env.Stop() })
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	g.Expect(env.WriteKubeconfig(kubeconfig)).To(Succeed())
	t.Setenv("KUBECONFIG", kubeconfig)

	var stdout controlplane.SyncBuffer
	lr := &localRun{
		manager: controlplane.BuildManager(t), root: controlplane.RepoRoot(), kubeconfig: filepath.Join(t.TempDir(), "unused"),
		receiverAddr: controlplane.FreeAddr(t), probeAddr: controlplane.FreeAddr(t), metricsAddr: controlplane.FreeAddr(t), dashboardAddr: controlplane.FreeAddr(t),
		out: &stdout, errOut: os.Stderr,
	}
	_, stop := start(t, lr)
	g.Eventually(stdout.String).WithTimeout(60 * time.Second).Should(ContainSubstring("problemhook is receiving on http://" + lr.receiverAddr))
	g.Expect(stdout.String()).To(HavePrefix("Using the cluster of " + kubeconfig))

	// The manager serves a target created in that cluster.
	c, err := client.New(env.Config, client.Options{Scheme: scheme.New()})
	g.Expect(err).NotTo(HaveOccurred())
	nt := &problemhookv1alpha1.NotificationTarget{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "open"},
		Spec: problemhookv1alpha1.NotificationTargetSpec{Format: problemhookv1alpha1.FormatDynatrace,
			Auth: problemhookv1alpha1.WebhookAuth{None: &problemhookv1alpha1.NoAuth{}}},
	}
	g.Expect(c.Create(ctx, nt)).To(Succeed())
	g.Eventually(func() (int, error) {
		resp, err := http.Post("http://"+lr.receiverAddr+"/hooks/default/open", "application/json",
			strings.NewReader(`{"State":"OPEN","ProblemID":"1","PID":"1_1V2"}`))
		if err != nil {
			return 0, err
		}
		_ = resp.Body.Close()
		return resp.StatusCode, nil
	}).WithTimeout(10 * time.Second).Should(Equal(http.StatusAccepted))

	var samples problemhookv1alpha1.NotificationTargetList
	g.Expect(c.List(ctx, &samples, client.InNamespace("problemhook-demo"))).To(Succeed())
	g.Expect(samples.Items).To(BeEmpty(), "samples are for the embedded control plane only")

	g.Expect(stop()).To(Succeed())
}

// start runs lr until the returned stop is called, or the test ends: a
// failed test must not leave a control plane or a manager behind, and
// both run in process groups of their own.
func start(t *testing.T, lr *localRun) (context.Context, func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var err error
	stopped := make(chan struct{})
	go func() { err = lr.run(ctx); close(stopped) }()
	stop := func() error {
		cancel()
		select {
		case <-stopped:
			return err
		case <-time.After(60 * time.Second):
			return errors.New("local-run did not stop within 60s")
		}
	}
	t.Cleanup(func() { _ = stop() })
	return ctx, stop
}
