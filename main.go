// Command manager runs problemhook: the receiver and the dashboard on every
// replica and the reconcilers on the leader. `manager poll` and
// `manager send-test` are its command line.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"
	_ "time/tzdata" // routes' muteTimeIntervals name IANA zones, whatever the image holds

	batchv1 "k8s.io/api/batch/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/problemhook/problemhook/controllers"
	"github.com/problemhook/problemhook/controllers/integrationroute"
	"github.com/problemhook/problemhook/controllers/notificationtarget"
	"github.com/problemhook/problemhook/controllers/problemevent"
	"github.com/problemhook/problemhook/internal/cli"
	"github.com/problemhook/problemhook/internal/dtconn"
	"github.com/problemhook/problemhook/internal/egress"
	"github.com/problemhook/problemhook/internal/jobs"
	leaderpkg "github.com/problemhook/problemhook/internal/leader"
	"github.com/problemhook/problemhook/internal/notify"
	"github.com/problemhook/problemhook/internal/scheme"
	"github.com/problemhook/problemhook/internal/version"
	"github.com/problemhook/problemhook/webhookserver/dashboard"
	"github.com/problemhook/problemhook/webhookserver/receiver"
)

// The receiver Service that config/ deploys; senders reach targets through it.
const receiverService = "problemhook-receiver"

// options are the manager's command-line settings.
type options struct {
	metricsAddr, probeAddr, receiverAddr, receiverURL string
	dashboardAddr, pprofAddr                          string
	receiverCert, receiverKey                         string
	dashboardHosts                                    []string
	metricsSecure                                     bool
	// jobs is what routes' Jobs may do; egressAllow and egressDeny amend
	// the egress policy of every call made for a tenant.
	jobs                    jobs.Policy
	egressAllow, egressDeny string
	// namespace is the manager's own: its leader election Lease lives there.
	namespace        string
	leaderElect      bool
	maxBodyBytes     int64
	maxInFlight      int
	maxBytesInFlight int64
	drainDelay       time.Duration
	qps              float64
	burst            int
	eventWorkers     int
	podStartTimeout  time.Duration
}

