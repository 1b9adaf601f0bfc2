// Package localrun is what `make run` runs, through hack/localrun: the
// manager against the cluster of KUBECONFIG when one is reachable, and
// otherwise against an embedded control plane (kube-apiserver and etcd on
// this machine) with the CRDs and config/samples applied; with --node
// (`make run NODE=1`), problemhook installed as a user installs it (its
// image and dist/install.yaml) on a real single-node cluster on this
// machine instead, on which the sample route's Jobs really run. Ctrl-C
// stops everything it started.
package localrun

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/transport/spdy"
	"sigs.k8s.io/controller-runtime/pkg/client"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
	"github.com/problemhook/problemhook/internal/dynatrace"
	"github.com/problemhook/problemhook/internal/dynatrace/dynatracetest"
	"github.com/problemhook/problemhook/internal/scheme"
	"github.com/problemhook/problemhook/test/harness/controlplane"
	"github.com/problemhook/problemhook/test/harness/managerproc"
	"github.com/problemhook/problemhook/test/harness/manifests"
	"github.com/problemhook/problemhook/test/harness/node"
)

// Main runs the manager as `make run` does, with the command-line flags in
// args (without the program's name), until ctx ends or the manager exits:
// what to try goes to stdout with the manager's log, errors to stderr. It
// returns the exit code: 0 when stopped, 1 on an error, 2 when the flags
// are wrong.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	lr := localRun{out: stdout, errOut: stderr}
	flags := flag.NewFlagSet("local-run", flag.ContinueOnError)
	flags.SetOutput(stderr)
	flags.StringVar(&lr.manager, "manager", "bin/manager", "The manager binary to run.")
	flags.StringVar(&lr.root, "root", ".", "The problemhook source tree: config/ is read from it.")
	flags.StringVar(&lr.kubeconfig, "local-kubeconfig", filepath.Join("bin", "local", "kubeconfig"), "Where to write the kubeconfig of the embedded control plane.")
	flags.StringVar(&lr.receiverAddr, "receiver-bind-address", "127.0.0.1:9292", "Where the manager's receiver listens.")
	flags.StringVar(&lr.probeAddr, "health-probe-bind-address", "127.0.0.1:8081", "Where the manager's probes listen.")
	flags.StringVar(&lr.metricsAddr, "metrics-bind-address", "127.0.0.1:8080", "Where the manager's metrics listen.")
	flags.StringVar(&lr.dashboardAddr, "dashboard-bind-address", "127.0.0.1:9293", "Where the manager's dashboard listens.")
	flags.BoolVar(&lr.node, "node", false, "Run on a single-node cluster on this machine (Linux, root), whose Jobs really run.")
	flags.StringVar(&lr.nodeDir, "node-dir", "/tmp/problemhook-node", "The node's work directory.")
	flags.StringVar(&lr.pause, "pause", "bin/e2e/pause", "The node's pod sandbox program (test/harness/node/pause).")
	flags.StringVar(&lr.image, "image", "bin/image.tar", "The manager's image, as make image writes it: the node runs problemhook from it and dist/install.yaml.")
	if err := flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if err := lr.run(ctx); err != nil {
		fmt.Fprintln(stderr, "local-run:", err)
		return 1
	}
	return 0
}

// localRun runs the manager in the foreground, on a cluster it finds or one it starts.
type localRun struct {
	manager, root, kubeconfig                           string
	receiverAddr, probeAddr, metricsAddr, dashboardAddr string
	// out gets what to try and the manager's log, errOut errors and the
	// manager's own stderr.
	out, errOut io.Writer
	// dynatraceURL is the fake Dynatrace of the embedded control plane.
	dynatraceURL string
	// node runs on a single-node cluster in nodeDir instead of the
	// embedded control plane.
	node                  bool
	nodeDir, pause, image string
}

// demoNamespace is where config/samples puts its objects.
const demoNamespace = "problemhook-demo"

