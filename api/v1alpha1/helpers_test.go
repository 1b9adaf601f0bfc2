package v1alpha1_test

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
)

// A route's retry policy fills in what it leaves out with the defaults.
func TestRetryPolicy(t *testing.T) {
	for _, tc := range []struct {
		name    string
		retry   *problemhookv1alpha1.RetryPolicy
		limit   int32
		backoff time.Duration
	}{
		{"no policy", nil, problemhookv1alpha1.DefaultRetryLimit, problemhookv1alpha1.DefaultRetryBackoff},
		{"limit only", &problemhookv1alpha1.RetryPolicy{Limit: new(int32(2))}, 2, problemhookv1alpha1.DefaultRetryBackoff},
		{"no retries", &problemhookv1alpha1.RetryPolicy{Limit: new(int32(0))}, 0, problemhookv1alpha1.DefaultRetryBackoff},
		{"backoff only", &problemhookv1alpha1.RetryPolicy{Backoff: metav1.Duration{Duration: time.Minute}}, problemhookv1alpha1.DefaultRetryLimit, time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			limit, backoff := (&problemhookv1alpha1.IntegrationRoute{Spec: problemhookv1alpha1.IntegrationRouteSpec{Retry: tc.retry}}).RetryPolicy()
			g.Expect(limit).To(Equal(tc.limit))
			g.Expect(backoff).To(Equal(tc.backoff))
		})
	}
}
