//go:build e2e

// Package install proves problemhook as a user installs it: the image
// `make image` built, imported into a real node (test/harness/node) under
// the name dist/install.yaml gives it, and dist/install.yaml applied as it
// is, or dist/chart installed and uninstalled by Helm's own library
// (helm_test.go). The manager then runs as two Pods of its Deployment, as
// its ServiceAccount, under the restricted Pod Security level, and reaches
// the API server through the kubernetes Service. `make e2e` runs each test
// on a node of its own; see hack/e2e.sh.
package install

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
	"github.com/problemhook/problemhook/internal/dynatrace"
	"github.com/problemhook/problemhook/internal/dynatrace/dynatracetest"
	"github.com/problemhook/problemhook/internal/scheme"
	"github.com/problemhook/problemhook/test/harness/controlplane"
	"github.com/problemhook/problemhook/test/harness/fixtures"
	"github.com/problemhook/problemhook/test/harness/manifests"
	"github.com/problemhook/problemhook/test/harness/node"
)

// What dist/install.yaml installs, by name.
const (
	systemNamespace = "problemhook-system"
	deployment      = "problemhook-controller-manager"
	serviceAccount  = "problemhook-controller-manager"
	receiverService = "problemhook-receiver"
	receiverPort    = "9292"
	leaseName       = "problemhook.problemhook.io"
)

const (
	webhookUser, webhookPassword = "dynatrace", "install-password"
	dtToken                      = "install-dynatrace-token"
	// streamTarget takes the notifications of the rollout restart's stream.
	streamTarget = "stream"
)

// suite is what the steps share: the node, its clients, and the Dynatrace
// stand-in that the manager's Pods reach inside the node's network.
type suite struct {
	t          *testing.T
	nodeDir    string
	kubeconfig string
	cfg        *rest.Config
	kube       client.Client
	cs         *kubernetes.Clientset
	// inNode connects inside the node's network namespace: to Services
	// and Pods, as a client in the cluster would.
	inNode *http.Client
	dt     *dynatracetest.Server
	ns     string
}