// run runs the manager on the cluster it finds, or on one it starts.
func (lr *localRun) run(ctx context.Context) error {
	if lr.node {
		return lr.runOnNode(ctx)
	}
	if cfg, kubeconfig, ok := lr.reachableCluster(); ok {
		fmt.Fprintf(lr.out, "Using the cluster of %s\n", kubeconfig)
		if err := manifests.InstallAPI(ctx, cfg, lr.root); err != nil {
			return err
		}
		return lr.runManager(ctx, kubeconfig, false)
	}

	fmt.Fprintln(lr.out, "No reachable cluster: starting an embedded control plane (kube-apiserver and etcd)")
	env, err := controlplane.Start(lr.root)
	if err != nil {
		return err
	}
	defer func() {
		fmt.Fprintln(lr.out, "Stopping the control plane")
		if err := env.Stop(); err != nil {
			fmt.Fprintln(lr.errOut, "local-run: stopping the control plane:", err)
		}
	}()
	if err := env.WriteKubeconfig(lr.kubeconfig); err != nil {
		return err
	}
	return lr.runDemo(ctx, env.Config)
}

// sampleImage is the image config/samples' route runs. The node cannot
// pull it, so its busybox answers to this name too.
const sampleImage = "docker.io/library/busybox:1.36"

// runOnNode runs the demo on a single-node cluster on this machine, and
// takes the node down when it ends.
func (lr *localRun) runOnNode(ctx context.Context) error {
	fmt.Fprintf(lr.out, "Starting a single-node cluster in %s: the sample route's Jobs really run on it\n", lr.nodeDir)
	// A node left by a run that was killed outright goes first.
	if err := node.Down(ctx, lr.nodeDir, lr.out); err != nil {
		return err
	}
	o := node.Options{
		Dir: lr.nodeDir, Assets: os.Getenv("KUBEBUILDER_ASSETS"), PauseBinary: lr.pause,
		BusyboxAliases: []string{sampleImage}, Log: lr.out,
	}
	upErr := node.Up(ctx, o)
	defer func() {
		fmt.Fprintln(lr.out, "Taking the node down")
		if err := node.Down(context.WithoutCancel(ctx), lr.nodeDir, lr.out); err != nil {
			fmt.Fprintln(lr.errOut, "local-run: taking the node down:", err)
		}
	}()
	if upErr != nil {
		return upErr
	}
	lr.kubeconfig = node.AdminKubeconfig(lr.nodeDir)
	cfg, err := clientcmd.BuildConfigFromFlags("", lr.kubeconfig)
	if err != nil {
		return err
	}
	// problemhook as a user installs it: its image, and dist/install.yaml.
	fmt.Fprintf(lr.out, "Installing problemhook from %s and dist/install.yaml\n", lr.image)
	if err := node.ImportImage(ctx, lr.nodeDir, lr.image); err != nil {
		return fmt.Errorf("%w (make image builds it)", err)
	}
	install, err := os.ReadFile(filepath.Join(lr.root, "dist", "install.yaml"))
	if err != nil {
		return err
	}
	objs, err := manifests.Decode(install)
	if err != nil {
		return err
	}
	if err := manifests.Apply(ctx, cfg, objs); err != nil {
		return fmt.Errorf("applying dist/install.yaml: %w", err)
	}
	return lr.runInstalled(ctx, cfg)
}

// The installed manager, as dist/install.yaml names it.
const (
	systemNamespace = "problemhook-system"
	managerName     = "problemhook-controller-manager"
	receiverService = "problemhook-receiver"
	receiverPort    = "9292"
	dashboardPort   = 9293
)