func main() {
	// `manager poll`, `manager send-test` and `manager routes test` are
	// the command line; the manager runs when no command is named.
	if len(os.Args) > 1 && cli.IsCommand(os.Args[1]) {
		os.Exit(cli.Main(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
	}
	var o options
	flag.StringVar(&o.metricsAddr, "metrics-bind-address", ":8443", "Address the metrics endpoint binds to; 0 disables it.")
	flag.BoolVar(&o.metricsSecure, "metrics-secure", true, "Serve metrics over HTTPS to callers the API server authenticates and authorizes "+
		"(get on the non-resource URL /metrics); false serves plain HTTP to anyone.")
	flag.StringVar(&o.probeAddr, "health-probe-bind-address", ":8081", "Address the health probes bind to.")
	flag.StringVar(&o.receiverAddr, "receiver-bind-address", receiver.DefaultAddr, "Address the notification receiver binds to.")
	flag.StringVar(&o.dashboardAddr, "dashboard-bind-address", dashboard.DefaultAddr, "Address the read-only dashboard binds to; 0 disables it. "+
		"The default is loopback only, which kubectl port-forward reaches.")
	flag.Func("dashboard-host", "A host name the dashboard answers to besides localhost, 127.0.0.1 and ::1 (repeatable); others get 421.", func(h string) error {
		o.dashboardHosts = append(o.dashboardHosts, h)
		return nil
	})
	flag.StringVar(&o.pprofAddr, "pprof-bind-address", "0", "Address net/http/pprof binds to, for profiling; 0 disables it.")
	flag.StringVar(&o.receiverURL, "receiver-url", "", "Base URL senders reach the receiver at, shown in each target's status.webhookURL. "+
		"Default: http://"+receiverService+".<POD_NAMESPACE>.svc:9292.")
	flag.StringVar(&o.receiverCert, "receiver-tls-cert-file", "", "Serve the receiver over HTTPS with this certificate (PEM), reloaded when it changes.")
	flag.StringVar(&o.receiverKey, "receiver-tls-key-file", "", "The private key (PEM) of --receiver-tls-cert-file.")
	flag.Int64Var(&o.maxBodyBytes, "receiver-max-body-bytes", receiver.DefaultMaxBodyBytes, "Largest notification body accepted; larger ones get 413.")
	flag.Int64Var(&o.maxBytesInFlight, "receiver-max-bytes-inflight", receiver.DefaultMaxBytesInFlight, "Most bytes of notification bodies one replica reads and stores at once, taken before a body is read; past it the receiver answers 503 with Retry-After at once.")
	flag.IntVar(&o.maxInFlight, "receiver-max-inflight", receiver.DefaultMaxInFlight, "Most notifications one replica stores at once; past it the receiver answers 503 with Retry-After at once.")
	flag.DurationVar(&o.drainDelay, "receiver-drain-delay", receiver.DefaultDrainDelay, "How long a stopping replica goes on taking notifications, not ready, before it stops listening, while its removal from the Service reaches every kube-proxy. 0 outside a cluster.")
	flag.BoolVar(&o.leaderElect, "leader-elect", false, "Elect a leader to run the reconcilers. Receivers run on every replica regardless.")
	// Every notification is stored before it is acknowledged, so the
	// receiver is as fast as it may create ProblemEvents: client-go's
	// default of 5 QPS would cap it far below what the API server can
	// store. The API server's own priority and fairness protects it.
	flag.Float64Var(&o.qps, "kube-api-qps", 500, "Client-side rate limit of requests to the API server, per second, for the receiver and the reconcilers each.")
	flag.IntVar(&o.burst, "kube-api-burst", 1000, "Client-side burst of requests to the API server, for the receiver and the reconcilers each.")
	flag.IntVar(&o.eventWorkers, "event-workers", 32, "How many ProblemEvents are worked on at once.")
	flag.DurationVar(&o.podStartTimeout, "job-pod-start-timeout", problemevent.DefaultPodStartTimeout, "How long a Job's Pod may wait for a reason that will not clear by itself (an image that cannot be pulled, a missing Secret, no node) before its run fails and the Job is deleted.")
	flag.StringVar(&o.jobs.DefaultServiceAccount, "default-service-account", "", "ServiceAccount, in a route's namespace, whose rights the Jobs of a route "+
		"that names none are created with. Unset, such Jobs are created with the operator's own rights: set it in a cluster that teams share.")
	flag.BoolVar(&o.jobs.AllowPrivileged, "allow-privileged-jobs", false, "Let Job templates ask for the node: privileged containers, added "+
		"capabilities, host namespaces and ports, hostPath volumes.")
	flag.StringVar(&o.egressAllow, "egress-allow-cidrs", "", "Comma-separated ranges that calls made for a tenant (HTTP, DingTalk, Twilio, "+
		"Dynatrace) may reach although the built-in policy refuses them: loopback, link-local, unspecified, multicast, cloud metadata.")
	flag.StringVar(&o.egressDeny, "egress-deny-cidrs", "", "Comma-separated ranges that calls made for a tenant may not reach, e.g. the cluster's "+
		"private ranges. The most specific range given wins.")
	showVersion := flag.Bool("version", false, "Print the version and the commit, and exit.")
	zapOpts := zap.Options{}
	zapOpts.BindFlags(flag.CommandLine)
	flag.Parse()
	if *showVersion {
		fmt.Println(version.String())
		return
	}
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))

	o.namespace = os.Getenv("POD_NAMESPACE")
	if o.namespace == "" {
		o.namespace = "problemhook-system"
	}
	if o.receiverURL == "" {
		scheme := "http"
		if o.receiverCert != "" {
			scheme = "https"
		}
		o.receiverURL = fmt.Sprintf("%s://%s.%s.svc:9292", scheme, receiverService, o.namespace)
	}
	if err := run(ctrl.SetupSignalHandler(), o); err != nil {
		ctrl.Log.Error(err, "Manager stopped")
		os.Exit(1)
	}
}

