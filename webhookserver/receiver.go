// Package webhookserver holds the receiver that accepts problem
// notifications over HTTP and stores each one as a ProblemEvent.
package webhookserver

import (
	"context"
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
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
	"github.com/problemhook/problemhook/internal/payload"
	"github.com/problemhook/problemhook/internal/secretref"
)

// Defaults of a Receiver.
const (
	DefaultAddr         = ":9292"
	DefaultMaxBodyBytes = 1 << 20
	DefaultRetryAfter   = 5 * time.Second
	// DefaultStatusInterval bounds how often a target's lastReceivedTime is written.
	DefaultStatusInterval = 10 * time.Second
	storeTimeout          = 10 * time.Second
)

// Receiver serves POST /hooks/{namespace}/{name}: it authenticates the
// sender against the NotificationTarget, parses the body in the target's
// format and creates a ProblemEvent, answering 2xx only once the API server
// has stored it. It runs on every replica.
type Receiver struct {
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
	// Now returns the current time; time.Now when nil.
	Now func() time.Time

	synced atomic.Bool

	mu           sync.Mutex
	lastReceived map[types.NamespacedName]time.Time
}

// +kubebuilder:rbac:groups=problemhook.io,resources=problemevents,verbs=create
// +kubebuilder:rbac:groups=problemhook.io,resources=notificationtargets,verbs=get;list;watch
// +kubebuilder:rbac:groups=problemhook.io,resources=notificationtargets/status,verbs=patch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch

// NeedLeaderElection is false: every replica receives notifications.
func (r *Receiver) NeedLeaderElection() bool { return false }

// Start serves until ctx is done. It answers 503 until the cache has synced.
func (r *Receiver) Start(ctx context.Context) error {
	log := ctrl.LoggerFrom(ctx).WithName("receiver")
	ln, err := net.Listen("tcp", r.addr())
	if err != nil {
		return fmt.Errorf("listening on %s: %w", r.addr(), err)
	}
	srv := &http.Server{
		Handler:           r.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		BaseContext:       func(net.Listener) context.Context { return logr.NewContext(context.Background(), log) },
	}
	go r.waitForSync(ctx, log)
	go r.writeLastReceived(ctx, log)
	go func() {
		<-ctx.Done()
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdownCtx)
	}()
	log.Info("Serving notifications", "address", ln.Addr().String())
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serving notifications: %w", err)
	}
	return nil
}

// Ready is a readiness check: it fails until the receiver accepts notifications.
func (r *Receiver) Ready(*http.Request) error {
	if !r.synced.Load() {
		return errors.New("receiver cache not synced")
	}
	return nil
}

// waitForSync starts the informers the receiver reads and marks it ready
// once they have synced, which on a non-leader replica no controller does.
func (r *Receiver) waitForSync(ctx context.Context, log logr.Logger) {
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
func (r *Receiver) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/hooks/{namespace}/{name}", r.receive)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, req *http.Request) {
		writeError(w, http.StatusNotFound, "no such endpoint: notifications are posted to /hooks/{namespace}/{name}")
	})
	return mux
}

func (r *Receiver) receive(w http.ResponseWriter, req *http.Request) {
	ctx := req.Context()
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s not allowed: notifications are POSTed", req.Method))
		return
	}
	key := types.NamespacedName{Namespace: req.PathValue("namespace"), Name: req.PathValue("name")}
	if !validTargetKey(key) {
		r.reject(w, req, http.StatusNotFound, fmt.Sprintf("NotificationTarget %q not found", key.String()))
		return
	}
	if !r.synced.Load() {
		r.unavailable(w, req, "receiver is starting: cache not synced")
		return
	}
	var target problemhookv1alpha1.NotificationTarget
	if err := r.Cache.Get(ctx, key, &target); err != nil {
		if apierrors.IsNotFound(err) {
			r.reject(w, req, http.StatusNotFound, fmt.Sprintf("NotificationTarget %s not found", key))
			return
		}
		r.unavailable(w, req, "reading NotificationTarget failed")
		return
	}
	log := ctrl.LoggerFrom(ctx).WithValues("NotificationTarget", klog.KObj(&target))

	creds, err := LoadCredentials(ctx, r.Cache, &target)
	if err != nil {
		var refErr *secretref.Error
		if errors.As(err, &refErr) {
			log.Info("Refusing notification: credentials unavailable", "reason", refErr.Reason, "field", refErr.Field)
		} else {
			log.Error(err, "Reading credentials")
		}
		r.unavailable(w, req, fmt.Sprintf("NotificationTarget %s cannot check credentials: see its Ready condition", key))
		return
	}
	if !creds.Allows(req) {
		w.Header().Set("WWW-Authenticate", creds.Challenge())
		r.reject(w, req, http.StatusUnauthorized, "missing or wrong credentials")
		return
	}
	if target.Spec.Suspend {
		r.unavailable(w, req, fmt.Sprintf("NotificationTarget %s is suspended", key))
		return
	}
	if ready := meta.FindStatusCondition(target.Status.Conditions, problemhookv1alpha1.ConditionReady); ready == nil || ready.Status != metav1.ConditionTrue {
		r.unavailable(w, req, fmt.Sprintf("NotificationTarget %s is not ready: see its Ready condition", key))
		return
	}

	body, status, msg := r.readBody(w, req)
	if status != 0 {
		r.reject(w, req, status, msg)
		return
	}
	spec, err := payload.Parse(target.Spec.Format, body)
	if err != nil {
		status := http.StatusBadRequest
		if errors.Is(err, payload.ErrNotJSON) {
			status = http.StatusUnsupportedMediaType
		}
		r.reject(w, req, status, fmt.Sprintf("%s payload: %v", target.Spec.Format, err))
		return
	}
	now := r.now()
	r.noteReceived(key, now)
	if spec.Test && target.Spec.TestNotifications == problemhookv1alpha1.TestNotificationsIgnore {
		notifications.WithLabelValues(resultIgnored).Inc()
		writeJSON(w, http.StatusOK, answer{Result: resultIgnored, Message: "test notification acknowledged and not stored (testNotifications: Ignore)"})
		return
	}
	spec.ReceivedAt = metav1.NewTime(now)
	r.store(w, req, &target, spec)
}

