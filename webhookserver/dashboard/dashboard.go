// Package dashboard serves problemhook's read-only dashboard: an overview
// of the replica, the ProblemEvents with their actions and payloads, and
// each Dynatrace target's problem feed, as HTML and as JSON under /api/.
package dashboard

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/problemhook/problemhook/internal/dtconn"
)

// DefaultAddr is where the dashboard listens unless told otherwise:
// loopback only. `kubectl port-forward` reaches it inside the Pod; nothing
// else in the cluster does.
const DefaultAddr = "127.0.0.1:9293"

// dashboardTimeout bounds the work behind one dashboard request, a feed
// read from Dynatrace included.
const dashboardTimeout = 30 * time.Second

//go:embed web
var dashboardFiles embed.FS

// Server serves a read-only view of what problemhook received and did:
// an overview, the ProblemEvents with each one's details and actions, and
// each Dynatrace target's problem feed. The same data is served as JSON
// under /api/. Nothing on it changes the cluster or sends anything but
// the feed's reads from Dynatrace. It runs on every replica, on a listener
// of its own that no Service exposes: `kubectl port-forward` reaches it.
type Server struct {
	// Addr is the listen address, DefaultAddr when empty.
	Addr string
	// Cache serves NotificationTargets, ProblemEvents and Secrets.
	Cache client.Reader
	// APIReader lists the receiver Service's EndpointSlices; optional.
	APIReader client.Reader
	// Hosts are the names the dashboard answers to besides localhost,
	// 127.0.0.1 and ::1, e.g. an ingress's. A request for any other Host
	// gets 421: a web page whose name was made to resolve to a loopback
	// address (DNS rebinding) cannot read the dashboard through an
	// admin's port-forward.
	Hosts []string
	// Namespace and Service name the receiver Service whose endpoints are
	// the replicas shown on the overview; optional.
	Namespace, Service string
	// Gatherer is where the counters shown come from; the manager's
	// registry when nil.
	Gatherer prometheus.Gatherer
	// Dynatrace opens the targets' API connections for the feed; a
	// Clients of its own when nil.
	Dynatrace *dtconn.Clients
	// Now returns the current time; time.Now when nil.
	Now func() time.Time

	started time.Time
	pages   map[string]*template.Template
}

// NeedLeaderElection is false: every replica serves its dashboard.
func (d *Server) NeedLeaderElection() bool { return false }

// +kubebuilder:rbac:groups=problemhook.io,resources=problemevents,verbs=get;list;watch

// Start serves until ctx is done.
func (d *Server) Start(ctx context.Context) error {
	log := ctrl.LoggerFrom(ctx).WithName("dashboard")
	addr := d.Addr
	if addr == "" {
		addr = DefaultAddr
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", addr, err)
	}
	srv := &http.Server{
		Handler:           d.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      dashboardTimeout + 5*time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    16 << 10,
		BaseContext:       func(net.Listener) context.Context { return logr.NewContext(context.Background(), log) },
	}
	go func() {
		<-ctx.Done()
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdownCtx)
	}()
	log.Info("Serving the dashboard", "address", ln.Addr().String())
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serving the dashboard: %w", err)
	}
	return nil
}

