// Package receiver accepts problem notifications over HTTP and stores
// each one as a ProblemEvent before it answers.
package receiver

import (
	"cmp"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/sync/semaphore"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/certwatcher"
	"sigs.k8s.io/controller-runtime/pkg/client"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
	"github.com/problemhook/problemhook/internal/coalesce"
	"github.com/problemhook/problemhook/internal/credentials"
	"github.com/problemhook/problemhook/internal/metrics"
	"github.com/problemhook/problemhook/internal/payload"
	"github.com/problemhook/problemhook/internal/secretref"
)

// Defaults of a Server.
const (
	DefaultAddr         = ":9292"
	DefaultMaxBodyBytes = 1 << 20
	DefaultRetryAfter   = 5 * time.Second
	// DefaultStatusInterval bounds how often a target's lastReceivedTime is written.
	DefaultStatusInterval = 10 * time.Second
	storeTimeout          = 10 * time.Second
	// MaxHeaderBytes bounds a request's headers; larger ones get 431.
	MaxHeaderBytes = 64 << 10
	// DefaultMaxInFlight bounds the ProblemEvents one replica stores at once.
	DefaultMaxInFlight = 128
	// DefaultMaxBytesInFlight bounds the bodies one replica reads, parses
	// and stores at once, in bytes. A body costs three to four times its
	// size while it is parsed and stored (the body, its members, the event
	// and the event's JSON), so 16 MiB of bodies stay under 64 MiB: a
	// quarter of the Deployment's 256 MiB limit, beside the informers'
	// caches and the leader's work.
	DefaultMaxBytesInFlight = 16 << 20
	// DefaultDrainDelay is how long a stopping replica goes on taking
	// notifications, not ready, before it stops listening: long enough for
	// the Pod's removal from the Service's endpoints to reach every node's
	// kube-proxy, so that no new connection is sent to a closed port.
	DefaultDrainDelay = 5 * time.Second
	// shutdownTimeout bounds how long a stopping replica waits for the
	// notifications it is storing: the longest a store may take, and a
	// margin. The Deployment's terminationGracePeriodSeconds (30) covers
	// it and DefaultDrainDelay together.
	shutdownTimeout = storeTimeout + 5*time.Second
)

// Server serves POST /hooks/{namespace}/{name}: it authenticates the
// sender against the NotificationTarget, parses the body in the target's
// format and creates a ProblemEvent, answering 2xx only once the API server
// has stored it. It runs on every replica.
type Server struct {
	// Addr is the listen address, DefaultAddr when empty.
	Addr string
	// Cache serves NotificationTargets and Secrets.
	Cache cache.Cache
	// Client creates ProblemEvents and writes target status.
	Client client.Client
	// MaxBodyBytes bounds a notification body, DefaultMaxBodyBytes when zero.
	MaxBodyBytes int64
	// RetryAfter is what a 503 answer tells senders to wait.
	RetryAfter time.Duration
	// StatusInterval bounds how often lastReceivedTime is written per target.
	StatusInterval time.Duration
	// MaxInFlight bounds the ProblemEvents this replica is storing at once,
	// DefaultMaxInFlight when zero. Past it a notification is answered 503
	// with Retry-After at once: the receiver sheds load itself instead of
	// queueing more creates at an API server that is already behind.
	MaxInFlight int
	// MaxBytesInFlight bounds the bytes of the bodies this replica is
	// reading, parsing and storing at once, DefaultMaxBytesInFlight when
	// zero. A body's bytes are taken before it is read (its Content-Length,
	// or MaxBodyBytes when it has none): past the bound a notification is
	// answered 503 with Retry-After at once, unread.
	MaxBytesInFlight int64
	// Clock tells the time of receipts and rate limits; the real one when
	// nil.
	Clock clock.PassiveClock
	// TLSCertFile and TLSKeyFile, when set, make the receiver serve HTTPS
	// with this certificate, reloaded when the files change (a mounted
	// kubernetes.io/tls Secret that cert-manager renews).
	TLSCertFile, TLSKeyFile string
	// DrainDelay is how long the receiver goes on serving, not ready, once
	// it is told to stop; DefaultDrainDelay when nil. A process outside a
	// cluster, which no Service routes to, has no need to wait.
	DrainDelay *time.Duration

	synced atomic.Bool
	// draining is set once the receiver is told to stop.
	draining atomic.Bool
	// inFlight counts the creates under way.
	inFlight atomic.Int64
	// bytesInFlight holds the bytes of the bodies being read, parsed or
	// stored, made at the first notification.
	bytesInFlight     *semaphore.Weighted
	bytesInFlightOnce sync.Once

	// limits holds each target's rate limit bucket.
	limits limiters

	// lastReceived holds each target's latest notification time until
	// writeLastReceived writes it.
	lastReceived coalesce.Latest[types.NamespacedName, struct{}]
}