// A user installs problemhook with its image and dist/install.yaml; it
// comes up on both replicas, takes notifications through its Service and
// on each Pod, runs their Jobs and comments on Dynatrace, hands leadership
// over when the leader's Pod goes, and its ServiceAccount is never refused
// anything on the way.
func TestInstalledAsAUserInstallsIt(t *testing.T) {
	s := newSuite(t)
	install, err := os.ReadFile(filepath.Join(controlplane.RepoRoot(), "dist", "install.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	objs, err := manifests.Decode(install)
	if err != nil {
		t.Fatal(err)
	}
	if err := manifests.Apply(context.Background(), s.cfg, objs); err != nil {
		t.Fatalf("applying dist/install.yaml: %v", err)
	}
	s.addTenant()
	s.addStreamTarget()
	s.run([]step{
		{"the Deployment is 2/2 Available under the restricted level", (*suite).available},
		{"a notification to the Service runs its Job and comments", (*suite).throughTheService},
		{"each replica takes notifications", (*suite).eachReplica},
		{"the leader's Pod deleted, another leads", (*suite).handover},
		{"a rollout restart during a stream loses nothing", (*suite).rolloutRestart},
		{"a reader's token gets /metrics through its Service", (*suite).metrics},
		{"the ServiceAccount is never refused, and uses its rights", (*suite).neverRefused},
	})
}

// step is one subtest of an install test; the steps of a test run in
// order, and the first that fails ends the test.
type step struct {
	name string
	run  func(*suite)
}

// run runs the steps in order, each as a subtest with the suite's state,
// and stops at the first that fails, after logging what a person needs
// to see why.
func (s *suite) run(steps []step) {
	for _, st := range steps {
		ok := s.t.Run(st.name, func(t *testing.T) {
			sub := *s
			sub.t = t
			st.run(&sub)
		})
		if !ok {
			s.dump()
			s.t.FailNow()
		}
	}
}

// newSuite connects to the node, imports the image `make image` built,
// and starts the Dynatrace stand-in inside the node's network. Installing
// problemhook, and then the tenant (addTenant), is the test's own.
func newSuite(t *testing.T) *suite {
	s := connect(t)
	s.importImage(newImage(t))
	return s
}

// newImage is the tar `make image` wrote.
func newImage(t *testing.T) string {
	image := os.Getenv("E2E_IMAGE")
	if image == "" {
		t.Fatal("E2E_IMAGE (the tar `make image` writes) must be set: run this with `make e2e`")
	}
	return image
}

// importImage imports the image tar at path into the node, under the name
// the tar gives it.
func (s *suite) importImage(path string) {
	s.t.Helper()
	if err := node.ImportImage(context.Background(), s.nodeDir, path); err != nil {
		s.t.Fatal(err)
	}
}

// connect connects to the node and starts the Dynatrace stand-in inside
// the node's network; it imports no image.
func connect(t *testing.T) *suite {
	kubeconfig, nodeDir := os.Getenv("E2E_KUBECONFIG"), os.Getenv("E2E_NODE_DIR")
	if kubeconfig == "" || nodeDir == "" {
		t.Fatal("E2E_KUBECONFIG and E2E_NODE_DIR must be set: run this with `make e2e`")
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	s := &suite{t: t, nodeDir: nodeDir, kubeconfig: kubeconfig, cfg: cfg}
	if s.kube, err = client.New(cfg, client.Options{Scheme: scheme.New()}); err != nil {
		t.Fatal(err)
	}
	if s.cs, err = kubernetes.NewForConfig(cfg); err != nil {
		t.Fatal(err)
	}
	s.inNode = &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{DialContext: node.Dialer(nodeDir), DisableKeepAlives: true}}

	// The stand-in listens on the node's address, inside its network.
	l, err := node.Listen(nodeDir, "tcp", net.JoinHostPort(node.NodeIP, "0"))
	if err != nil {
		t.Fatal(err)
	}
	s.dt = dynatracetest.NewServer(dynatracetest.ServerOptions{Listener: l})
	t.Cleanup(s.dt.Close)
	s.dt.AddToken(dtToken, dynatracetest.ScopeRead, dynatracetest.ScopeWrite)
	return s
}

// addTenant makes the tenant's namespace with its target (addTarget) and
// a route whose Job prints the problem and exits 4.
func (s *suite) addTenant() {
	s.addTarget()
	s.apply(fixtures.JobRoute{Name: "legacy", Image: node.BusyboxImage, Script: `echo "problem $PROBLEM_ID"; exit 4`}.Manifest())
}

// addTarget makes the tenant's namespace, once problemhook's CRDs are
// installed, with a Dynatrace target that comments on the stand-in.
func (s *suite) addTarget() {
	s.ns = controlplane.NewNamespace(s.t, s.kube, "tenant")
	s.apply(fixtures.DynatraceTarget{User: webhookUser, Password: webhookPassword, Token: dtToken, DynatraceURL: s.dt.URL()}.Manifest())
}

// addStreamTarget adds a second target, with the same credentials and no
// route, that takes a stream of notifications (streamDuring): 400 Jobs
// would measure the node, not the receiver.
func (s *suite) addStreamTarget() {
	s.apply(fmt.Sprintf(`
apiVersion: problemhook.io/v1alpha1
kind: NotificationTarget
metadata: {name: %s}
spec:
  format: Dynatrace
  auth: {basic: {secretRef: {name: %s}}}
`, streamTarget, fixtures.AuthSecret))
}

// available waits for both replicas, and checks what the user would: the
// namespace enforces the restricted level, and no container restarted.
func (s *suite) available() {
	ctx := context.Background()
	var ns corev1.Namespace
	if err := s.kube.Get(ctx, client.ObjectKey{Name: systemNamespace}, &ns); err != nil {
		s.t.Fatal(err)
	}
	if level := ns.Labels["pod-security.kubernetes.io/enforce"]; level != "restricted" {
		s.t.Fatalf("namespace %s enforces %q, want restricted", systemNamespace, level)
	}
	s.eventually("2/2 replicas Available", 3*time.Minute, func() error {
		var d appsv1.Deployment
		if err := s.kube.Get(ctx, client.ObjectKey{Namespace: systemNamespace, Name: deployment}, &d); err != nil {
			return err
		}
		if d.Status.AvailableReplicas != 2 || d.Status.UpdatedReplicas != 2 || d.Status.Replicas != 2 {
			return fmt.Errorf("%d available, %d updated, %d in all", d.Status.AvailableReplicas, d.Status.UpdatedReplicas, d.Status.Replicas)
		}
		return nil
	})
	for _, p := range s.managerPods() {
		for _, c := range p.Status.ContainerStatuses {
			if c.RestartCount != 0 {
				s.t.Errorf("Pod %s: container %s restarted %d times", p.Name, c.Name, c.RestartCount)
			}
		}
	}
	s.eventually("the target is Ready", time.Minute, func() error {
		var target problemhookv1alpha1.NotificationTarget
		if err := s.kube.Get(ctx, client.ObjectKey{Namespace: s.ns, Name: fixtures.TargetName}, &target); err != nil {
			return err
		}
		for _, c := range target.Status.Conditions {
			if c.Type == problemhookv1alpha1.ConditionReady && c.Status == metav1.ConditionTrue {
				return nil
			}
		}
		return fmt.Errorf("not Ready: %+v", target.Status.Conditions)
	})
}

// throughTheService posts a notification to the receiver's Service, as an
// ActiveGate in the cluster would, and follows it: stored once, its Job
// run in the tenant's namespace with its exit code recorded, and the
// comment on the Dynatrace stand-in.
func (s *suite) throughTheService() {
	svc, err := s.cs.CoreV1().Services(systemNamespace).Get(context.Background(), receiverService, metav1.GetOptions{})
	if err != nil {
		s.t.Fatal(err)
	}
	s.notifyAndFollow(net.JoinHostPort(svc.Spec.ClusterIP, receiverPort), "P-7001")
}

// eachReplica posts to each manager Pod's own address: every replica's
// receiver stores notifications, leader or not.
func (s *suite) eachReplica() {
	for i, p := range s.managerPods() {
		if p.Status.PodIP == "" {
			s.t.Fatalf("Pod %s has no address", p.Name)
		}
		pid := s.problem(fmt.Sprintf("P-71%02d", i))
		s.notify(net.JoinHostPort(p.Status.PodIP, receiverPort), pid, fmt.Sprintf("P-71%02d", i))
		s.eventually("the event posted to "+p.Name+" is stored", 30*time.Second, func() error {
			_, err := s.event(pid)
			return err
		})
	}
}

// handover deletes the leader's Pod; a replica that survives it, or the
// one the Deployment starts in its place, takes the Lease (whichever asks
// first once the leaving leader has released it), and the next
// notification's Job runs.
func (s *suite) handover() {
	ctx := context.Background()
	leader := s.leader()
	if leader == "" {
		s.t.Fatal("no replica holds the Lease")
	}
	if err := s.cs.CoreV1().Pods(systemNamespace).Delete(ctx, leader, metav1.DeleteOptions{}); err != nil {
		s.t.Fatal(err)
	}
	start := time.Now()
	var next string
	s.eventually("another replica leads", 90*time.Second, func() error {
		next = s.leader()
		if next == "" || next == leader {
			return fmt.Errorf("the Lease is held by %q", next)
		}
		return nil
	})
	s.t.Logf("%s took the Lease %.1f s after %s was deleted", next, time.Since(start).Seconds(), leader)
	svc, err := s.cs.CoreV1().Services(systemNamespace).Get(ctx, receiverService, metav1.GetOptions{})
	if err != nil {
		s.t.Fatal(err)
	}
	s.notifyAndFollow(net.JoinHostPort(svc.Spec.ClusterIP, receiverPort), "P-7201")
}

// rolloutRestart restarts the Deployment, as `kubectl rollout restart`
// does, two seconds into a steady stream of 400 distinct notifications at
// 20/s to the receiver's Service (streamDuring).
func (s *suite) rolloutRestart() {
	s.streamDuring(400, 8000, s.restart)
}

// streamDuring posts n distinct notifications at 20/s to the receiver's
// Service for the stream target, numbered from first, starts during two
// seconds in, and waits for both. A notification answered 2xx must be
// stored exactly once, one answered 503 must say Retry-After and be
// stored when sent again after it, and no connection may fail: Dynatrace
// does not send a notification twice, so a replica that stops listening
// while the Service still routes to it loses what it would have been
// sent.
func (s *suite) streamDuring(n, first int, during func(context.Context) error) {
	ctx := context.Background()
	const rate = 20
	svc, err := s.cs.CoreV1().Services(systemNamespace).Get(ctx, receiverService, metav1.GetOptions{})
	if err != nil {
		s.t.Fatal(err)
	}
	addr := net.JoinHostPort(svc.Spec.ClusterIP, receiverPort)
	type outcome struct {
		pid      string
		attempts []string
		longest  time.Duration
		err      error
	}
	outcomes := make([]outcome, n)
	var wg sync.WaitGroup
	start := time.Now()
	done := make(chan error, 1)
	for i := range n {
		time.Sleep(time.Until(start.Add(time.Duration(i) * time.Second / rate)))
		if i == 2*rate {
			go func() { done <- during(ctx) }()
		}
		wg.Go(func() {
			o := &outcomes[i]
			o.pid = fmt.Sprintf("%d_%dV2", time.Now().UnixNano(), first+i)
			deadline := time.Now().Add(time.Minute)
			for {
				t0 := time.Now()
				status, retryAfter, err := s.post(addr, streamTarget, o.pid, fmt.Sprintf("P-%d", first+i))
				o.longest = max(o.longest, time.Since(t0))
				if err != nil {
					o.err = fmt.Errorf("attempt %d: %w", len(o.attempts)+1, err)
					return
				}
				o.attempts = append(o.attempts, strconv.Itoa(status))
				switch {
				case status == http.StatusAccepted || status == http.StatusOK:
					return
				case status != http.StatusServiceUnavailable:
					o.err = fmt.Errorf("answered %d", status)
					return
				case retryAfter <= 0:
					o.err = errors.New("answered 503 without Retry-After")
					return
				case time.Now().After(deadline):
					o.err = errors.New("still answered 503 a minute on")
					return
				}
				time.Sleep(retryAfter)
			}
		})
	}
	wg.Wait()
	streamed := time.Since(start)
	if err := <-done; err != nil {
		s.t.Fatalf("during the stream: %v", err)
	}
	var resent, failed int
	var longest time.Duration
	for _, o := range outcomes {
		longest = max(longest, o.longest)
		if len(o.attempts) > 1 {
			resent++
		}
		if o.err != nil {
			failed++
			s.t.Errorf("%s: %v (answers %v)", o.pid, o.err, o.attempts)
		}
	}
	s.t.Logf("%d notifications in %.1f s across the rollout, done %.1f s after the stream began: %d answered 503 at first and stored when sent again, %d failed; the longest answer took %.2f s",
		n, streamed.Seconds(), time.Since(start).Seconds(), resent, failed, longest.Seconds())
	if longest > 5*time.Second {
		s.t.Errorf("a notification waited %.1f s for its answer: more than a few seconds", longest.Seconds())
	}
	var list problemhookv1alpha1.ProblemEventList
	if err := s.kube.List(ctx, &list, client.InNamespace(s.ns)); err != nil {
		s.t.Fatal(err)
	}
	stored := map[string]int{}
	for _, ev := range list.Items {
		stored[ev.Spec.ProblemID]++
	}
	for _, o := range outcomes {
		if o.err == nil && stored[o.pid] != 1 {
			s.t.Errorf("%s was acknowledged and is stored %d times", o.pid, stored[o.pid])
		}
	}
}

// restart does what `kubectl rollout restart` does, and waits until the
// rollout is complete: every replica new and available.
func (s *suite) restart(ctx context.Context) error {
	patch := fmt.Sprintf(`{"spec":{"template":{"metadata":{"annotations":{"kubectl.kubernetes.io/restartedAt":%q}}}}}`, time.Now().Format(time.RFC3339))
	d, err := s.cs.AppsV1().Deployments(systemNamespace).Patch(ctx, deployment, types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{})
	if err != nil {
		return err
	}
	return s.rolledOut(ctx, d.Generation)
}

// rolledOut waits until the Deployment's rollout of generation is
// complete: every replica new and available.
func (s *suite) rolledOut(ctx context.Context, generation int64) error {
	deadline := time.Now().Add(3 * time.Minute)
	for {
		cur, err := s.cs.AppsV1().Deployments(systemNamespace).Get(ctx, deployment, metav1.GetOptions{})
		if err != nil {
			return err
		}
		st := cur.Status
		if st.ObservedGeneration >= generation && st.UpdatedReplicas == 2 && st.AvailableReplicas == 2 && st.Replicas == 2 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("rollout not complete after 3 minutes: %+v", st)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// post sends the OPEN notification of pid to the receiver at addr for
// target, on a connection of its own, and returns the answer's status and
// Retry-After.
func (s *suite) post(addr, target, pid, displayID string) (int, time.Duration, error) {
	body, _ := json.Marshal(map[string]string{
		"State": "OPEN", "PID": pid, "ProblemID": strings.TrimPrefix(displayID, "P-"),
		"ProblemTitle": "install " + displayID, "ProblemSeverity": "AVAILABILITY", "ProblemImpact": "INFRASTRUCTURE",
	})
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+problemhookv1alpha1.WebhookPath(s.ns, target), bytes.NewReader(body))
	req.SetBasicAuth(webhookUser, webhookPassword)
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.inNode.Do(req)
	if err != nil {
		return 0, 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	var retryAfter time.Duration
	if secs, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil {
		retryAfter = time.Duration(secs) * time.Second
	}
	return resp.StatusCode, retryAfter, nil
}

// metrics reads /metrics as a Prometheus would: a ServiceAccount of the
// tenant's bound to the problemhook-metrics-reader ClusterRole, with a
// token of its own, through the problemhook-metrics Service. The manager
// asks the API server who the token is and whether it may (the
// TokenReviews and SubjectAccessReviews its metrics-auth-role allows); a
// token of a ServiceAccount without the binding is refused.
func (s *suite) metrics() {
	ctx := context.Background()
	s.apply(`
apiVersion: v1
kind: ServiceAccount
metadata: {name: prometheus}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: stranger}
`)
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "problemhook-install-test-metrics-reader"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "problemhook-metrics-reader"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: s.ns, Name: "prometheus"}},
	}
	if err := s.kube.Create(ctx, binding); err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { _ = s.kube.Delete(context.Background(), binding) })
	svc, err := s.cs.CoreV1().Services(systemNamespace).Get(ctx, "problemhook-metrics", metav1.GetOptions{})
	if err != nil {
		s.t.Fatal(err)
	}
	url := "https://" + net.JoinHostPort(svc.Spec.ClusterIP, "8443") + "/metrics"
	// The manager's serving certificate is its own, self-signed: a
	// Prometheus would be told to trust it or skip the check.
	insecure := &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{
		DialContext: node.Dialer(s.nodeDir), TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // the test reads its own manager
	}}
	get := func(sa string) (int, string) {
		tr, err := s.cs.CoreV1().ServiceAccounts(s.ns).CreateToken(ctx, sa, &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
		if err != nil {
			s.t.Fatal(err)
		}
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		req.Header.Set("Authorization", "Bearer "+tr.Status.Token)
		resp, err := insecure.Do(req)
		if err != nil {
			s.t.Fatalf("GET %s as %s: %v", url, sa, err)
		}
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		return resp.StatusCode, string(body)
	}
	s.eventually("the reader gets /metrics", 30*time.Second, func() error {
		if status, body := get("prometheus"); status != http.StatusOK || !strings.Contains(body, "problemhook_") {
			return fmt.Errorf("answered %d: %.200s", status, body)
		}
		return nil
	})
	if status, _ := get("stranger"); status != http.StatusForbidden {
		s.t.Errorf("a ServiceAccount without the reader's binding got /metrics answered %d, want 403", status)
	}
}

