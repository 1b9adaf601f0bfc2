package egress_test

import (
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/problemhook/problemhook/internal/egress"
)

func prefixes(t *testing.T, s string) []netip.Prefix {
	t.Helper()
	p, err := egress.ParseCIDRs(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCheck(t *testing.T) {
	const (
		linkLocal = "link-local, where cloud metadata services answer"
		metadata  = "a cloud metadata service"
	)
	tests := []struct {
		name        string
		allow, deny string
		addr        string
		// reason is empty when addr must be allowed.
		reason string
	}{
		{name: "IPv4 loopback", addr: "127.0.0.1", reason: "loopback"},
		{name: "IPv4 loopback range", addr: "127.8.9.10", reason: "loopback"},
		{name: "IPv6 loopback", addr: "::1", reason: "loopback"},
		{name: "IPv4 link-local metadata", addr: "169.254.169.254", reason: linkLocal},
		{name: "IPv6 link-local", addr: "fe80::1", reason: linkLocal},
		{name: "IPv6 link-local with zone", addr: "fe80::1%eth0", reason: linkLocal},
		{name: "IPv4 unspecified", addr: "0.0.0.0", reason: "unspecified"},
		{name: "IPv4 this network", addr: "0.1.2.3", reason: "unspecified"},
		{name: "IPv6 unspecified", addr: "::", reason: "unspecified"},
		{name: "IPv4 multicast", addr: "224.0.0.1", reason: "multicast"},
		{name: "IPv4 multicast top", addr: "239.255.255.250", reason: "multicast"},
		{name: "IPv6 multicast", addr: "ff02::1", reason: "multicast"},
		{name: "AWS IMDS over IPv6", addr: "fd00:ec2::254", reason: metadata},
		{name: "Alibaba Cloud metadata", addr: "100.100.100.200", reason: metadata},
		{name: "IPv4-mapped metadata", addr: "::ffff:169.254.169.254", reason: linkLocal},
		{name: "IPv4-mapped loopback", addr: "::ffff:127.0.0.1", reason: "loopback"},

		{name: "public IPv4", addr: "93.184.216.34"},
		{name: "public IPv6", addr: "2606:2800:220:1::1"},
		{name: "private IPv4 open by default", addr: "10.1.2.3"},
		{name: "next to Alibaba metadata", addr: "100.100.100.201"},
		{name: "next to AWS IMDS", addr: "fd00:ec2::253"},

		{name: "allow opens IPv4 loopback", allow: "127.0.0.0/8, ::1/128", addr: "127.0.0.1"},
		{name: "allow opens IPv6 loopback", allow: "127.0.0.0/8, ::1/128", addr: "::1"},
		{name: "allow opens mapped loopback", allow: "127.0.0.0/8", addr: "::ffff:127.0.0.1"},
		{name: "allow of loopback leaves metadata closed", allow: "127.0.0.0/8, ::1/128", addr: "169.254.169.254", reason: linkLocal},
		{name: "deny closes private range", deny: "10.0.0.0/8", addr: "10.1.2.3", reason: "closed by --egress-deny-cidrs 10.0.0.0/8"},
		{name: "deny shown masked", deny: "10.9.9.9/8", addr: "10.1.2.3", reason: "closed by --egress-deny-cidrs 10.0.0.0/8"},
		{name: "deny leaves others open", deny: "10.0.0.0/8", addr: "192.168.1.1"},
		{name: "longer allow beats deny", allow: "10.1.2.3", deny: "10.0.0.0/8", addr: "10.1.2.3"},
		{name: "deny covers rest of range", allow: "10.1.2.3", deny: "10.0.0.0/8", addr: "10.1.2.4", reason: "closed by --egress-deny-cidrs 10.0.0.0/8"},
		{name: "longer deny beats allow", allow: "10.0.0.0/8", deny: "10.1.0.0/16", addr: "10.1.2.3", reason: "closed by --egress-deny-cidrs 10.1.0.0/16"},
		{name: "longest of several denies named", deny: "10.0.0.0/8, 10.1.0.0/16", addr: "10.1.2.3", reason: "closed by --egress-deny-cidrs 10.1.0.0/16"},
		{name: "tie goes to deny", allow: "10.0.0.0/8", deny: "10.0.0.0/8", addr: "10.1.2.3", reason: "closed by --egress-deny-cidrs 10.0.0.0/8"},
		{name: "deny of public range", deny: "93.184.216.0/24", addr: "93.184.216.34", reason: "closed by --egress-deny-cidrs 93.184.216.0/24"},
		{name: "mapped allow prefix matches IPv4", allow: "::ffff:127.0.0.0/104", addr: "127.0.0.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := egress.New(prefixes(t, tt.allow), prefixes(t, tt.deny))
			err := p.Check(netip.MustParseAddr(tt.addr))
			if tt.reason == "" {
				if err != nil {
					t.Fatalf("Check(%s) = %v, want allowed", tt.addr, err)
				}
				return
			}
			if !egress.IsRefused(err) {
				t.Fatalf("Check(%s) = %v, want a *RefusedError", tt.addr, err)
			}
			want := "destination " + netip.MustParseAddr(tt.addr).Unmap().WithZone("").String() +
				" is not allowed by problemhook's egress policy (" + tt.reason + ")"
			if err.Error() != want {
				t.Fatalf("Check(%s) error = %q, want %q", tt.addr, err, want)
			}
		})
	}
}

func TestErrorMessage(t *testing.T) {
	err := egress.New(nil, nil).Check(netip.MustParseAddr("::ffff:169.254.169.254"))
	const want = "destination 169.254.169.254 is not allowed by problemhook's egress policy (link-local, where cloud metadata services answer)"
	if err == nil || err.Error() != want {
		t.Fatalf("got %v, want %q", err, want)
	}
}

func TestNilPolicyAllowsEverything(t *testing.T) {
	var p *egress.Policy
	for _, a := range []string{"127.0.0.1", "::1", "169.254.169.254", "fd00:ec2::254", "0.0.0.0", "93.184.216.34"} {
		if err := p.Check(netip.MustParseAddr(a)); err != nil {
			t.Errorf("nil Check(%s) = %v, want nil", a, err)
		}
		if err := p.Control("tcp", net.JoinHostPort(a, "80"), nil); err != nil {
			t.Errorf("nil Control(%s) = %v, want nil", a, err)
		}
	}
	if d := p.Dialer(time.Second, time.Second); d.Control != nil {
		t.Error("nil policy's Dialer has a Control function, want a plain dialer")
	}
}

func TestControl(t *testing.T) {
	p := egress.New(nil, nil)
	tests := []struct {
		address string
		refused bool // a *RefusedError
		wantErr bool // any error
	}{
		{address: "93.184.216.34:443"},
		{address: "[2606:2800:220:1::1]:443"},
		{address: "127.0.0.1:80", refused: true, wantErr: true},
		{address: "[::ffff:169.254.169.254]:80", refused: true, wantErr: true},
		{address: "[fe80::1%eth0]:80", refused: true, wantErr: true},
		{address: "example.com:80", wantErr: true},
		{address: "93.184.216.34", wantErr: true},
		{address: "", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.address, func(t *testing.T) {
			err := p.Control("tcp", tt.address, nil)
			if (err != nil) != tt.wantErr || egress.IsRefused(err) != tt.refused {
				t.Fatalf("Control(%q) = %v, want error %v, refused %v", tt.address, err, tt.wantErr, tt.refused)
			}
		})
	}
}

func TestParseCIDRs(t *testing.T) {
	tests := []struct {
		in      string
		want    []string
		wantErr string // a substring of the error
	}{
		{in: "", want: nil},
		{in: "   ", want: nil},
		{in: "10.0.0.0/8", want: []string{"10.0.0.0/8"}},
		{in: " 10.0.0.0/8 , fd00::/8 ", want: []string{"10.0.0.0/8", "fd00::/8"}},
		{in: "10.1.2.3", want: []string{"10.1.2.3/32"}},
		{in: "2001:db8::1", want: []string{"2001:db8::1/128"}},
		{in: "::ffff:127.0.0.1", want: []string{"127.0.0.1/32"}},
		{in: "127.0.0.0/8,::1/128", want: []string{"127.0.0.0/8", "::1/128"}},
		{in: "10.0.0.0/8, bogus", wantErr: `"bogus"`},
		{in: "10.0.0.0/33", wantErr: `"10.0.0.0/33"`},
		{in: "10.0.0.0/8,,fd00::/8", wantErr: `""`},
		{in: "fe80::1%eth0", wantErr: `"fe80::1%eth0"`},
		{in: "example.com", wantErr: `"example.com"`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := egress.ParseCIDRs(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseCIDRs(%q) error = %v, want one naming %s", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseCIDRs(%q) = %v", tt.in, err)
			}
			var gotS []string
			for _, p := range got {
				gotS = append(gotS, p.String())
			}
			if strings.Join(gotS, " ") != strings.Join(tt.want, " ") || (got == nil) != (tt.want == nil) {
				t.Fatalf("ParseCIDRs(%q) = %v, want %v", tt.in, gotS, tt.want)
			}
		})
	}
}

