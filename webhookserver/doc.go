// Package webhookserver is the home of everything problemhook serves over
// HTTP, each on a listener of its own and on every replica:
//
//   - receiver: POST /hooks/{namespace}/{name} on :9292, which stores each
//     notification as a ProblemEvent before it answers;
//   - dashboard: the read-only dashboard and its JSON API on :9293.
//
// main.go wires both into the manager. Neither imports the reconcilers:
// what they share with them (event naming, webhook paths, credentials,
// metrics) lives in api/v1alpha1 and internal/.
package webhookserver