// neverRefused reads the API server's audit log: no request of the
// manager's ServiceAccount was answered 403 at any time of the test, and
// each right dist/install.yaml gives it was used, or config/rbac's README
// says why it is needed all the same.
func (s *suite) neverRefused() {
	f, err := os.Open(node.AuditLog(s.nodeDir))
	if err != nil {
		s.t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	user := "system:serviceaccount:" + systemNamespace + ":" + serviceAccount
	used := map[string]int{}
	var requests, refused int
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var ev struct {
			User struct {
				Username string `json:"username"`
			} `json:"user"`
			ImpersonatedUser *struct{} `json:"impersonatedUser"`
			Verb             string    `json:"verb"`
			RequestURI       string    `json:"requestURI"`
			ObjectRef        *struct {
				Resource    string `json:"resource"`
				Subresource string `json:"subresource"`
				APIGroup    string `json:"apiGroup"`
			} `json:"objectRef"`
			ResponseStatus struct {
				Code int `json:"code"`
			} `json:"responseStatus"`
			Stage string `json:"stage"`
		}
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			s.t.Fatalf("audit log: %v", err)
		}
		if ev.User.Username != user || ev.Stage != "ResponseComplete" {
			continue
		}
		requests++
		if ev.ResponseStatus.Code == http.StatusForbidden {
			refused++
			s.t.Errorf("refused: %s %s", ev.Verb, ev.RequestURI)
		}
		if ev.ObjectRef != nil {
			resource := ev.ObjectRef.Resource
			if ev.ObjectRef.Subresource != "" {
				resource += "/" + ev.ObjectRef.Subresource
			}
			used[right(ev.Verb, resource, ev.ObjectRef.APIGroup)]++
		}
		if ev.ImpersonatedUser != nil {
			used[right("impersonate", "serviceaccounts", "")]++
		}
	}
	if err := sc.Err(); err != nil {
		s.t.Fatal(err)
	}
	if requests == 0 {
		s.t.Fatalf("the audit log holds no request of %s", user)
	}
	s.t.Logf("%d requests of %s, %d refused", requests, user, refused)

	explained := explainedRights(s.t)
	var unused []string
	for _, r := range s.rights() {
		if used[r] > 0 {
			continue
		}
		if _, ok := explained[r]; !ok {
			s.t.Errorf("%s: given to the manager and never used in this test, and config/rbac/README.md does not say why it is needed", r)
		}
		unused = append(unused, r)
	}
	s.t.Logf("rights not used in this test, each explained in config/rbac/README.md: %s", strings.Join(unused, "; "))
}