// Handler returns the dashboard's routes. Only GET (and HEAD) are served.
func (d *Server) Handler() http.Handler {
	if d.started.IsZero() {
		d.started = d.now()
	}
	if d.pages == nil {
		d.pages = parsePages()
	}
	if d.Dynatrace == nil {
		d.Dynatrace = &dtconn.Clients{}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", d.serve("overview", d.overview))
	mux.HandleFunc("GET /events", d.serve("events", d.events))
	mux.HandleFunc("GET /events/{namespace}/{name}", d.serve("event", d.event))
	mux.HandleFunc("GET /feed/{namespace}/{name}", d.serve("feed", d.feed))
	mux.HandleFunc("GET /api/overview", d.serve("", d.overview))
	mux.HandleFunc("GET /api/events", d.serve("", d.events))
	mux.HandleFunc("GET /api/events/{namespace}/{name}", d.serve("", d.eventJSON))
	mux.HandleFunc("GET /api/feed/{namespace}/{name}", d.serve("", d.feed))
	mux.Handle("GET /static/", http.FileServerFS(staticFiles()))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			d.fail(w, r, http.StatusMethodNotAllowed, "the dashboard is read-only: "+r.Method+" is not served")
			return
		}
		d.fail(w, r, http.StatusNotFound, "no such page: "+r.URL.Path)
	})
	hosts := map[string]bool{"localhost": true, "127.0.0.1": true, "::1": true}
	for _, h := range d.Hosts {
		hosts[strings.ToLower(h)] = true
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if host := requestHost(r.Host); !hosts[host] {
			d.fail(w, r, http.StatusMisdirectedRequest, fmt.Sprintf("the dashboard does not answer to host %q: reach it as localhost "+
				"(kubectl port-forward), or start the manager with --dashboard-host=%s", host, host))
			return
		}
		h := w.Header()
		// No script, no frame, nothing from elsewhere: the page is the
		// server's HTML and its stylesheet.
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-store")
		mux.ServeHTTP(w, r)
	})
}

// requestHost is the host of a Host header, without its port or IPv6
// brackets, in lower case.
func requestHost(hostport string) string {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	return strings.ToLower(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"))
}

// httpError is a failure with the status to answer it with.
type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }

func badRequest(format string, args ...any) error {
	return &httpError{status: http.StatusBadRequest, msg: fmt.Sprintf(format, args...)}
}

func notFound(format string, args ...any) error {
	return &httpError{status: http.StatusNotFound, msg: fmt.Sprintf(format, args...)}
}

// serve renders what load returns with the page template, or as JSON when
// page is empty.
func (d *Server) serve(page string, load func(context.Context, *http.Request) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), dashboardTimeout)
		defer cancel()
		data, err := load(ctx, r)
		if err != nil {
			status := http.StatusInternalServerError
			var he *httpError
			if errors.As(err, &he) {
				status = he.status
			} else {
				logr.FromContextOrDiscard(r.Context()).Error(err, "Serving a dashboard page", "path", r.URL.Path)
			}
			d.fail(w, r, status, err.Error())
			return
		}
		if page == "" {
			writeJSON(w, http.StatusOK, data)
			return
		}
		d.render(w, http.StatusOK, page, data)
	}
}

// fail answers an error as a page, or as JSON under /api/.
func (d *Server) fail(w http.ResponseWriter, r *http.Request, status int, msg string) {
	if strings.HasPrefix(r.URL.Path, "/api/") {
		writeJSON(w, status, map[string]string{"error": msg})
		return
	}
	d.render(w, status, "error", map[string]any{"Status": status, "StatusText": http.StatusText(status), "Message": msg})
}

func (d *Server) render(w http.ResponseWriter, status int, page string, data any) {
	var buf strings.Builder
	if err := d.pages[page].ExecuteTemplate(&buf, page, data); err != nil {
		http.Error(w, "rendering the page: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(buf.String()))
}

// staticFiles are the files under web/ that are served as they are.
func staticFiles() fs.FS {
	sub, err := fs.Sub(dashboardFiles, "web")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	return sub
}

func (d *Server) now() time.Time {
	if d.Now != nil {
		return d.Now()
	}
	return time.Now()
}

func (d *Server) gatherer() prometheus.Gatherer {
	if d.Gatherer != nil {
		return d.Gatherer
	}
	return ctrlmetrics.Registry
}

// Version is the manager's version as the Go toolchain recorded it: the
// module version, or the VCS revision it was built from.
func Version() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	version := info.Main.Version
	var revision, modified string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			revision = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = "-dirty"
			}
		}
	}
	if (version == "" || version == "(devel)") && revision != "" {
		return revision[:min(12, len(revision))] + modified
	}
	return version
}

// hostname names this replica: its Pod name in a cluster.
func hostname() string {
	name, err := os.Hostname()
	if err != nil {
		return "unknown"
	}
	return name
}

// writeJSON answers v as JSON with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
