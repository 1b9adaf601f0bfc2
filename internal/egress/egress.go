// Package egress decides which destinations the operator may connect to on
// behalf of a tenant: HTTP hooks, DingTalk, Twilio and the Dynatrace API.
//
// A tenant chooses the URLs those connections go to, so without a policy a
// tenant could point a hook at the node's loopback interface or at the cloud
// metadata service and read what the operator can reach. The policy is
// checked in net.Dialer.Control, on the resolved address of every
// connection: a DNS name cannot hide a refused address, and redirects and
// reconnects are checked like the first connection.
package egress

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"time"
)

// builtin lists the ranges refused unless an administrator opens them, each
// with the reason given in the error.
var builtin = []struct {
	prefix netip.Prefix
	reason string
}{
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback"},
	{netip.MustParsePrefix("::1/128"), "loopback"},
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local, where cloud metadata services answer"},
	{netip.MustParsePrefix("fe80::/10"), "link-local, where cloud metadata services answer"},
	{netip.MustParsePrefix("0.0.0.0/8"), "unspecified"},
	{netip.MustParsePrefix("::/128"), "unspecified"},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast"},
	{netip.MustParsePrefix("ff00::/8"), "multicast"},
	// Metadata services that answer outside the link-local ranges.
	{netip.MustParsePrefix("fd00:ec2::254/128"), "a cloud metadata service"},  // AWS IMDS over IPv6
	{netip.MustParsePrefix("100.100.100.200/32"), "a cloud metadata service"}, // Alibaba Cloud
}

// Policy says which destinations the operator may connect to. It refuses the
// built-in ranges (loopback, link-local, unspecified, multicast and cloud
// metadata addresses) and the administrator's deny ranges, except where the
// administrator's allow ranges open them. A nil *Policy allows every
// destination; the command line uses it, since it runs on the user's own
// machine and acts for nobody else.
type Policy struct {
	allow, deny []netip.Prefix
}

// New returns the policy that refuses the built-in ranges except where allow
// opens them, and also refuses deny. Where an address is in both an allow and
// a deny range, the longer prefix decides, and deny wins a tie.
func New(allow, deny []netip.Prefix) *Policy {
	return &Policy{allow: normalize(allow), deny: normalize(deny)}
}

// normalize masks each prefix, so errors show the range that matched, and
// turns IPv4-mapped IPv6 prefixes into IPv4 ones, since Check compares
// addresses after unmapping them.
func normalize(prefixes []netip.Prefix) []netip.Prefix {
	out := make([]netip.Prefix, 0, len(prefixes))
	for _, p := range prefixes {
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		out = append(out, p.Masked())
	}
	return out
}

// ParseCIDRs parses a comma-separated list of CIDRs, such as the value of
// --egress-allow-cidrs. Spaces around entries are allowed, and an empty string
// gives nil. A bare IP address is taken as a /32 or /128, since an
// administrator opening one host should not have to spell out its length.
// The error names the entry that does not parse.
func ParseCIDRs(s string) ([]netip.Prefix, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var out []netip.Prefix
	for _, entry := range strings.Split(s, ",") {
		entry = strings.TrimSpace(entry)
		if p, err := netip.ParsePrefix(entry); err == nil {
			out = append(out, p)
			continue
		}
		a, err := netip.ParseAddr(entry)
		if err != nil || a.Zone() != "" {
			return nil, fmt.Errorf("invalid CIDR %q: want an address range such as 10.0.0.0/8 or fd00::/8, or a single address", entry)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// Check returns nil when p allows a connection to addr, or a *RefusedError
// saying why not. IPv4-mapped IPv6 addresses are checked as the IPv4 address
// they carry, because that is where the connection goes.
func (p *Policy) Check(addr netip.Addr) error {
	if p == nil {
		return nil
	}
	addr = addr.Unmap().WithZone("")
	allowBits, denyBits := longestMatch(p.allow, addr), longestMatch(p.deny, addr)
	switch {
	case denyBits >= 0 && denyBits >= allowBits:
		return &RefusedError{Addr: addr, Reason: "closed by --egress-deny-cidrs " + longestPrefix(p.deny, addr).String()}
	case allowBits >= 0:
		return nil
	}
	for _, b := range builtin {
		if b.prefix.Contains(addr) {
			return &RefusedError{Addr: addr, Reason: b.reason}
		}
	}
	return nil
}

// longestMatch returns the length of the longest prefix containing addr, or
// -1 when none does.
func longestMatch(prefixes []netip.Prefix, addr netip.Addr) int {
	if p := longestPrefix(prefixes, addr); p.IsValid() {
		return p.Bits()
	}
	return -1
}

// longestPrefix returns the longest prefix containing addr, or the zero
// Prefix when none does.
func longestPrefix(prefixes []netip.Prefix, addr netip.Addr) netip.Prefix {
	var best netip.Prefix
	for _, p := range prefixes {
		if p.Contains(addr) && (!best.IsValid() || p.Bits() > best.Bits()) {
			best = p
		}
	}
	return best
}

// Control checks a connection about to be made, for use as net.Dialer.Control.
// The dialer has already resolved any name, so address is "ip:port". An
// address that does not parse is refused rather than let through unchecked.
func (p *Policy) Control(network, address string, _ syscall.RawConn) error {
	if p == nil {
		return nil
	}
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return fmt.Errorf("egress policy cannot check %s destination %q: %w", network, address, err)
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return fmt.Errorf("egress policy cannot check %s destination %q: %w", network, address, err)
	}
	return p.Check(addr)
}

// Dialer returns a dialer with the given timeout and keep-alive period that
// checks every connection against p. When p is nil it returns a plain dialer.
func (p *Policy) Dialer(timeout, keepAlive time.Duration) *net.Dialer {
	d := &net.Dialer{Timeout: timeout, KeepAlive: keepAlive}
	if p != nil {
		d.Control = p.Control
	}
	return d
}

// RefusedError says the egress policy does not allow a destination. Callers
// report it to the tenant as a configuration problem, not as a transient
// failure worth retrying.
type RefusedError struct {
	// Addr is the resolved address that was refused.
	Addr netip.Addr
	// Reason says why, e.g. "loopback" or "closed by --egress-deny-cidrs 10.0.0.0/8".
	Reason string
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("destination %s is not allowed by problemhook's egress policy (%s)", e.Addr, e.Reason)
}

// IsRefused reports whether err, or any error it wraps (such as the
// *net.OpError inside a *url.Error), is a *RefusedError.
func IsRefused(err error) bool {
	var refused *RefusedError
	return errors.As(err, &refused)
}