// +kubebuilder:rbac:groups=problemhook.io,resources=problemevents,verbs=create
// +kubebuilder:rbac:groups=problemhook.io,resources=notificationtargets,verbs=list;watch
// +kubebuilder:rbac:groups=problemhook.io,resources=notificationtargets/status,verbs=patch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=list;watch

// NeedLeaderElection is false: every replica receives notifications.
func (r *Server) NeedLeaderElection() bool { return false }

// Start serves until ctx is done. It answers 503 until the cache has synced.
func (r *Server) Start(ctx context.Context) error {
	log := ctrl.LoggerFrom(ctx).WithName("receiver")
	ln, err := net.Listen("tcp", r.addr())
	if err != nil {
		return fmt.Errorf("listening on %s: %w", r.addr(), err)
	}
	srv := r.HTTPServer(log)
	if r.TLSCertFile != "" || r.TLSKeyFile != "" {
		watcher, err := certwatcher.New(r.TLSCertFile, r.TLSKeyFile)
		if err != nil {
			_ = ln.Close()
			return fmt.Errorf("loading the receiver's TLS certificate: %w", err)
		}
		go func() {
			if err := watcher.Start(ctx); err != nil {
				log.Error(err, "Watching the receiver's TLS certificate")
			}
		}()
		ln = tls.NewListener(ln, &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: watcher.GetCertificate})
	}
	go r.waitForSync(ctx, log)
	go r.writeLastReceived(ctx, log)
	go r.sweepLimits(ctx)
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		<-ctx.Done()
		r.drain(log, srv)
	}()
	log.Info("Serving notifications", "address", ln.Addr().String(), "tls", r.TLSCertFile != "")
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serving notifications: %w", err)
	}
	// Serve returns as soon as the drain stops listening; the
	// notifications still being stored are waited for here, before the
	// manager stops the caches and the process ends.
	<-drained
	return nil
}

// HTTPServer returns the HTTP server Start runs, bounded against slow and
// oversized requests, logging through log.
func (r *Server) HTTPServer(log logr.Logger) *http.Server {
	return &http.Server{
		Handler:           r.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    MaxHeaderBytes,
		BaseContext:       func(net.Listener) context.Context { return logr.NewContext(context.Background(), log) },
	}
}

// Ready is a readiness check: it fails until the receiver accepts notifications.
func (r *Server) Ready(*http.Request) error {
	if r.draining.Load() {
		return errors.New("receiver stopping")
	}
	if !r.synced.Load() {
		return errors.New("receiver cache not synced")
	}
	return nil
}

// drain stops srv the way a replica behind a Service must, so that a
// rolling restart loses no notification: it is not ready from now on
// (and the terminating Pod leaves the Service's endpoints), each answer
// closes its connection so that a sender's next one goes through the
// Service to another replica, it goes on taking notifications for
// DrainDelay while kube-proxy catches up, and then it stops listening and
// waits for the notifications it is storing.
func (r *Server) drain(log logr.Logger, srv *http.Server) {
	r.draining.Store(true)
	srv.SetKeepAlivesEnabled(false)
	delay := DefaultDrainDelay
	if r.DrainDelay != nil {
		delay = *r.DrainDelay
	}
	log.Info("Stopping: not ready, still taking notifications", "for", delay)
	time.Sleep(delay)
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		log.Error(err, "Stopping: notifications still being stored were cut off")
		return
	}
	log.Info("Stopped taking notifications")
}

// waitForSync starts the informers the receiver reads and marks it ready
// once they have synced, which on a non-leader replica no controller does.
func (r *Server) waitForSync(ctx context.Context, log logr.Logger) {
	for _, obj := range []client.Object{&problemhookv1alpha1.NotificationTarget{}, &corev1.Secret{}} {
		if _, err := r.Cache.GetInformer(ctx, obj); err != nil {
			log.Error(err, "Starting informer", "kind", fmt.Sprintf("%T", obj))
			return
		}
	}
	if r.Cache.WaitForCacheSync(ctx) {
		r.synced.Store(true)
		log.Info("Cache synced, accepting notifications")
	}
}