// TestHTTPClient shows the policy working where it matters: in the dialer of
// an http.Client, against a server on 127.0.0.1.
func TestHTTPClient(t *testing.T) {
	var requests atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		requests.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	// The same server by name: the policy must see the address it resolves to.
	byName := "http://" + net.JoinHostPort("localhost", u.Port())

	get := func(p *egress.Policy, target string) error {
		client := &http.Client{
			Transport: &http.Transport{DialContext: p.Dialer(5*time.Second, 30*time.Second).DialContext},
			Timeout:   10 * time.Second,
		}
		resp, err := client.Get(target)
		if err != nil {
			return err
		}
		return resp.Body.Close()
	}

	for _, target := range []string{srv.URL, byName} {
		t.Run("refused "+target, func(t *testing.T) {
			err := get(egress.New(nil, nil), target)
			if !egress.IsRefused(err) {
				t.Fatalf("GET %s = %v, want a *RefusedError", target, err)
			}
			if !strings.Contains(err.Error(), "is not allowed") {
				t.Fatalf("GET %s error = %q, want it to say the destination is not allowed", target, err)
			}
			if n := requests.Load(); n != 0 {
				t.Fatalf("server saw %d requests, want none", n)
			}
		})
	}

	loopback := egress.New(prefixes(t, "127.0.0.0/8, ::1/128"), nil)
	for _, target := range []string{srv.URL, byName} {
		t.Run("allowed "+target, func(t *testing.T) {
			before := requests.Load()
			if err := get(loopback, target); err != nil {
				t.Fatalf("GET %s = %v, want success with loopback allowed", target, err)
			}
			if requests.Load() != before+1 {
				t.Fatalf("server did not see the request")
			}
		})
	}
}