// runInstalled runs the demo against the manager installed on the node:
// config/samples, a fake Dynatrace the manager's Pods reach inside the
// node's network, and on the host's loopback the receiver's Service, the
// fake Dynatrace and one replica's dashboard, so that what it prints works
// from the host's shell. It returns when ctx ends.
func (lr *localRun) runInstalled(ctx context.Context, cfg *rest.Config) error {
	if err := apply(ctx, cfg, filepath.Join(lr.root, "config", "samples")); err != nil {
		return err
	}
	l, err := node.Listen(lr.nodeDir, "tcp", net.JoinHostPort(node.NodeIP, "0"))
	if err != nil {
		return err
	}
	dt, err := connectFakeDynatrace(ctx, cfg, l)
	if err != nil {
		return err
	}
	defer dt.Close()
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	svc, err := cs.CoreV1().Services(systemNamespace).Get(ctx, receiverService, metav1.GetOptions{})
	if err != nil {
		return err
	}
	stop, err := lr.forwardToNode(lr.receiverAddr, net.JoinHostPort(svc.Spec.ClusterIP, receiverPort))
	if err != nil {
		return err
	}
	defer stop()
	dtAddr, err := controlplane.FreeLoopbackAddr()
	if err != nil {
		return err
	}
	if stop, err = lr.forwardToNode(dtAddr, l.Addr().String()); err != nil {
		return err
	}
	defer stop()
	lr.dynatraceURL = "http://" + dtAddr

	pod, err := waitForReplicas(ctx, cs)
	if err != nil {
		return err
	}
	stopForward := make(chan struct{})
	defer close(stopForward)
	if err := portForward(cfg, cs, pod, lr.dashboardAddr, dashboardPort, stopForward, lr.errOut); err != nil {
		return fmt.Errorf("forwarding %s to the dashboard of %s: %w", lr.dashboardAddr, pod, err)
	}
	lr.waitForDemoTarget(ctx, lr.kubeconfig)
	// kube-proxy refuses a Service's address until it has written its
	// rules: the printed curl must work at once.
	dial := node.Dialer(lr.nodeDir)
	receiver := net.JoinHostPort(svc.Spec.ClusterIP, receiverPort)
	for deadline := time.Now().Add(30 * time.Second); ctx.Err() == nil && time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		if conn, err := dial(ctx, "tcp", receiver); err == nil {
			_ = conn.Close()
			break
		}
	}
	lr.printDemo(lr.kubeconfig)
	<-ctx.Done()
	return nil
}

// forwardToNode joins each connection to from, on the host's loopback, to
// to inside the node's network, until the returned stop is called.
func (lr *localRun) forwardToNode(from, to string) (func(), error) {
	l, err := net.Listen("tcp", from)
	if err != nil {
		return nil, err
	}
	dial := node.Dialer(lr.nodeDir)
	go func() {
		_ = node.Forward(l, func() (net.Conn, error) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			return dial(ctx, "tcp", to)
		})
	}()
	return func() { _ = l.Close() }, nil
}

