//go:build e2e

package localrun

import (
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
	"github.com/problemhook/problemhook/test/harness/controlplane"
)

// TestMakeRunOnANode holds `make run NODE=1` to what it prints: problemhook
// runs as the Pods of its installed Deployment, the curl it prints (to the
// host's loopback) makes the sample route's two Jobs really run on the
// node, each printing its entity, the fake Dynatrace gets the comment, the
// dashboard answers on the host's loopback, and Ctrl-C takes the node
// down. hack/e2e.sh runs it after the e2e suite's node is down, with
// E2E_NODE_DIR and E2E_PAUSE set, once make image has built bin/image.tar.
func TestMakeRunOnANode(t *testing.T) {
	dir, pause := os.Getenv("E2E_NODE_DIR"), os.Getenv("E2E_PAUSE")
	if dir == "" || pause == "" {
		t.Fatal("E2E_NODE_DIR and E2E_PAUSE must be set: run this test with `make e2e`")
	}
	g := NewWithT(t)
	var stdout controlplane.SyncBuffer
	lr := &localRun{
		root: controlplane.RepoRoot(), image: filepath.Join(controlplane.RepoRoot(), "bin", "image.tar"),
		receiverAddr: controlplane.FreeAddr(t), probeAddr: controlplane.FreeAddr(t), metricsAddr: controlplane.FreeAddr(t), dashboardAddr: controlplane.FreeAddr(t),
		out: &stdout, errOut: os.Stderr, node: true, nodeDir: dir, pause: pause,
	}
	ctx, stop := start(t, lr)

	curl := regexp.MustCompile(`(?s)\n  (curl .*?/hooks/problemhook-demo/dynatrace)\n`)
	g.Eventually(stdout.String).WithTimeout(2*time.Minute).Should(MatchRegexp(curl.String()), "no curl printed:\n%s", &stdout)
	g.Expect(stdout.String()).To(ContainSubstring("problemhook is running on a single-node cluster on this machine, installed from dist/install.yaml"))
	answer, err := exec.Command("sh", "-c", curl.FindStringSubmatch(stdout.String())[1]+" --silent --show-error").CombinedOutput()
	g.Expect(err).NotTo(HaveOccurred(), string(answer))
	g.Expect(string(answer)).To(ContainSubstring(`"result":"created"`))

	cfg, err := clientcmd.BuildConfigFromFlags("", lr.kubeconfig)
	g.Expect(err).NotTo(HaveOccurred())
	cs, err := kubernetes.NewForConfig(cfg)
	g.Expect(err).NotTo(HaveOccurred())
	// No manager runs on the host: the installed Deployment's Pods do.
	d, err := cs.AppsV1().Deployments("problemhook-system").Get(ctx, "problemhook-controller-manager", metav1.GetOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(d.Status.AvailableReplicas).To(BeEquivalentTo(2))
	g.Expect(d.Spec.Template.Spec.Containers[0].Image).To(Equal("ghcr.io/problemhook/problemhook:v0.1.0"))

	// The dashboard it prints answers on the host's loopback.
	dashboard := regexp.MustCompile(`Its dashboard:\n\n  (http://[^\n]*/)\n`).FindStringSubmatch(stdout.String())
	g.Expect(dashboard).To(HaveLen(2), "no dashboard URL printed:\n%s", &stdout)
	resp, err := http.Get(dashboard[1])
	g.Expect(err).NotTo(HaveOccurred())
	page, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	g.Expect(resp.StatusCode).To(Equal(http.StatusOK), string(page))
	g.Expect(string(page)).To(ContainSubstring("problemhook-demo"))
	selector := problemhookv1alpha1.LabelRoute + "=legacy-incident"
	g.Eventually(func(g Gomega) {
		jobs, err := cs.BatchV1().Jobs("problemhook-demo").List(ctx, metav1.ListOptions{LabelSelector: selector})
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(jobs.Items).To(HaveLen(2))
		for _, j := range jobs.Items {
			g.Expect(j.Status.Succeeded).To(BeEquivalentTo(1), "Job %s: %+v", j.Name, j.Status.Conditions)
		}
	}).WithTimeout(2 * time.Minute).Should(Succeed())

	// What the printed kubectl logs command shows: each Pod's echo.
	g.Expect(stdout.String()).To(ContainSubstring("-n problemhook-demo logs -l " + selector))
	pods, err := cs.CoreV1().Pods("problemhook-demo").List(ctx, metav1.ListOptions{LabelSelector: selector})
	g.Expect(err).NotTo(HaveOccurred())
	var printed []string
	for _, p := range pods.Items {
		log, err := cs.CoreV1().Pods(p.Namespace).GetLogs(p.Name, &corev1.PodLogOptions{}).DoRaw(ctx)
		g.Expect(err).NotTo(HaveOccurred())
		printed = append(printed, strings.TrimSpace(string(log)))
	}
	g.Expect(printed).To(ConsistOf("problem 1234 entity web01", "problem 1234 entity web02"), "PROBLEM_DISPLAY_ID is the display number, as Dynatrace sends it")

	comments := regexp.MustCompile(`\n  (curl -H 'Authorization: Api-Token [^\n]*/comments)\n`)
	g.Eventually(func(g Gomega) {
		answer, err := exec.Command("sh", "-c", comments.FindStringSubmatch(stdout.String())[1]+" --silent --show-error --fail").CombinedOutput()
		g.Expect(err).NotTo(HaveOccurred(), string(answer))
		g.Expect(string(answer)).To(ContainSubstring("problemhook ran Job legacy-incident/incident for 2 impacted entities: 2 succeeded"))
	}).WithTimeout(30 * time.Second).Should(Succeed())

	g.Expect(stop()).To(Succeed())
	_, err = os.Stat(dir)
	g.Expect(os.IsNotExist(err)).To(BeTrue(), "the node's directory %s is still there after Ctrl-C", dir)
}
