package main

import (
	"fmt"
	"net"
	"net/url"
)

// listenAddr checks the listen address of flag: host:port with a port that
// net.Listen takes; "0" (and "", when disableOK) turn the listener off.
func listenAddr(flag, addr string, disableOK bool) error {
	if disableOK && (addr == "0" || addr == "") {
		return nil
	}
	_, port, err := net.SplitHostPort(addr)
	if err == nil {
		_, err = net.LookupPort("tcp", port)
	}
	if err != nil {
		return fmt.Errorf("--%s %q: want host:port, such as \":8080\" or \"127.0.0.1:8080\": %v", flag, addr, err)
	}
	return nil
}

// serverURL checks the URL of a server fledge calls: http or https, a host,
// and no credentials (those come from a file or a Secret, never from a flag
// that is logged and shown in `ps`).
func serverURL(flag, s string) error {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return fmt.Errorf("--%s: %v", flag, err)
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("--%s %q: want an http:// or https:// URL", flag, s)
	case u.Host == "":
		return fmt.Errorf("--%s %q: no host", flag, s)
	case u.User != nil:
		return fmt.Errorf("--%s: credentials in the URL are refused; give them in a file or Secret", flag)
	}
	return nil
}