// store creates the ProblemEvent and answers the sender.
func (r *Receiver) store(w http.ResponseWriter, req *http.Request, target *problemhookv1alpha1.NotificationTarget, spec *problemhookv1alpha1.ProblemEventSpec) {
	ev := NewProblemEvent(target, spec)
	ref := client.ObjectKeyFromObject(ev).String()
	log := ctrl.LoggerFrom(req.Context()).WithValues("ProblemEvent", klog.KObj(ev), "problemID", spec.ProblemID, "state", spec.State)
	ctx, cancel := context.WithTimeout(req.Context(), storeTimeout)
	defer cancel()
	err := r.Client.Create(ctx, ev)
	switch {
	case err == nil:
		notifications.WithLabelValues(resultCreated).Inc()
		log.V(1).Info("Stored notification")
		writeJSON(w, http.StatusAccepted, answer{Result: resultCreated, ProblemEvent: ref})
	case apierrors.IsAlreadyExists(err):
		notifications.WithLabelValues(resultDuplicate).Inc()
		log.V(1).Info("Acknowledged duplicate notification")
		writeJSON(w, http.StatusOK, answer{Result: resultDuplicate, ProblemEvent: ref})
	case apierrors.IsInvalid(err):
		// The parser bounds every field, so this is a notification the API
		// server refuses for a reason the parser does not know: retrying
		// would not help.
		log.Error(err, "API server refused the ProblemEvent")
		r.reject(w, req, http.StatusBadRequest, fmt.Sprintf("notification cannot be stored: %v", err))
	default:
		log.Error(err, "Storing notification failed")
		notifications.WithLabelValues(resultFailed).Inc()
		r.retryLater(w, "notification not stored: the API server is unavailable")
	}
}

// readBody reads the bounded body. A non-zero status means it was refused.
func (r *Receiver) readBody(w http.ResponseWriter, req *http.Request) ([]byte, int, string) {
	if ct := req.Header.Get("Content-Type"); ct != "" && !isJSONMediaType(ct) {
		return nil, http.StatusUnsupportedMediaType, fmt.Sprintf("Content-Type %q is not JSON: send application/json", ct)
	}
	limit := r.maxBodyBytes()
	tooLarge := fmt.Sprintf("body larger than %d bytes", limit)
	if req.ContentLength > limit {
		return nil, http.StatusRequestEntityTooLarge, tooLarge
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, limit))
	if err != nil {
		var maxErr *http.MaxBytesError
		if errors.As(err, &maxErr) {
			return nil, http.StatusRequestEntityTooLarge, tooLarge
		}
		return nil, http.StatusBadRequest, fmt.Sprintf("reading body: %v", err)
	}
	return body, 0, ""
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

// reject answers a notification that is refused.
func (r *Receiver) reject(w http.ResponseWriter, req *http.Request, status int, msg string) {
	notifications.WithLabelValues(resultRejected).Inc()
	ctrl.LoggerFrom(req.Context()).V(1).Info("Refused notification", "path", req.URL.Path, "status", status, "reason", msg)
	writeError(w, status, msg)
}

// unavailable answers 503 for a target that cannot take notifications now.
func (r *Receiver) unavailable(w http.ResponseWriter, req *http.Request, msg string) {
	notifications.WithLabelValues(resultRejected).Inc()
	ctrl.LoggerFrom(req.Context()).V(1).Info("Refused notification for now", "path", req.URL.Path, "reason", msg)
	r.retryLater(w, msg)
}

func (r *Receiver) retryLater(w http.ResponseWriter, msg string) {
	retry := r.RetryAfter
	if retry <= 0 {
		retry = DefaultRetryAfter
	}
	w.Header().Set("Retry-After", strconv.Itoa(int((retry+time.Second-1)/time.Second)))
	writeError(w, http.StatusServiceUnavailable, msg)
}

// answer is the JSON body of every receiver response.
type answer struct {
	Result       string `json:"result,omitempty"`
	ProblemEvent string `json:"problemEvent,omitempty"`
	Code         int    `json:"code,omitempty"`
	Message      string `json:"message,omitempty"`
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, answer{Result: "error", Code: status, Message: msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (r *Receiver) addr() string {
	if r.Addr == "" {
		return DefaultAddr
	}
	return r.Addr
}

func (r *Receiver) maxBodyBytes() int64 {
	if r.MaxBodyBytes <= 0 {
		return DefaultMaxBodyBytes
	}
	return r.MaxBodyBytes
}

func (r *Receiver) now() time.Time {
	if r.Now == nil {
		return time.Now()
	}
	return r.Now()
}