// Handler returns the receiver's HTTP handler.
func (r *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/hooks/{namespace}/{name}", r.receive)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, req *http.Request) {
		r.answer(w, req, nil, nil, refuse(http.StatusNotFound, "no such endpoint: notifications are posted to /hooks/{namespace}/{name}"))
	})
	return mux
}

// receive answers one notification.
func (r *Server) receive(w http.ResponseWriter, req *http.Request) {
	target, ans, ref := r.handle(w, req)
	r.answer(w, req, target, ans, ref)
}

// answer writes the answer, or the refusal, and counts it for target (nil
// when the request named no target that exists).
func (r *Server) answer(w http.ResponseWriter, req *http.Request, target *problemhookv1alpha1.NotificationTarget, ans *answer, ref *refusal) {
	var namespace, name, format string
	if target != nil {
		namespace, name, format = target.Namespace, target.Name, string(target.Spec.Format)
	}
	if ref != nil {
		metrics.ReceiverNotifications.WithLabelValues(namespace, name, format, ref.result).Inc()
		r.refuse(w, req, ref)
		return
	}
	metrics.ReceiverNotifications.WithLabelValues(namespace, name, format, ans.Result).Inc()
	writeJSON(w, ans.status, ans)
}

// handle takes a notification through the receiver's checks to the API
// server, and says what to answer, and for which target.
func (r *Server) handle(w http.ResponseWriter, req *http.Request) (*problemhookv1alpha1.NotificationTarget, *answer, *refusal) {
	if req.Method != http.MethodPost {
		ref := refuse(http.StatusMethodNotAllowed, "method %s not allowed: notifications are POSTed", req.Method)
		ref.header = http.Header{"Allow": {http.MethodPost}}
		return nil, nil, ref
	}
	target, ref := r.admit(req)
	if ref != nil {
		return target, nil, ref
	}
	// After auth: a sender without the target's credentials cannot spend
	// its budget and lock its real sender out.
	if ok, wait := r.limits.allow(target, r.now()); !ok {
		return target, nil, throttle(target, wait)
	}
	weight := r.bodyWeight(req)
	if !r.bytes().TryAcquire(weight) {
		ref := refuse(http.StatusServiceUnavailable, "notification not read: this replica is reading %d MiB of notifications already; retry later", r.maxBytesInFlight()>>20)
		ref.result = metrics.ResultShed
		return target, nil, ref
	}
	body, ref := r.readBody(w, req)
	if ref != nil {
		r.bytes().Release(weight)
		return target, nil, ref
	}
	// A body sent without its length took the most a body may be.
	r.bytes().Release(weight - int64(len(body)))
	defer r.bytes().Release(int64(len(body)))
	// A body that is not the JSON object the format wants is a bad request
	// (400) as a missing field is: the media type was JSON, or readBody
	// would have answered 415.
	spec, err := payload.Parse(target.Spec.Format, body)
	if err != nil {
		return target, nil, refuse(http.StatusBadRequest, "%s payload: %v", target.Spec.Format, err)
	}
	now := r.now()
	r.lastReceived.Note(client.ObjectKeyFromObject(target), now, struct{}{})
	if spec.Test && target.Spec.TestNotifications == problemhookv1alpha1.TestNotificationsIgnore {
		return target, &answer{status: http.StatusOK, Result: metrics.ResultIgnored,
			Message: "test notification acknowledged and not stored (testNotifications: Ignore)"}, nil
	}
	spec.ReceivedAt = metav1.NewTime(now)
	ans, ref := r.store(req, target, spec)
	return target, ans, ref
}