func run(ctx context.Context, o options) error {
	cfg, err := ctrl.GetConfig()
	if err != nil {
		return fmt.Errorf("loading kubeconfig: %w", err)
	}
	cfg.QPS, cfg.Burst = float32(o.qps), o.burst
	allow, err := egress.ParseCIDRs(o.egressAllow)
	if err != nil {
		return fmt.Errorf("--egress-allow-cidrs: %w", err)
	}
	deny, err := egress.ParseCIDRs(o.egressDeny)
	if err != nil {
		return fmt.Errorf("--egress-deny-cidrs: %w", err)
	}
	policy := egress.New(allow, deny)
	metrics := metricsserver.Options{BindAddress: o.metricsAddr}
	if o.metricsSecure {
		// As kubebuilder scaffolds it: HTTPS with a self-signed
		// certificate, each caller's token reviewed and its access to
		// /metrics checked by the API server.
		metrics.SecureServing, metrics.FilterProvider = true, filters.WithAuthenticationAndAuthorization
	}
	// The replica's manager: the cache, the receiver, the dashboard, the
	// probes and the metrics, for as long as the process lives.
	options := ctrl.Options{
		Scheme: scheme.New(),
		// Nothing reads managedFields; without them each cached event is
		// about a kilobyte smaller. Jobs are cached only when they are
		// the operator's, not every Job of the cluster.
		Cache: cache.Options{
			DefaultTransform: cache.TransformStripManagedFields(),
			ByObject:         map[client.Object]cache.ByObject{&batchv1.Job{}: {Label: jobs.Selector()}},
		},
		Client: controllers.ClientOptions(),
	}
	replica := options
	replica.Metrics, replica.HealthProbeBindAddress, replica.PprofBindAddress = metrics, o.probeAddr, o.pprofAddr
	mgr, err := ctrl.NewManager(cfg, replica)
	if err != nil {
		return fmt.Errorf("creating manager: %w", err)
	}
	// The leader's: the reconcilers, a term of leadership at a time.
	leader := options
	leader.LeaderElection = o.leaderElect
	leader.LeaderElectionID = "problemhook.problemhook.io"
	leader.LeaderElectionNamespace = o.namespace
	podLogs, err := problemevent.NewPodLogs(mgr.GetConfig(), mgr.GetHTTPClient())
	if err != nil {
		return fmt.Errorf("creating the Pod log reader: %w", err)
	}
	o.jobs.Config, o.jobs.HTTPClient = mgr.GetConfig(), mgr.GetHTTPClient()
	notifier := &notify.Client{HTTPClient: notify.NewHTTPClient(policy)}
	// One set of Dynatrace clients, a client per target's connection, for
	// the reconcilers of every term and the dashboard.
	dynatraceClients := &dtconn.Clients{Egress: policy}
	if err := mgr.Add(&leaderpkg.Terms{
		Options: leader, Config: cfg, Recorders: mgr, Cache: &leaderpkg.SharedCache{Cache: mgr.GetCache()},
		Setup: func(ctx context.Context, lm ctrl.Manager) error {
			return setupReconcilers(ctx, lm, o, dynatraceClients, podLogs, notifier)
		},
	}); err != nil {
		return fmt.Errorf("adding the leader's reconcilers: %w", err)
	}
	// The receiver writes through a client of its own: its rate limiter
	// is its own, so a burst of reconciles never holds back an
	// acknowledgement.
	receiverClient, err := client.New(rest.CopyConfig(cfg), client.Options{Scheme: mgr.GetScheme(), Mapper: mgr.GetRESTMapper()})
	if err != nil {
		return fmt.Errorf("creating the receiver's client: %w", err)
	}
	recv := &receiver.Server{
		Addr:             o.receiverAddr,
		Cache:            mgr.GetCache(),
		Client:           receiverClient,
		MaxBodyBytes:     o.maxBodyBytes,
		MaxInFlight:      o.maxInFlight,
		MaxBytesInFlight: o.maxBytesInFlight,
		DrainDelay:       &o.drainDelay,
		TLSCertFile:      o.receiverCert,
		TLSKeyFile:       o.receiverKey,
	}
	if err := mgr.Add(recv); err != nil {
		return fmt.Errorf("adding receiver: %w", err)
	}
	if o.dashboardAddr != "0" {
		if err := mgr.Add(&dashboard.Server{
			Addr:      o.dashboardAddr,
			Cache:     mgr.GetCache(),
			APIReader: mgr.GetAPIReader(),
			Namespace: o.namespace,
			Service:   receiverService,
			Hosts:     o.dashboardHosts,
			Dynatrace: dynatraceClients,
		}); err != nil {
			return fmt.Errorf("adding dashboard: %w", err)
		}
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return err
	}
	// A replica is ready once its receiver can take notifications.
	if err := mgr.AddReadyzCheck("receiver", recv.Ready); err != nil {
		return err
	}
	ctrl.Log.Info("Starting manager", "version", dashboard.Version(), "receiver", o.receiverAddr, "receiverURL", o.receiverURL, "dashboard", o.dashboardAddr,
		"defaultServiceAccount", o.jobs.DefaultServiceAccount, "allowPrivilegedJobs", o.jobs.AllowPrivileged, "egressAllow", allow, "egressDeny", deny)
	return mgr.Start(ctx)
}

// setupReconcilers adds the reconcilers to a leader's manager, each given
// the same dependencies: the term's clients, the replica's Dynatrace
// clients and notifier, the Job policy and the real clock.
func setupReconcilers(ctx context.Context, mgr ctrl.Manager, o options, dynatraceClients *dtconn.Clients, podLogs problemevent.PodLogs, notifier *notify.Client) error {
	deps := controllers.Deps{
		Client:    mgr.GetClient(),
		APIReader: mgr.GetAPIReader(),
		Recorder:  mgr.GetEventRecorder("problemhook"),
		Dynatrace: dynatraceClients,
		Notifier:  notifier,
		Jobs:      o.jobs,
		Clock:     clock.RealClock{},
	}
	if err := (&notificationtarget.Reconciler{Deps: deps, ReceiverURL: o.receiverURL}).SetupWithManager(ctx, mgr); err != nil {
		return fmt.Errorf("setting up NotificationTarget controller: %w", err)
	}
	if err := (&integrationroute.Reconciler{Deps: deps}).SetupWithManager(ctx, mgr); err != nil {
		return fmt.Errorf("setting up IntegrationRoute controller: %w", err)
	}
	if err := (&problemevent.Reconciler{Deps: deps, PodLogs: podLogs, MaxConcurrentReconciles: o.eventWorkers, PodStartTimeout: o.podStartTimeout}).SetupWithManager(mgr); err != nil {
		return fmt.Errorf("setting up ProblemEvent controller: %w", err)
	}
	if err := (&notificationtarget.PollReconciler{Deps: deps}).SetupWithManager(mgr); err != nil {
		return fmt.Errorf("setting up the catch-up poller: %w", err)
	}
	return nil
}
