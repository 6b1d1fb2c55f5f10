//go:build !linux

package gateway

import (
	"net"

	"github.com/go-logr/logr"

	"github.com/fledge-dev/fledge/internal/gateway/framing"
)

// newEventServer returns nil: event loops are built on Linux's epoll only,
// elsewhere the connection loop (h1Server) serves every listener.
func (g *Gateway) newEventServer(*h1Server, framing.Options, net.Listener, logr.Logger) server {
	return nil
}