// right names one permission as config/rbac/README.md lists it: the verb
// and the resource, with its API group unless it is the core group.
func right(verb, resource, group string) string {
	if group != "" {
		resource += "." + group
	}
	return verb + " " + resource
}

// rights are the permissions dist/install.yaml binds to the manager's
// ServiceAccount, through its RoleBindings and ClusterRoleBindings.
func (s *suite) rights() []string {
	install, err := os.ReadFile(filepath.Join(controlplane.RepoRoot(), "dist", "install.yaml"))
	if err != nil {
		s.t.Fatal(err)
	}
	objs, err := manifests.Decode(install)
	if err != nil {
		s.t.Fatal(err)
	}
	roles := map[string][]rbacv1.PolicyRule{}
	var bound []string
	for _, o := range objs {
		switch o.GetKind() {
		case "Role", "ClusterRole":
			var r rbacv1.ClusterRole
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &r); err != nil {
				s.t.Fatal(err)
			}
			roles[o.GetKind()+"/"+o.GetName()] = r.Rules
		case "RoleBinding", "ClusterRoleBinding":
			var b rbacv1.ClusterRoleBinding
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &b); err != nil {
				s.t.Fatal(err)
			}
			for _, sub := range b.Subjects {
				if sub.Kind == rbacv1.ServiceAccountKind && sub.Name == serviceAccount && sub.Namespace == systemNamespace {
					bound = append(bound, b.RoleRef.Kind+"/"+b.RoleRef.Name)
				}
			}
		}
	}
	var rights []string
	for _, role := range bound {
		rules, ok := roles[role]
		if !ok {
			s.t.Fatalf("the manager is bound to %s, which dist/install.yaml does not hold", role)
		}
		for _, rule := range rules {
			for _, group := range rule.APIGroups {
				for _, resource := range rule.Resources {
					for _, verb := range rule.Verbs {
						rights = append(rights, right(verb, resource, group))
					}
				}
			}
		}
	}
	slices.Sort(rights)
	return slices.Compact(rights)
}