// admit finds the target the request is for, checks the sender's
// credentials and whether the target takes notifications now. A refusal
// comes with the target once it was found.
func (r *Server) admit(req *http.Request) (*problemhookv1alpha1.NotificationTarget, *refusal) {
	ctx := req.Context()
	key := types.NamespacedName{Namespace: req.PathValue("namespace"), Name: req.PathValue("name")}
	if !validTargetKey(key) {
		return nil, refuse(http.StatusNotFound, "NotificationTarget %q not found", key.String())
	}
	if !r.synced.Load() {
		return nil, refuse(http.StatusServiceUnavailable, "receiver is starting: cache not synced")
	}
	var target problemhookv1alpha1.NotificationTarget
	if err := r.Cache.Get(ctx, key, &target); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, refuse(http.StatusNotFound, "NotificationTarget %s not found", key)
		}
		return nil, refuse(http.StatusServiceUnavailable, "reading NotificationTarget %s failed", key)
	}
	creds, err := credentials.Load(ctx, r.Cache, &target)
	if err != nil {
		log := ctrl.LoggerFrom(ctx).WithValues("NotificationTarget", klog.KObj(&target))
		var refErr *secretref.Error
		if errors.As(err, &refErr) {
			log.Info("Refusing notifications: credentials unavailable", "reason", refErr.Reason, "field", refErr.Field)
		} else {
			log.Error(err, "Reading credentials")
		}
		return &target, refuse(http.StatusServiceUnavailable, "NotificationTarget %s cannot check credentials: see its Ready condition", key)
	}
	if !creds.Allows(req) {
		ref := refuse(http.StatusUnauthorized, "missing or wrong credentials")
		ref.header = http.Header{"WWW-Authenticate": {creds.Challenge()}}
		return &target, ref
	}
	if target.Spec.Suspend {
		return &target, refuse(http.StatusServiceUnavailable, "NotificationTarget %s is suspended", key)
	}
	if !meta.IsStatusConditionTrue(target.Status.Conditions, problemhookv1alpha1.ConditionReady) {
		return &target, refuse(http.StatusServiceUnavailable, "NotificationTarget %s is not ready: see its Ready condition", key)
	}
	return &target, nil
}

// store creates the ProblemEvent: a 2xx answer only once the API server has
// stored it, or already had it.
func (r *Server) store(req *http.Request, target *problemhookv1alpha1.NotificationTarget, spec *problemhookv1alpha1.ProblemEventSpec) (*answer, *refusal) {
	limit := int64(cmp.Or(r.MaxInFlight, DefaultMaxInFlight))
	if n := r.inFlight.Add(1); n > limit {
		r.inFlight.Add(-1)
		ref := refuse(http.StatusServiceUnavailable, "notification not stored: this replica is storing %d notifications already; retry later", limit)
		ref.result = metrics.ResultShed
		return nil, ref
	}
	defer r.inFlight.Add(-1)
	ev := problemhookv1alpha1.NewProblemEvent(target, spec)
	name := client.ObjectKeyFromObject(ev).String()
	log := ctrl.LoggerFrom(req.Context()).WithValues("ProblemEvent", klog.KObj(ev), "problemID", spec.ProblemID, "state", spec.State)
	ctx, cancel := context.WithTimeout(req.Context(), storeTimeout)
	defer cancel()
	start := time.Now() // a latency, measured in real time
	err := r.Client.Create(ctx, ev)
	metrics.ReceiverStoreDuration.Observe(time.Since(start).Seconds())
	switch {
	case err == nil:
		log.V(1).Info("Stored notification")
		metrics.CountEvent(target.Namespace, target.Name, string(spec.State), metrics.OriginNotification)
		return &answer{status: http.StatusAccepted, Result: metrics.ResultCreated, ProblemEvent: name}, nil
	case apierrors.IsAlreadyExists(err):
		log.V(1).Info("Acknowledged duplicate notification")
		return &answer{status: http.StatusOK, Result: metrics.ResultDuplicate, ProblemEvent: name}, nil
	case apierrors.IsForbidden(err) && strings.Contains(err.Error(), "exceeded quota"):
		// The namespace's ResourceQuota holds no more events until
		// retention or an admin frees some: nothing was written.
		log.Info("ResourceQuota refused the ProblemEvent", "reason", err.Error())
		ref := refuse(http.StatusInsufficientStorage, "notification not stored: the namespace's ResourceQuota allows no more: %v", err)
		ref.result = metrics.ResultFailed
		return nil, ref
	case apierrors.IsInvalid(err):
		// The parser bounds every field, so this is a notification the API
		// server refuses for a reason the parser does not know: retrying
		// would not help.
		log.Error(err, "API server refused the ProblemEvent")
		return nil, refuse(http.StatusBadRequest, "notification cannot be stored: %v", err)
	default:
		log.Error(err, "Storing notification failed")
		ref := refuse(http.StatusServiceUnavailable, "notification not stored: the API server is unavailable")
		ref.result = metrics.ResultFailed
		return nil, ref
	}
}

