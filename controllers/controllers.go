// Package controllers holds what problemhook's reconcilers share: their
// dependencies (Deps), the client options they are written for and the
// watch of referenced Secrets. Each reconciler is a package below it, one per kind
// it reconciles: problemevent (the events' actions, comments and
// enrichment), notificationtarget (targets, their registration in
// Dynatrace, retention and the catch-up poller) and integrationroute
// (routes). The suites beside this file run the three together against a
// real API server, as the manager does.
package controllers

// Truncate is s cut to at most n bytes, for what status and Events keep.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