// explainedRights are the rights config/rbac/README.md explains, each on a
// line of its own that starts with "- `verb resource[.group]`".
func explainedRights(t *testing.T) map[string]string {
	b, err := os.ReadFile(filepath.Join(controlplane.RepoRoot(), "config", "rbac", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for line := range strings.Lines(string(b)) {
		rest, ok := strings.CutPrefix(line, "- `")
		if !ok {
			continue
		}
		name, why, ok := strings.Cut(rest, "`")
		if ok {
			out[name] = strings.TrimSpace(strings.TrimPrefix(why, ":"))
		}
	}
	return out
}

// notifyAndFollow adds a problem, notifies it at addr and follows it to
// its Job's end and the comment.
func (s *suite) notifyAndFollow(addr, displayID string) {
	pid := s.problem(displayID)
	s.notify(addr, pid, displayID)
	var ev *problemhookv1alpha1.ProblemEvent
	s.eventually("the event settles with its Job's exit code", 2*time.Minute, func() error {
		var err error
		if ev, err = s.event(pid); err != nil {
			return err
		}
		if len(ev.Status.Actions) != 1 || ev.Status.Actions[0].ExitCode == nil {
			return fmt.Errorf("actions %+v", ev.Status.Actions)
		}
		if ev.Status.Comment == nil || !ev.Status.Comment.Posted {
			return fmt.Errorf("comment %+v", ev.Status.Comment)
		}
		return nil
	})
	if code := *ev.Status.Actions[0].ExitCode; code != 4 {
		s.t.Errorf("the Job's exit code is recorded as %d, want 4", code)
	}
	comments := s.dt.Comments(pid)
	if len(comments) != 1 || !strings.Contains(comments[0].Content, "exit code 4") {
		s.t.Errorf("want one comment naming exit code 4 on the problem, got %+v", comments)
	}
}

// problem adds an open problem to the stand-in and returns its PID.
func (s *suite) problem(displayID string) string {
	pid := fmt.Sprintf("%d_%sV2", time.Now().UnixNano(), strings.TrimPrefix(displayID, "P-"))
	s.dt.AddProblem(dynatrace.Problem{
		ProblemID: pid, DisplayID: displayID, Title: "install " + displayID, Status: "OPEN",
		SeverityLevel: "AVAILABILITY", ImpactLevel: "INFRASTRUCTURE", StartTime: time.Now().UnixMilli(), EndTime: -1,
	})
	return pid
}

// notify posts Dynatrace's OPEN notification of pid to the receiver at
// addr and wants it created.
func (s *suite) notify(addr, pid, displayID string) {
	s.t.Helper()
	body, _ := json.Marshal(map[string]string{
		"State": "OPEN", "PID": pid, "ProblemID": strings.TrimPrefix(displayID, "P-"),
		"ProblemTitle": "install " + displayID, "ProblemSeverity": "AVAILABILITY", "ProblemImpact": "INFRASTRUCTURE",
	})
	// A Service is refused until kube-proxy has written its rules, which
	// on this node it does at most every 3 s: a sender tries again.
	var resp *http.Response
	deadline := time.Now().Add(10 * time.Second)
	for {
		req, _ := http.NewRequest(http.MethodPost, "http://"+addr+problemhookv1alpha1.WebhookPath(s.ns, fixtures.TargetName), bytes.NewReader(body))
		req.SetBasicAuth(webhookUser, webhookPassword)
		req.Header.Set("Content-Type", "application/json")
		var err error
		if resp, err = s.inNode.Do(req); err == nil {
			break
		}
		if !errors.Is(err, syscall.ECONNREFUSED) || time.Now().After(deadline) {
			s.t.Fatalf("posting %s to %s: %v", displayID, addr, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
	answer, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted || !bytes.Contains(answer, []byte(`"result":"created"`)) {
		s.t.Fatalf("posting %s to %s: want 202 created, got %s: %s", displayID, addr, resp.Status, answer)
	}
}

// event is the one ProblemEvent of pid: an error when there is none, and
// a failed test when there are more.
func (s *suite) event(pid string) (*problemhookv1alpha1.ProblemEvent, error) {
	var list problemhookv1alpha1.ProblemEventList
	if err := s.kube.List(context.Background(), &list, client.InNamespace(s.ns)); err != nil {
		return nil, err
	}
	var found []*problemhookv1alpha1.ProblemEvent
	for i := range list.Items {
		if list.Items[i].Spec.ProblemID == pid {
			found = append(found, &list.Items[i])
		}
	}
	switch len(found) {
	case 0:
		return nil, fmt.Errorf("no event of %s yet", pid)
	case 1:
		return found[0], nil
	}
	s.t.Fatalf("%d events of %s: a notification is stored once", len(found), pid)
	return nil, nil
}

// managerPods are the running Pods of the manager's Deployment.
func (s *suite) managerPods() []corev1.Pod {
	pods, err := s.cs.CoreV1().Pods(systemNamespace).List(context.Background(), metav1.ListOptions{LabelSelector: "app.kubernetes.io/component=manager"})
	if err != nil {
		s.t.Fatal(err)
	}
	var running []corev1.Pod
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning {
			running = append(running, p)
		}
	}
	return running
}

// leader is the Pod that holds the manager's Lease: controller-runtime
// names the holder <hostname>_<uuid>, and a Pod's hostname is its name.
func (s *suite) leader() string {
	var lease coordinationv1.Lease
	if err := s.kube.Get(context.Background(), client.ObjectKey{Namespace: systemNamespace, Name: leaseName}, &lease); err != nil || lease.Spec.HolderIdentity == nil {
		return ""
	}
	pod, _, _ := strings.Cut(*lease.Spec.HolderIdentity, "_")
	return pod
}

// apply creates the objects of a YAML stream in the test's namespace.
func (s *suite) apply(manifest string) {
	s.t.Helper()
	if err := manifests.CreateIn(context.Background(), s.kube, s.ns, manifest); err != nil {
		s.t.Fatalf("test manifest: %v", err)
	}
}

// eventually retries check until it passes or timeout, and fails the test
// with the last error.
func (s *suite) eventually(what string, timeout time.Duration, check func() error) {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("waiting %s for %s: %v", timeout, what, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// dump logs what a person needs to see why a step failed: the manager's
// Pods, their containers and the end of their logs, and the Events of the
// system and tenant namespaces.
func (s *suite) dump() {
	ctx := context.Background()
	var b strings.Builder
	for _, ns := range []string{systemNamespace, s.ns} {
		pods, _ := s.cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		for _, p := range pods.Items {
			fmt.Fprintf(&b, "Pod %s/%s: %s %s %s\n", ns, p.Name, p.Status.Phase, p.Status.Reason, p.Status.Message)
			for _, c := range p.Status.ContainerStatuses {
				state, _ := json.Marshal(c.State)
				fmt.Fprintf(&b, "  container %s: ready=%v restarts=%d %s\n", c.Name, c.Ready, c.RestartCount, state)
			}
			tail := int64(40)
			if log, err := s.cs.CoreV1().Pods(ns).GetLogs(p.Name, &corev1.PodLogOptions{TailLines: &tail}).DoRaw(ctx); err == nil {
				fmt.Fprintf(&b, "  log:\n    | %s\n", strings.ReplaceAll(strings.TrimRight(string(log), "\n"), "\n", "\n    | "))
			}
		}
		events, _ := s.cs.CoreV1().Events(ns).List(ctx, metav1.ListOptions{})
		for _, ev := range events.Items {
			fmt.Fprintf(&b, "Event %s %s/%s %s: %s\n", ev.Type, ev.InvolvedObject.Kind, ev.InvolvedObject.Name, ev.Reason, ev.Message)
		}
	}
	s.t.Log("\n" + b.String())
}
