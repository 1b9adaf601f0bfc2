//go:build linux

package drills

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"
)

// notification is one Dynatrace notification a drill sends.
type notification struct {
	PID, State string
	// Display is the problem's display number.
	Display string
	// Entities is how many impacted hosts it names.
	Entities int
}

// testNotification is Dynatrace's test run: recorded or ignored, never routed.
var testNotification = notification{PID: "99999", State: "OPEN", Display: "999"}

func (n notification) body() []byte {
	body := map[string]any{
		"State": n.State, "PID": n.PID, "ProblemID": n.Display,
		"ProblemTitle": "Drill problem " + n.Display, "ProblemSeverity": "AVAILABILITY", "ProblemImpact": "INFRASTRUCTURE",
	}
	if n.Entities > 0 {
		var entities []map[string]string
		for i := range n.Entities {
			entities = append(entities, map[string]string{"type": "HOST", "name": fmt.Sprintf("web%03d", i), "entity": fmt.Sprintf("HOST-%016X", i)})
		}
		body["ImpactedEntities"] = entities
	}
	b, _ := json.Marshal(body)
	return b
}

func (n notification) key() string { return n.PID + "/" + n.State }

// outcome is how one attempt to deliver a notification ended.
type outcome struct {
	status     int
	retryAfter string
	result     string
	err        error
	sent, done time.Time
}

func (o outcome) stored() bool { return o.status == http.StatusOK || o.status == http.StatusAccepted }

// sender posts notifications to one target as Dynatrace would.
type sender struct {
	url, password string
	client        *http.Client
}

func (s sender) post(ctx context.Context, n notification) outcome {
	return s.postAs(ctx, n, s.password)
}

func (s sender) postAs(ctx context.Context, n notification, password string) outcome {
	return s.postBody(ctx, n.body(), password)
}

// postBody posts body as it is.
func (s sender) postBody(ctx context.Context, body []byte, password string) outcome {
	o := outcome{sent: time.Now()}
	defer func() { o.done = time.Now() }()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		o.err = err
		return o
	}
	req.SetBasicAuth(webhookUser, password)
	req.Header.Set("Content-Type", "application/json")
	c := s.client
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		o.err = err
		o.done = time.Now()
		return o
	}
	answered, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	_ = resp.Body.Close()
	o.status, o.retryAfter, o.done = resp.StatusCode, resp.Header.Get("Retry-After"), time.Now()
	var answer struct {
		Result string `json:"result"`
	}
	_ = json.Unmarshal(answered, &answer)
	o.result = answer.Result
	if o.result == "" {
		o.result = strings.TrimSpace(string(answered))
	}
	return o
}

// deliver posts n until it is stored, as a sender that does what it is
// told would: after a 503 it waits as long as Retry-After says (1 s at
// most, to keep the drill short), after a connection error 200 ms; any
// other answer is final. It gives up after deadline.
func (s sender) deliver(ctx context.Context, n notification, deadline time.Time) []outcome {
	var attempts []outcome
	for {
		o := s.post(ctx, n)
		attempts = append(attempts, o)
		wait := 200 * time.Millisecond
		switch {
		case o.stored():
			return attempts
		case o.status == http.StatusServiceUnavailable:
			if secs, err := strconv.Atoi(o.retryAfter); err == nil && secs >= 0 {
				wait = min(time.Duration(secs)*time.Second, time.Second)
			}
		case o.err == nil:
			return attempts
		}
		if time.Now().Add(wait).After(deadline) || ctx.Err() != nil {
			return attempts
		}
		time.Sleep(wait)
	}
}

// tally counts outcomes by kind, for the drills' count lines.
type tally struct {
	mu     sync.Mutex
	counts map[string]int
}

func (t *tally) add(kind string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.counts == nil {
		t.counts = map[string]int{}
	}
	t.counts[kind]++
}

func (t *tally) get(kind string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.counts[kind]
}

// kind names an outcome: "202 created", "503", "connection error".
func kind(o outcome) string {
	switch {
	case o.err != nil:
		return "connection error"
	case o.stored():
		return fmt.Sprintf("%d %s", o.status, o.result)
	}
	return strconv.Itoa(o.status)
}

// hookServer stands in for the HTTP endpoint of a route's HTTP action: it
// wants the route's Authorization header and counts the requests per
// event, which the action's body names.
type hookServer struct {
	*httptest.Server
	mu      sync.Mutex
	byEvent map[string]int
	refused int
}

func newHookServer() *hookServer {
	h := &hookServer{byEvent: map[string]int{}}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<16))
		h.mu.Lock()
		defer h.mu.Unlock()
		var msg struct {
			Event string `json:"event"`
		}
		if err != nil || r.Header.Get("Authorization") != httpAuthHeader || json.Unmarshal(body, &msg) != nil || msg.Event == "" {
			h.refused++
			http.Error(w, "unauthorized or malformed", http.StatusBadRequest)
			return
		}
		h.byEvent[msg.Event]++
		w.WriteHeader(http.StatusNoContent)
	}))
	return h
}

// calls returns how often each event was posted.
func (h *hookServer) calls() map[string]int {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make(map[string]int, len(h.byEvent))
	for k, v := range h.byEvent {
		out[k] = v
	}
	return out
}

// burst delivers the notifications from workers senders at about rate a
// second, each as deliver does, and returns every attempt per
// notification. during runs alongside, from the first post on.
func burst(ctx context.Context, senders func(i int) sender, ns []notification, workers int, rate float64, during func()) map[string][]outcome {
	var (
		mu      sync.Mutex
		results = map[string][]outcome{}
		wg      sync.WaitGroup
		queue   = make(chan notification)
	)
	for w := range workers {
		wg.Go(func() {
			s := senders(w)
			for n := range queue {
				attempts := s.deliver(ctx, n, time.Now().Add(90*time.Second))
				mu.Lock()
				results[n.key()] = append(results[n.key()], attempts...)
				mu.Unlock()
			}
		})
	}
	var side sync.WaitGroup
	if during != nil {
		side.Go(during)
	}
	tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer tick.Stop()
	for _, n := range ns {
		<-tick.C
		queue <- n
	}
	close(queue)
	wg.Wait()
	side.Wait()
	return results
}

func problems(prefix string, n int) []notification {
	out := make([]notification, n)
	for i := range out {
		out[i] = notification{PID: fmt.Sprintf("%s-%04d_1700000000000V2", prefix, i), State: "OPEN", Display: fmt.Sprint(10000 + i)}
	}
	return out
}