// waitForReplicas waits until the manager's Deployment is Available with
// every replica, and returns the name of one of its running Pods.
func waitForReplicas(ctx context.Context, cs *kubernetes.Clientset) (string, error) {
	deadline := time.Now().Add(3 * time.Minute)
	for {
		d, err := cs.AppsV1().Deployments(systemNamespace).Get(ctx, managerName, metav1.GetOptions{})
		if err == nil && d.Spec.Replicas != nil && d.Status.AvailableReplicas == *d.Spec.Replicas && d.Status.UpdatedReplicas == *d.Spec.Replicas {
			pods, err := cs.CoreV1().Pods(systemNamespace).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/component=manager"})
			if err != nil {
				return "", err
			}
			for _, p := range pods.Items {
				if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
					return p.Name, nil
				}
			}
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("the Deployment %s/%s is not Available 3 minutes after it was applied", systemNamespace, managerName)
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// portForward forwards local, on the host's loopback, to port of the Pod
// pod in systemNamespace, as `kubectl port-forward` does, until stop is
// closed: the dashboard listens on each Pod's loopback only.
func portForward(cfg *rest.Config, cs *kubernetes.Clientset, pod, local string, port int, stop chan struct{}, errOut io.Writer) error {
	host, localPort, err := net.SplitHostPort(local)
	if err != nil {
		return err
	}
	transport, upgrader, err := spdy.RoundTripperFor(cfg)
	if err != nil {
		return err
	}
	url := cs.CoreV1().RESTClient().Post().Resource("pods").Namespace(systemNamespace).Name(pod).SubResource("portforward").URL()
	dialer := spdy.NewDialer(upgrader, &http.Client{Transport: transport}, http.MethodPost, url)
	ready := make(chan struct{})
	pf, err := portforward.NewOnAddresses(dialer, []string{host}, []string{fmt.Sprintf("%s:%d", localPort, port)}, stop, ready, io.Discard, errOut)
	if err != nil {
		return err
	}
	failed := make(chan error, 1)
	go func() { failed <- pf.ForwardPorts() }()
	select {
	case <-ready:
		return nil
	case err := <-failed:
		return err
	}
}

// runDemo applies config/samples, connects the sample target to a fake
// Dynatrace and runs the manager in the foreground.
func (lr *localRun) runDemo(ctx context.Context, cfg *rest.Config) error {
	if err := apply(ctx, cfg, filepath.Join(lr.root, "config", "samples")); err != nil {
		return err
	}
	dt, err := connectFakeDynatrace(ctx, cfg, nil)
	if err != nil {
		return err
	}
	defer dt.Close()
	lr.dynatraceURL = dt.URL()
	return lr.runManager(ctx, lr.kubeconfig, true)
}

// The problem the printed curl notifies, as the fake Dynatrace knows it.
const (
	demoPID   = "-6150203450926486413_1669823466223V2"
	missedPID = "-4411822046282361020_1669820000000V2"
	demoToken = "local-demo-token"
)

// connectFakeDynatrace starts an in-memory Dynatrace API that knows the
// demo problem, on l (on its own port of the host's loopback when nil),
// and connects the sample target to it: the demo's events are enriched
// from it and comment on it, as they would on a real one.
func connectFakeDynatrace(ctx context.Context, cfg *rest.Config, l net.Listener) (*dynatracetest.Server, error) {
	dt := dynatracetest.NewServer(dynatracetest.ServerOptions{Listener: l})
	dt.AddToken(demoToken, dynatracetest.ScopeRead, dynatracetest.ScopeWrite)
	host := func(id, name string) dynatrace.EntityStub {
		return dynatrace.EntityStub{EntityID: dynatrace.EntityID{ID: id, Type: "HOST"}, Name: name}
	}
	web01 := host("HOST-0000000000000001", "web01")
	// It opens now: the poller covers only what is two minutes old, so the
	// printed curl is what records it.
	dt.AddProblem(dynatrace.Problem{
		ProblemID: demoPID, DisplayID: "P-1234", Title: "CPU saturation", Status: "OPEN",
		SeverityLevel: "RESOURCE_CONTENTION", ImpactLevel: "INFRASTRUCTURE",
		StartTime: time.Now().UnixMilli(), EndTime: -1,
		ImpactedEntities: []dynatrace.EntityStub{web01, host("HOST-0000000000000002", "web02")},
		RootCauseEntity:  &web01,
		EntityTags:       []dynatrace.EntityTag{{Context: "CONTEXTLESS", Key: "env", Value: "prod", StringRepresentation: "env:prod"}},
	})
	// A problem whose notifications never arrived: the poller records it
	// as opened and resolved. The sample route does not match its severity.
	checkout := dynatrace.EntityStub{EntityID: dynatrace.EntityID{ID: "SERVICE-00000000000000A1", Type: "SERVICE"}, Name: "checkout"}
	dt.AddProblem(dynatrace.Problem{
		ProblemID: missedPID, DisplayID: "P-1233", Title: "Response time degradation", Status: "CLOSED",
		SeverityLevel: "PERFORMANCE", ImpactLevel: "SERVICES",
		StartTime: time.Now().Add(-40 * time.Minute).UnixMilli(), EndTime: time.Now().Add(-10 * time.Minute).UnixMilli(),
		ImpactedEntities: []dynatrace.EntityStub{checkout},
		RootCauseEntity:  &checkout,
	})
	c, err := client.New(cfg, client.Options{Scheme: scheme.New()})
	if err != nil {
		dt.Close()
		return nil, err
	}
	err = c.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: demoNamespace, Name: "dynatrace-api"},
		StringData: map[string]string{"token": demoToken},
	})
	if err == nil {
		target := &problemhookv1alpha1.NotificationTarget{ObjectMeta: metav1.ObjectMeta{Namespace: demoNamespace, Name: "dynatrace"}}
		patch := fmt.Appendf(nil, `{"spec":{"dynatrace":{"url":%q,"tokenSecretRef":{"name":"dynatrace-api"},"poll":{"interval":"1m","window":"2h"}}}}`, dt.URL())
		err = c.Patch(ctx, target, client.RawPatch(types.MergePatchType, patch))
	}
	if err != nil {
		dt.Close()
		return nil, fmt.Errorf("connecting the sample target to the fake Dynatrace: %w", err)
	}
	return dt, nil
}

