package gateway

import (
	"fmt"
	"net"
)

// backendIO is what a backend connection's buffers write to and read from:
// c, except that a request head written while deferring is kept (pending)
// and sent by the read that waits for its response, with prober.writeRead
// where the platform allows. That spares the read that would find nothing
// yet (the backend cannot answer before the request is sent), about one
// system call per request.
type backendIO struct {
	c         net.Conn
	probe     *prober
	deferring bool
	pending   []byte
}

func (b *backendIO) Write(p []byte) (int, error) {
	if b.deferring {
		b.pending = append(b.pending, p...)
		return len(p), nil
	}
	return b.c.Write(p)
}

func (b *backendIO) Read(p []byte) (int, error) {
	if len(b.pending) == 0 {
		return b.c.Read(p)
	}
	out := b.pending
	b.pending = b.pending[:0]
	if cap(out) > 64<<10 {
		b.pending = nil // an unusually large head: not kept for the connection's life
	}
	if b.probe != nil {
		n, unsent, err := b.probe.writeRead(out, p)
		if unsent == nil {
			return n, err
		}
		out = unsent
	}
	if _, err := b.c.Write(out); err != nil {
		return 0, fmt.Errorf("write request: %w", err)
	}
	return b.c.Read(p)
}
