package egress_test

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync/atomic"
	"testing"

	. "github.com/onsi/gomega"

	"github.com/problemhook/problemhook/internal/egress"
)

// With a proxy in the environment, as in many corporate clusters, the
// dialer sees only the proxy's address: the destination is checked before
// the proxy is chosen, so the metadata address is refused with the
// policy's message and nothing reaches the proxy, while an allowed
// destination goes through it.
func TestProxiesHonourThePolicy(t *testing.T) {
	g := NewWithT(t)
	var proxied atomic.Int32
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proxied.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(proxy.Close)
	t.Setenv("HTTP_PROXY", proxy.URL)
	t.Setenv("NO_PROXY", "")
	// Loopback, where the proxy listens, is opened; link-local is not.
	policy := egress.New([]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, nil)
	client := &http.Client{Transport: &http.Transport{Proxy: policy.Proxy(), DialContext: policy.Dialer(0, 0).DialContext}}

	resp, err := client.Get("http://169.254.169.254/latest/meta-data/")
	if err == nil {
		_ = resp.Body.Close()
	}
	g.Expect(egress.IsRefused(err)).To(BeTrue(), "%v", err)
	g.Expect(err).To(MatchError(ContainSubstring("destination 169.254.169.254 is not allowed by problemhook's egress policy (link-local, where cloud metadata services answer)")))
	g.Expect(proxied.Load()).To(BeZero(), "nothing reached the proxy")

	resp, err = client.Get("http://192.0.2.10/hook")
	g.Expect(err).NotTo(HaveOccurred())
	_ = resp.Body.Close()
	g.Expect(resp.StatusCode).To(Equal(http.StatusNoContent))
	g.Expect(proxied.Load()).To(Equal(int32(1)), "an allowed destination goes through the proxy")

	// Without a policy, the environment's proxy is used as it is.
	var none *egress.Policy
	resp, err = (&http.Client{Transport: &http.Transport{Proxy: none.Proxy()}}).Get("http://169.254.169.254/")
	g.Expect(err).NotTo(HaveOccurred())
	_ = resp.Body.Close()
	g.Expect(proxied.Load()).To(Equal(int32(2)))
}