// reachableCluster loads the kubeconfig client-go would use and reports
// whether its API server answers.
func (lr *localRun) reachableCluster() (*rest.Config, string, bool) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	kubeconfig := os.Getenv("KUBECONFIG")
	if kubeconfig == "" {
		kubeconfig = rules.GetDefaultFilename()
	}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, nil).ClientConfig()
	if err != nil {
		return nil, "", false
	}
	cfg.Timeout = 3 * time.Second
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, "", false
	}
	if _, err := dc.ServerVersion(); err != nil {
		fmt.Fprintf(lr.out, "The cluster of %s is not reachable (%v)\n", kubeconfig, err)
		return nil, "", false
	}
	return cfg, kubeconfig, true
}

// apply server-side applies every manifest in dir.
func apply(ctx context.Context, cfg *rest.Config, dir string) error {
	objs, err := manifests.ReadDir(dir)
	if err != nil {
		return err
	}
	return manifests.Apply(ctx, cfg, objs)
}

// runManager runs the manager in the foreground until ctx ends or it exits.
func (lr *localRun) runManager(ctx context.Context, kubeconfig string, local bool) error {
	cmd := exec.Command(lr.manager,
		"--kubeconfig", kubeconfig,
		"--receiver-bind-address", lr.receiverAddr,
		"--receiver-url", "http://"+lr.receiverAddr,
		"--metrics-bind-address", lr.metricsAddr,
		"--dashboard-bind-address", lr.dashboardAddr,
		"--health-probe-bind-address", lr.probeAddr,
		// Plain metrics on loopback, and the stand-in Dynatrace listens
		// on loopback too: opened here, closed in a cluster.
		"--metrics-secure=false",
		// No Service routes to a process on the host: Ctrl-C stops it at once.
		"--receiver-drain-delay=0",
		"--egress-allow-cidrs", managerproc.LoopbackCIDRs,
	)
	cmd.Stdout, cmd.Stderr = lr.out, lr.errOut
	// Its own process group: Ctrl-C reaches local-run, which stops the
	// manager first and the control plane after it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", lr.manager, err)
	}
	var waitErr error
	exited := make(chan struct{})
	go func() { waitErr = cmd.Wait(); close(exited) }()
	go lr.announce(ctx, kubeconfig, local)
	select {
	case <-exited:
		return fmt.Errorf("manager exited: %w", waitErr)
	case <-ctx.Done():
		// The manager's exit status after SIGTERM says nothing new.
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		return nil
	}
}

