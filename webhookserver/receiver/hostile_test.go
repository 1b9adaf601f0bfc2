package receiver_test

import (
	"cmp"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	. "github.com/onsi/gomega"
	"sigs.k8s.io/yaml"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
	"github.com/problemhook/problemhook/test/harness/receivertest"
)

// hostileCase is one file of testdata/hostile: a request someone might
// send the receiver, and the answer it must get.
type hostileCase struct {
	// Description says what the case is about.
	Description string `json:"description"`
	Request     struct {
		// Method is POST unless given.
		Method string `json:"method"`
		// Path is sent as written, after {namespace} and {target} are
		// replaced; /hooks/{namespace}/{target} unless given.
		Path string `json:"path"`
		// Format is the target's: Dynatrace (basic auth) unless Guance
		// (bearer token).
		Format string `json:"format"`
		// ContentType is application/json unless given; "-" sends none.
		ContentType string `json:"contentType"`
		// Auth is "good" (the target's credentials, the default), "none",
		// or an Authorization header sent as written, where {basic:u:p}
		// stands for the base64 of u:p.
		Auth string `json:"auth"`
		// Headers are added as written; {repeat:N:s:repeat} in a value
		// stands for s repeated N times.
		Headers map[string]string `json:"headers"`
		// Body is sent as written, with {repeat:N:s:repeat} expanded.
		Body string `json:"body"`
	} `json:"request"`
	Expect struct {
		// Status is the HTTP status.
		Status int `json:"status"`
		// Message must be contained in the JSON answer's message, or be
		// its result (created, duplicate, ignored) when it has none; for
		// a status the HTTP server answers itself, in the body.
		Message string `json:"message"`
		// Stored is how many ProblemEvents the request must leave: 1 for
		// a 202, 0 otherwise, unless given.
		Stored *int `json:"stored"`
		// Spec holds fields the stored event's spec must have, as JSON.
		Spec map[string]any `json:"spec"`
	} `json:"expect"`
}

// expand replaces each {repeat:N:s:repeat} in s with s repeated N times.
func expand(t *testing.T, s string) string {
	t.Helper()
	for {
		start := strings.Index(s, "{repeat:")
		if start < 0 {
			return s
		}
		end := strings.Index(s[start:], ":repeat}")
		if end < 0 {
			t.Fatalf("{repeat: without :repeat} in %.40q", s[start:])
		}
		countText, unit, _ := strings.Cut(s[start+len("{repeat:"):start+end], ":")
		n, err := strconv.Atoi(countText)
		if err != nil {
			t.Fatalf("bad count in {repeat:%s:...:repeat}", countText)
		}
		s = s[:start] + strings.Repeat(unit, n) + s[start+end+len(":repeat}"):]
	}
}

// TestHostileInput sends every request of testdata/hostile to a receiver
// served as Start serves it (header and time bounds included), checks the
// status and message each must get and what it stored, and that the
// receiver still takes a good notification after all of them.
func TestHostileInput(t *testing.T) {
	files, err := filepath.Glob("testdata/hostile/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 40 {
		t.Fatalf("the corpus has %d cases, want at least 40", len(files))
	}
	dt := env.NewTarget(t, problemhookv1alpha1.FormatDynatrace)
	gu := env.NewTarget(t, problemhookv1alpha1.FormatGuance)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := env.Receiver.HTTPServer(logr.Discard())
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	base := "http://" + ln.Addr().String()

	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".yaml"), func(t *testing.T) {
			g := NewWithT(t)
			data, err := os.ReadFile(file)
			g.Expect(err).NotTo(HaveOccurred())
			var tc hostileCase
			g.Expect(yaml.UnmarshalStrict(data, &tc)).To(Succeed())
			g.Expect(tc.Description).NotTo(BeEmpty(), "each case says what it is about")
			g.Expect(tc.Expect.Status).NotTo(BeZero())
			g.Expect(tc.Expect.Message).NotTo(BeEmpty(), "each case states the message it must get")

			tg := dt
			if tc.Request.Format == string(problemhookv1alpha1.FormatGuance) {
				tg = gu
			}
			path := cmp.Or(tc.Request.Path, "/hooks/{namespace}/{target}")
			path = strings.NewReplacer("{namespace}", tg.NS, "{target}", tg.Name).Replace(path)
			req, err := http.NewRequest(cmp.Or(tc.Request.Method, http.MethodPost), base+path, strings.NewReader(expand(t, tc.Request.Body)))
			g.Expect(err).NotTo(HaveOccurred())
			if ct := cmp.Or(tc.Request.ContentType, "application/json"); ct != "-" {
				req.Header.Set("Content-Type", ct)
			}
			switch auth := cmp.Or(tc.Request.Auth, "good"); {
			case auth == "good" && tg.Obj.Spec.Format == problemhookv1alpha1.FormatGuance:
				req.Header.Set("Authorization", "Bearer "+receivertest.Token)
			case auth == "good":
				req.SetBasicAuth(receivertest.User, receivertest.Password)
			case auth == "none":
			default:
				req.Header.Set("Authorization", basicPlaceholder(auth))
			}
			for k, v := range tc.Request.Headers {
				req.Header.Set(k, expand(t, v))
			}
			before := len(env.Events(t, tg.NS))
			resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
			g.Expect(err).NotTo(HaveOccurred())
			body, err := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(resp.StatusCode).To(Equal(tc.Expect.Status), "%s", body)
			var answer struct {
				Result       string `json:"result"`
				Message      string `json:"message"`
				ProblemEvent string `json:"problemEvent"`
			}
			switch {
			case json.Unmarshal(body, &answer) == nil && answer.Message != "":
				g.Expect(answer.Message).To(ContainSubstring(tc.Expect.Message))
			case answer.Result != "":
				g.Expect(answer.Result).To(Equal(tc.Expect.Message))
			default:
				g.Expect(string(body)).To(ContainSubstring(tc.Expect.Message))
			}

			stored := 0
			if resp.StatusCode == http.StatusAccepted {
				stored = 1
			}
			if tc.Expect.Stored != nil {
				stored = *tc.Expect.Stored
			}
			after := env.Events(t, tg.NS)
			g.Expect(after).To(HaveLen(before+stored), "events stored")
			if len(tc.Expect.Spec) > 0 {
				_, name, _ := strings.Cut(answer.ProblemEvent, "/")
				var ev *problemhookv1alpha1.ProblemEvent
				for i := range after {
					if after[i].Name == name {
						ev = &after[i]
					}
				}
				g.Expect(ev).NotTo(BeNil(), "the stored event %q", answer.ProblemEvent)
				got, err := json.Marshal(ev.Spec)
				g.Expect(err).NotTo(HaveOccurred())
				var spec map[string]any
				g.Expect(json.Unmarshal(got, &spec)).To(Succeed())
				for k, v := range tc.Expect.Spec {
					g.Expect(spec).To(HaveKeyWithValue(k, v), "spec.%s", k)
				}
			}
		})
	}

	// Throughout, the receiver kept serving.
	r := receivertest.Send(t, receivertest.Request{URL: base + "/hooks/" + dt.NS + "/" + dt.Name, Body: `{"State":"OPEN","ProblemID":"77","PID":"-77_1669823466223V2"}`, Auth: receivertest.Basic(receivertest.User, receivertest.Password)})
	NewWithT(t).Expect(r.Status).To(Equal(http.StatusAccepted))
}

