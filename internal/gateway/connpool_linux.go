package gateway

import (
	"net"
	"syscall"
)

// prober checks an idle backend connection without blocking and without
// allocating: the raw connection and the callback are made once per
// connection (newProber), since the pool checks every connection it reuses.
type prober struct {
	rc   syscall.RawConn
	peek func(fd uintptr) bool
	open bool
	buf  [1]byte
}

func newProber(c net.Conn) *prober {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	p := &prober{rc: rc}
	p.peek = func(fd uintptr) bool {
		_, _, rerr := syscall.Recvfrom(int(fd), p.buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		p.open = rerr == syscall.EAGAIN || rerr == syscall.EWOULDBLOCK
		return true // never wait for readiness
	}
	return p
}

// alive reports whether the connection is still open and silent: a
// non-blocking peek finds nothing to read (an end of file means the backend
// closed it; unsolicited data makes it unusable too). Without a prober it
// cannot tell and says yes.
func (p *prober) alive() bool {
	if p == nil {
		return true
	}
	p.open = false
	return p.rc.Read(p.peek) == nil && p.open
}
