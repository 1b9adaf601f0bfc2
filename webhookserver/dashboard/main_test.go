package dashboard_test

import (
	"os"
	"testing"

	"github.com/problemhook/problemhook/test/harness/receivertest"
)

// env is the package's control plane, with a manager that runs the
// NotificationTarget reconciler and the receiver as main.go wires them;
// the dashboards under test read its cache and its metrics.
var env receivertest.Env

func TestMain(m *testing.M) {
	os.Exit(receivertest.Main(m, &env))
}