// basicPlaceholder expands {basic:u:p} in an Authorization value.
func basicPlaceholder(v string) string {
	start := strings.Index(v, "{basic:")
	if start < 0 {
		return v
	}
	end := strings.Index(v[start:], "}") + start
	creds := v[start+len("{basic:") : end]
	return v[:start] + base64.StdEncoding.EncodeToString([]byte(creds)) + v[end+1:]
}

// TestSlowSendersAreCutOff holds connections open by sending headers, or a
// body, a byte at a time: each is closed when its time is up, nothing is
// stored, and a good notification is taken meanwhile. The bounds are the
// production server's, shortened so that the test is quick.
func TestSlowSendersAreCutOff(t *testing.T) {
	g := NewWithT(t)
	dt := env.NewTarget(t, problemhookv1alpha1.FormatDynatrace)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	g.Expect(err).NotTo(HaveOccurred())
	srv := env.Receiver.HTTPServer(logr.Discard())
	srv.ReadHeaderTimeout, srv.ReadTimeout = 300*time.Millisecond, time.Second
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	path := "/hooks/" + dt.NS + "/" + dt.Name
	auth := "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(receivertest.User+":"+receivertest.Password)) + "\r\n"

	for name, start := range map[string]string{
		"headers": "POST " + path + " HTTP/1.1\r\nHost: receiver\r\n",
		"body":    "POST " + path + " HTTP/1.1\r\nHost: receiver\r\n" + auth + "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"State\":",
	} {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			var conns []net.Conn
			for range 20 {
				conn, err := net.Dial("tcp", ln.Addr().String())
				g.Expect(err).NotTo(HaveOccurred())
				_, err = conn.Write([]byte(start))
				g.Expect(err).NotTo(HaveOccurred())
				conns = append(conns, conn)
			}
			// A sender that does not trickle is answered meanwhile.
			r := receivertest.Send(t, receivertest.Request{URL: "http://" + ln.Addr().String() + path, Body: `{"State":"OPEN","ProblemID":"88","PID":"-88_` + name + `"}`, Auth: receivertest.Basic(receivertest.User, receivertest.Password)})
			g.Expect(r.Status).To(Equal(http.StatusAccepted))

			// Trickling on, each slow connection is closed by the server.
			for _, conn := range conns {
				closed := make(chan struct{})
				go func() {
					defer close(closed)
					_, _ = io.Copy(io.Discard, conn) // until the server closes it
				}()
				g.Eventually(func() bool {
					_, _ = conn.Write([]byte(" "))
					select {
					case <-closed:
						return true
					default:
						return false
					}
				}).WithTimeout(5 * time.Second).WithPolling(100 * time.Millisecond).Should(BeTrue())
				_ = conn.Close()
			}
		})
	}
	g.Expect(env.Events(t, dt.NS)).To(HaveLen(2), "the two good notifications, nothing from the slow senders")
}
