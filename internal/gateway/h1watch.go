package gateway

import (
	"time"
)

// The client watch of the connection loop: a request that has waited
// clientWatchDelay (with its body read, see allowWatch) starts one read on the client
// connection, on the timer's goroutine. The read ends when the client closes
// (EOF or an error: the request's context is cancelled and the connection
// closed after it, as net/http's background read does), when the client sends
// more bytes (pipelining: kept for the next request; the watch ends), or when
// the request is over (disarmWatch sets a past read deadline and waits for
// it).

// armWatch starts the watch timer of a request; bodyRead tells whether the
// request body is read already (no body).
func (hc *h1Conn) armWatch(bodyRead bool) {
	hc.watchMu.Lock()
	hc.watchArmed = true
	hc.watchOK = bodyRead
	hc.watchDue = false
	hc.watchMu.Unlock()
	if hc.watchTimer == nil {
		hc.watchTimer = time.AfterFunc(clientWatchDelay, hc.watchFired)
		return
	}
	hc.watchTimer.Reset(clientWatchDelay)
}

// allowWatch is called by the goroutine serving the request once its body
// was read to its end and nothing else reads the connection or sets its
// deadlines until the response: a watch that came due before starts now.
func (hc *h1Conn) allowWatch() {
	hc.watchMu.Lock()
	if hc.watchOK || !hc.watchArmed {
		hc.watchMu.Unlock()
		return
	}
	hc.watchOK = true
	due := hc.watchDue
	hc.watchMu.Unlock()
	if due {
		go hc.watchFired()
	}
}

// watchFired runs the watching read, unless the request is over or its body
// is still being read.
func (hc *h1Conn) watchFired() {
	hc.watchMu.Lock()
	if !hc.watchArmed || hc.watching {
		hc.watchMu.Unlock()
		return
	}
	if !hc.watchOK {
		hc.watchDue = true
		hc.watchMu.Unlock()
		return
	}
	hc.watching = true
	hc.watchDone = make(chan struct{})
	done := hc.watchDone
	hc.rdl.clear() // the head's (disarmWatch sets a past one after this)
	hc.watchMu.Unlock()

	var b [1]byte
	n, err := hc.c.Read(b[:])
	hc.watchMu.Lock()
	switch {
	case n > 0:
		hc.held = append(hc.held, b[0])
	case err != nil && !isTimeout(err):
		hc.gone = true
		hc.cancel()
		if hc.backend != nil {
			hc.backend.abort()
		}
	}
	hc.watching = false
	hc.watchMu.Unlock()
	close(done)
}

// setBackend registers the backend connection of the exchange in
// progress, closed when the client is found gone (nil when the exchange is
// over), and reports whether the client is still there. A connection
// registered after the client was found gone is closed at once.
func (hc *h1Conn) setBackend(bc *backendConn) bool {
	hc.watchMu.Lock()
	defer hc.watchMu.Unlock()
	hc.backend = bc
	if hc.gone && bc != nil {
		bc.abort()
	}
	return !hc.gone
}

// disarmWatch ends the watch of the request that is over: the timer is
// stopped, a watching read is interrupted and waited for.
func (hc *h1Conn) disarmWatch() {
	hc.watchMu.Lock()
	hc.watchArmed = false
	watching, done := hc.watching, hc.watchDone
	hc.watchMu.Unlock()
	if hc.watchTimer != nil {
		hc.watchTimer.Stop()
	}
	if watching {
		_ = hc.rdl.set(aLongTimeAgo)
		<-done
		hc.rdl.clear()
	}
}

// aLongTimeAgo is a read deadline in the past: it interrupts a read at once.
var aLongTimeAgo = time.Unix(1, 0)