// announce prints how to try problemhook once the receiver is ready.
func (lr *localRun) announce(ctx context.Context, kubeconfig string, local bool) {
	for ctx.Err() == nil {
		resp, err := http.Get("http://" + lr.probeAddr + "/readyz")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		time.Sleep(500 * time.Millisecond)
	}
	if ctx.Err() != nil {
		return
	}
	if !local {
		fmt.Fprintf(lr.out, "\nproblemhook is receiving on http://%s/hooks/<namespace>/<target>.\nDashboard: http://%s/\n\n", lr.receiverAddr, lr.dashboardAddr)
		return
	}
	// The curl it prints must work at once: the sample target must be
	// Ready, not only the receiver.
	lr.waitForDemoTarget(ctx, kubeconfig)
	lr.printDemo(kubeconfig)
}

// printDemo prints how to try the demo.
func (lr *localRun) printDemo(kubeconfig string) {
	receiverURL := "http://" + lr.receiverAddr
	runsOn, stopped := "an embedded control plane", "control plane"
	if lr.node {
		runsOn = "a single-node cluster on this machine, installed from dist/install.yaml\nas two Pods of the image make image built"
		stopped = "node"
	}
	fmt.Fprintf(lr.out, `
problemhook is running on %[9]s. Its dashboard:

  http://%[6]s/

Send a notification:

  curl -u dynatrace:change-me -H 'Content-Type: application/json' \
    -d '{"State":"OPEN","ProblemID":"1234","PID":"%[3]s","ProblemTitle":"CPU saturation","ProblemSeverity":"RESOURCE_CONTENTION","ProblemImpact":"INFRASTRUCTURE"}' \
    %[1]s/hooks/problemhook-demo/dynatrace

and see what it stored, and the Jobs the sample route made for it (one per
impacted entity), on the dashboard or with kubectl:

  bin/kubectl --kubeconfig %[2]s get problemevents -A
  bin/kubectl --kubeconfig %[2]s -n problemhook-demo get pe -o yaml
  bin/kubectl --kubeconfig %[2]s -n problemhook-demo get jobs

The sample target reads the problem's details from a fake Dynatrace API at
%[4]s, and comments there once the event's Jobs have ended. %[7]s
The fake's comments:

  curl -H 'Authorization: Api-Token %[5]s' %[4]s/api/v2/problems/%[3]s/comments

The target polls the fake every minute for problems whose notifications
never arrived: P-1233 opened and resolved before problemhook started, and
is on the dashboard as found by polling.

Ctrl-C stops the manager and the %[8]s.

`, receiverURL, kubeconfig, demoPID, lr.dynatraceURL, demoToken, lr.dashboardAddr, lr.jobsNote(kubeconfig), stopped, runsOn)
}

// jobsNote says where the sample route's Jobs run.
func (lr *localRun) jobsNote(kubeconfig string) string {
	if !lr.node {
		return "This\ncontrol plane has no node, so its Jobs stay pending; on a real cluster\nthey run (make run NODE=1 runs them on this machine)."
	}
	return fmt.Sprintf(`The
node runs them (its busybox answers to busybox:1.36, as it pulls nothing);
what each printed:

  bin/kubectl --kubeconfig %s -n problemhook-demo logs -l problemhook.io/route=legacy-incident
`, kubeconfig)
}

// waitForDemoTarget waits, at most a minute, until the sample target that
// the printed curl posts to accepts notifications.
func (lr *localRun) waitForDemoTarget(ctx context.Context, kubeconfig string) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme.New()})
	if err != nil {
		return
	}
	deadline := time.Now().Add(time.Minute)
	for ctx.Err() == nil && time.Now().Before(deadline) {
		var nt problemhookv1alpha1.NotificationTarget
		if c.Get(ctx, client.ObjectKey{Namespace: demoNamespace, Name: "dynatrace"}, &nt) == nil &&
			meta.IsStatusConditionTrue(nt.Status.Conditions, problemhookv1alpha1.ConditionReady) {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
}
