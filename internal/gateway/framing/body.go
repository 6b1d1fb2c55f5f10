package framing

import "errors"

// ErrMalformedBody is the reason a chunked request body was found malformed.
// Read then fails with a *net.OpError (Op "read") wrapping it, so that
// errors.Is(err, ErrMalformedBody) tells it apart from a network failure.
var ErrMalformedBody = errors.New("framing: malformed chunked request body")

const (
	maxChunkLine   = 4096 // chunk-size line, CRLF included (net/http allows as much)
	maxTrailer     = 4096 // all trailer lines together (net/http allows as much)
	maxChunkDigits = 16   // hex digits of a chunk size, as net/http
)

// States of the chunked-body scanner.
const (
	csSize         uint8 = iota // in the hex digits of a chunk size
	csSizeOWS                   // whitespace after the chunk size
	csExt                       // in a chunk extension
	csSizeLF                    // CR seen at the end of the size line
	csData                      // in chunk data
	csDataCR                    // expecting CR after chunk data
	csDataLF                    // expecting LF after chunk data
	csTrailer                   // at the start of a trailer line (or of the final empty line)
	csTrailerName               // in a trailer field name
	csTrailerValue              // in a trailer field value
	csTrailerLF                 // CR seen at the end of a trailer line
	csEndLF                     // CR seen at the start of the final empty line
)

// ChunkedBody follows a chunked message body (RFC 9112 §7.1) across reads,
// requests' or responses' alike: the gateway uses it to find where a
// backend's chunked response ends. The zero value expects the first
// chunk-size line.
type ChunkedBody struct{ s chunkState }

// Feed scans b. It returns how many bytes of b belong to the body (all of b
// unless the body ends or is malformed in it), whether the body ended, and
// ErrMalformedBody at the first byte that cannot belong to a well-formed body.
func (c *ChunkedBody) Feed(b []byte) (int, bool, error) { return c.s.feed(b) }

// chunkState follows a chunked body (RFC 9112 §7.1) across reads. The zero
// value expects the first chunk-size line.
type chunkState struct {
	st      uint8
	digits  int
	line    int    // bytes of the current size line
	trailer int    // bytes of the trailer section
	n       uint64 // chunk size, then chunk data left
}

// feed scans b. It returns how many bytes belong to the body (all of b unless
// the body ends or is malformed in it), whether the body ended, and
// ErrMalformedBody at the first byte that cannot belong to a well-formed body.
func (s *chunkState) feed(b []byte) (int, bool, error) {
	i := 0
	for i < len(b) {
		if s.st == csData {
			take := len(b) - i
			if uint64(take) > s.n {
				take = int(s.n)
			}
			i += take
			s.n -= uint64(take)
			if s.n == 0 {
				s.st = csDataCR
			}
			continue
		}
		c := b[i]
		i++
		if s.st <= csSizeLF {
			s.line++
			if s.line > maxChunkLine {
				return i - 1, false, ErrMalformedBody
			}
		} else if s.st >= csTrailer {
			s.trailer++
			if s.trailer > maxTrailer {
				return i - 1, false, ErrMalformedBody
			}
		}
		ok := true
		switch s.st {
		case csSize:
			switch v, hex := unhex(c); {
			case hex && s.digits < maxChunkDigits:
				s.digits++
				s.n = s.n<<4 | uint64(v)
			case s.digits == 0:
				ok = false
			case c == ';':
				s.st = csExt
			case c == ' ' || c == '\t':
				s.st = csSizeOWS
			case c == '\r':
				s.st = csSizeLF
			default:
				ok = false
			}
		case csSizeOWS:
			switch c {
			case ' ', '\t':
			case '\r':
				s.st = csSizeLF
			default:
				ok = false
			}
		case csExt:
			switch {
			case c == '\r':
				s.st = csSizeLF
			case c == '\t' || (c >= ' ' && c != 0x7f):
			default:
				ok = false
			}
		case csSizeLF:
			ok = c == '\n'
			s.line, s.digits = 0, 0
			if s.n == 0 {
				s.st = csTrailer
			} else {
				s.st = csData
			}
		case csDataCR:
			ok = c == '\r'
			s.st = csDataLF
		case csDataLF:
			ok = c == '\n'
			s.st = csSize
		case csTrailer:
			switch {
			case c == '\r':
				s.st = csEndLF
			case tchar[c]:
				s.st = csTrailerName
			default: // obs-fold, empty name, bare LF, ...
				ok = false
			}
		case csTrailerName:
			switch {
			case c == ':':
				s.st = csTrailerValue
			case !tchar[c]:
				ok = false
			}
		case csTrailerValue:
			switch {
			case c == '\r':
				s.st = csTrailerLF
			case c == '\t' || (c >= ' ' && c != 0x7f):
			default:
				ok = false
			}
		case csTrailerLF:
			ok = c == '\n'
			s.st = csTrailer
		case csEndLF:
			if c != '\n' {
				return i - 1, false, ErrMalformedBody
			}
			*s = chunkState{}
			return i, true, nil
		}
		if !ok {
			return i - 1, false, ErrMalformedBody
		}
	}
	return i, false, nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
