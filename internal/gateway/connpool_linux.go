package gateway

import (
	"io"
	"net"
	"os"
	"syscall"
)

// prober checks an idle backend connection without blocking, and sends a
// request and waits for its response with one read less (writeRead). It
// allocates nothing per call: the raw connection and the callbacks are made
// once per connection (newProber), since the pool uses them for every
// request.
type prober struct {
	rc   syscall.RawConn
	peek func(fd uintptr) bool
	open bool
	buf  [1]byte

	// The state of one writeRead, for exchange.
	exchange func(fd uintptr) bool
	out, in  []byte
	wrote    bool
	n        int
	err      error
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
	p.exchange = p.step
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

// writeRead writes out and then reads into in, as c.Write and c.Read would
// (c's read deadline holds), without the read that finds nothing: the
// runtime's poller is armed for reading before out is written, so the
// response, which cannot come before out is sent, is waited for and then
// read once. It returns what c.Read would, or, when out could not be
// written at once (a full send buffer), the rest of it, unread: the caller
// then writes and reads as usual.
func (p *prober) writeRead(out, in []byte) (n int, unsent []byte, err error) {
	p.out, p.in, p.wrote, p.n, p.err = out, in, false, 0, nil
	defer func() { p.out, p.in = nil, nil }()
	if err := p.rc.Read(p.exchange); err != nil {
		return 0, nil, err // a deadline or a closed connection
	}
	if !p.wrote && p.err == nil {
		return 0, p.out, nil
	}
	return p.n, nil, p.err
}

// step is called by the runtime with the descriptor: first to write (it
// then returns false to wait for readiness), then, each time the poller says
// the descriptor is readable, to read.
func (p *prober) step(fd uintptr) bool {
	if !p.wrote {
		for len(p.out) > 0 {
			n, err := syscall.Write(int(fd), p.out)
			switch {
			case err == syscall.EINTR:
				continue
			case err == syscall.EAGAIN:
				return true // the caller writes the rest
			case err != nil:
				p.err = os.NewSyscallError("write", err)
				return true
			}
			p.out = p.out[n:]
		}
		p.wrote = true
		return false
	}
	for {
		n, err := syscall.Read(int(fd), p.in)
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			return false // woken without data: wait again
		case err != nil:
			p.err = os.NewSyscallError("read", err)
		case n == 0 && len(p.in) > 0:
			p.err = io.EOF
		}
		p.n = max(n, 0)
		return true
	}
}
