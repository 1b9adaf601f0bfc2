package egress

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"

	"golang.org/x/net/http/httpproxy"
)

// Proxy returns the proxy function of a transport whose connections p
// checks: the proxies the environment names (HTTP_PROXY, HTTPS_PROXY,
// NO_PROXY), read now, for the requests they apply to. Through a proxy the
// dialer sees only the proxy's address, so the destination is checked
// here, before the proxy is chosen: an address, or every address its name
// resolves to, that p refuses fails the request with a *RefusedError and
// nothing reaches the proxy. The proxy resolves the name again itself;
// a name whose answer changes between the two is outside what problemhook
// can see.
func (p *Policy) Proxy() func(*http.Request) (*url.URL, error) {
	fromEnv := httpproxy.FromEnvironment().ProxyFunc()
	return func(req *http.Request) (*url.URL, error) {
		proxy, err := fromEnv(req.URL)
		if err != nil || proxy == nil || p == nil {
			return proxy, err
		}
		host := req.URL.Hostname()
		addrs := []netip.Addr{}
		if a, err := netip.ParseAddr(host); err == nil {
			addrs = append(addrs, a)
		} else {
			resolved, err := net.DefaultResolver.LookupNetIP(req.Context(), "ip", host)
			if err != nil {
				return nil, fmt.Errorf("egress policy cannot check %s before sending it through proxy %s: %w", host, proxy.Redacted(), err)
			}
			addrs = resolved
		}
		for _, a := range addrs {
			if err := p.Check(a); err != nil {
				return nil, err
			}
		}
		return proxy, nil
	}
}