// readBody reads the bounded body.
func (r *Server) readBody(w http.ResponseWriter, req *http.Request) ([]byte, *refusal) {
	if ct := req.Header.Get("Content-Type"); ct != "" && !isJSONMediaType(ct) {
		return nil, refuse(http.StatusUnsupportedMediaType, "Content-Type %q is not JSON: send application/json", ct)
	}
	limit := r.maxBodyBytes()
	if req.ContentLength > limit {
		return nil, refuse(http.StatusRequestEntityTooLarge, "body larger than %d bytes", limit)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, limit))
	if err != nil {
		var maxErr *http.MaxBytesError
		if errors.As(err, &maxErr) {
			return nil, refuse(http.StatusRequestEntityTooLarge, "body larger than %d bytes", limit)
		}
		return nil, refuse(http.StatusBadRequest, "reading body: %v", err)
	}
	return body, nil
}

func isJSONMediaType(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	return mt == "application/json" || mt == "text/json" || (strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"))
}

// validTargetKey reports whether key could name a NotificationTarget at
// all; anything else (traversal, unicode tricks) cannot exist.
func validTargetKey(key types.NamespacedName) bool {
	return len(validation.IsDNS1123Label(key.Namespace)) == 0 &&
		len(key.Name) <= validation.DNS1123LabelMaxLength &&
		len(validation.IsDNS1123Subdomain(key.Name)) == 0
}

// refusal is an answer other than 2xx. A 503 tells the sender to retry.
type refusal struct {
	status int
	msg    string
	header http.Header
	// result is the metric's result label: rejected unless set.
	result string
}

func refuse(status int, format string, args ...any) *refusal {
	return &refusal{status: status, msg: fmt.Sprintf(format, args...), result: metrics.ResultRejected}
}

// refuse answers a refused notification.
func (r *Server) refuse(w http.ResponseWriter, req *http.Request, ref *refusal) {
	ctrl.LoggerFrom(req.Context()).V(1).Info("Refused notification", "path", req.URL.Path, "status", ref.status, "reason", ref.msg)
	for k, v := range ref.header {
		w.Header()[k] = v
	}
	if ref.status == http.StatusServiceUnavailable {
		retry := r.RetryAfter
		if retry <= 0 {
			retry = DefaultRetryAfter
		}
		w.Header().Set("Retry-After", strconv.Itoa(int((retry+time.Second-1)/time.Second)))
	}
	writeJSON(w, ref.status, answer{Result: "error", Code: ref.status, Message: ref.msg})
}

// answer is the JSON body of every receiver response.
type answer struct {
	status       int
	Result       string `json:"result,omitempty"`
	ProblemEvent string `json:"problemEvent,omitempty"`
	Code         int    `json:"code,omitempty"`
	Message      string `json:"message,omitempty"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (r *Server) addr() string {
	if r.Addr == "" {
		return DefaultAddr
	}
	return r.Addr
}

// bodyWeight is what reading req's body takes of MaxBytesInFlight before
// it is read: its length, or the most a body may be when it has none.
func (r *Server) bodyWeight(req *http.Request) int64 {
	limit := r.maxBodyBytes()
	if req.ContentLength >= 0 && req.ContentLength < limit {
		return req.ContentLength
	}
	return limit
}

func (r *Server) bytes() *semaphore.Weighted {
	r.bytesInFlightOnce.Do(func() { r.bytesInFlight = semaphore.NewWeighted(r.maxBytesInFlight()) })
	return r.bytesInFlight
}

func (r *Server) maxBytesInFlight() int64 {
	// Never less than one body: the largest must be readable.
	return max(cmp.Or(r.MaxBytesInFlight, DefaultMaxBytesInFlight), r.maxBodyBytes())
}

func (r *Server) maxBodyBytes() int64 {
	if r.MaxBodyBytes <= 0 {
		return DefaultMaxBodyBytes
	}
	return r.MaxBodyBytes
}

func (r *Server) now() time.Time {
	if r.Clock == nil {
		return time.Now()
	}
	return r.Clock.Now()
}

// sweepLimits forgets idle rate limit buckets every minute until ctx ends.
func (r *Server) sweepLimits(ctx context.Context) {
	tick := time.NewTicker(time.Minute)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			r.limits.sweep(r.now())
		}
	}
}
