package framing

// Decisions on an upgrade request, from the status line of its response.
const (
	decNone   int32 = iota
	decPass         // 101 Switching Protocols: the stream is no longer HTTP
	decResume       // any other final status: framing checks go on
)

// statusWatch reads the response the server writes to an upgrade request, up
// to the status code of its first final (or 101) response. Interim 1xx
// responses other than 101 are skipped to their empty line.
type statusWatch struct {
	line  [len("HTTP/1.1 101")]byte
	n     int
	skip  bool // in the head of an interim response
	match int  // bytes of "\r\n\r\n" matched while skipping
}

func (w *statusWatch) feed(b []byte) int32 {
	const end = "\r\n\r\n"
	for _, c := range b {
		if w.skip {
			switch {
			case c == end[w.match]:
				w.match++
			case c == '\r':
				w.match = 1
			default:
				w.match = 0
			}
			if w.match == len(end) {
				w.skip, w.match, w.n = false, 0, 0
			}
			continue
		}
		w.line[w.n] = c
		w.n++
		if w.n < len(w.line) {
			continue
		}
		l := w.line[:]
		if string(l[:len("HTTP/1.")]) != "HTTP/1." || l[8] != ' ' {
			return decResume
		}
		code := 0
		for _, d := range l[9:12] {
			if d < '0' || d > '9' {
				return decResume
			}
			code = code*10 + int(d-'0')
		}
		switch {
		case code == 101:
			return decPass
		case code >= 100 && code < 200:
			w.skip = true
		default:
			return decResume
		}
	}
	return decNone
}
