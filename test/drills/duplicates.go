//go:build linux

package drills

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/problemhook/problemhook/internal/metrics"
	"github.com/problemhook/problemhook/test/harness/managerproc"
)

// everyStateRoute runs a Job for OPEN problems and calls the HTTP endpoint
// for every event (hookOnlyRoute).
var everyStateRoute = `
apiVersion: problemhook.io/v1alpha1
kind: IntegrationRoute
metadata: {name: open-job}
spec:
  targets: [dynatrace]
  match: {states: [OPEN]}
  actions:
  - name: job
    job:
      template:
        spec:
          template:
            spec:
              restartPolicy: Never
              securityContext: {runAsUser: 65534}
              containers: [{name: run, image: busybox:1.36, command: [echo, $(PROBLEM_STATE)]}]
---` + hookOnlyRoute

// duplicatesAndReordering delivers the OPEN and RESOLVED notification of
// each problem 1 to 10 times each, shuffled (so RESOLVED often comes
// first), from 16 connections at once: one event per (problem, state),
// each event's HTTP call made once, no Job twice.
func (d *drills) duplicatesAndReordering(ctx context.Context) result {
	var r result
	ns, jc, err := d.namespaceWithJobs(ctx, "duplicates", false, everyStateRoute)
	if err != nil {
		r.Failures = append(r.Failures, err.Error())
		return r
	}
	defer jc.stop()
	rng := rand.New(rand.NewPCG(8, 8))
	var distinct, deliveries []notification
	resolvedFirst := 0
	for _, n := range problems("dup", 60) {
		resolved := n
		resolved.State = "RESOLVED"
		distinct = append(distinct, n, resolved)
		for _, x := range []notification{n, resolved} {
			for range 1 + rng.IntN(10) {
				deliveries = append(deliveries, x)
			}
		}
	}
	rng.Shuffle(len(deliveries), func(i, j int) { deliveries[i], deliveries[j] = deliveries[j], deliveries[i] })
	seen := map[string]bool{}
	for _, n := range deliveries {
		if n.State == "RESOLVED" && !seen[n.PID+"/OPEN"] && !seen[n.key()] {
			resolvedFirst++
		}
		seen[n.key()] = true
	}
	results := burst(ctx, func(int) sender { return d.sender(d.mgr, ns) }, deliveries, 16, 400, nil)
	created := 0
	for key, attempts := range results {
		c := 0
		for _, o := range attempts {
			if o.stored() && o.result == "created" {
				c++
			}
		}
		if c != 1 {
			r.Failures = append(r.Failures, fmt.Sprintf("%s answered created %d times", key, c))
		}
		created += c
		if !attempts[len(attempts)-1].stored() {
			r.Failures = append(r.Failures, key+": last delivery not stored")
		}
	}
	evs, stored, stopped := d.eachEventOnce(ctx, &r, ns, distinct, jc)
	r.Counts = fmt.Sprintf("%d deliveries of %d notifications (%d RESOLVED before their OPEN), 16 connections: %d answered created, %d stored once, %d HTTP calls, one per event but %d not sent because the problem had resolved, %d Jobs, none twice",
		len(deliveries), len(distinct), resolvedFirst, created, stored, len(evs)-stopped, stopped, jc.count())
	return r
}

// twoReceivers runs two replicas with leader election against one API
// server and sends each notification to both, twice: one event each, the
// actions run once, by the leader.
func (d *drills) twoReceivers(ctx context.Context) result {
	var r result
	ns, jc, err := d.namespaceWithJobs(ctx, "two-receivers", false, everyStateRoute)
	if err != nil {
		r.Failures = append(r.Failures, err.Error())
		return r
	}
	defer jc.stop()
	d.mgr.Stop()
	defer func() {
		if err := d.mgr.Start(ctx); err != nil {
			r.Failures = append(r.Failures, "restarting the drills' manager: "+err.Error())
		}
	}()
	var replicas []*managerproc.Process
	for _, name := range []string{"replica-a", "replica-b"} {
		m, err := d.newManager(name+".log", "--leader-elect")
		if err == nil {
			err = m.Start(ctx)
		}
		if err != nil {
			r.Failures = append(r.Failures, "starting "+name+": "+err.Error())
			return r
		}
		defer m.Stop()
		replicas = append(replicas, m)
	}
	notes := problems("replicas", 80)
	var deliveries []notification
	for _, n := range notes {
		deliveries = append(deliveries, n, n, n, n)
	}
	results := burst(ctx, func(i int) sender { return d.sender(replicas[i%2], ns) }, deliveries, 8, 200, nil)
	for key, attempts := range results {
		if !attempts[len(attempts)-1].stored() {
			r.Failures = append(r.Failures, key+": not stored")
		}
	}
	evs, stored, _ := d.eachEventOnce(ctx, &r, ns, notes, jc) // OPEN only: nothing resolves
	var received []string
	for i, m := range replicas {
		created, err1 := m.Metric(metrics.ReceiverNotificationsName, `namespace="`+ns+`"`, `result="created"`)
		duplicate, err2 := m.Metric(metrics.ReceiverNotificationsName, `namespace="`+ns+`"`, `result="duplicate"`)
		if err := errors.Join(err1, err2); err != nil {
			r.Failures = append(r.Failures, "reading a replica's metrics: "+err.Error())
		}
		received = append(received, fmt.Sprintf("%s created %.0f and answered %.0f duplicates", []string{"a", "b"}[i], created, duplicate))
	}
	r.Counts = fmt.Sprintf("%d notifications, each sent 4 times across 2 replicas (%s): %d stored once, %d HTTP calls, one per event, %d Jobs, none twice",
		len(notes), strings.Join(received, ", "), stored, len(evs), jc.count())
	return r
}
