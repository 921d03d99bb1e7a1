package redis

import (
	"bytes"
)

// Inline commands are what redis-cli's --no-raw telnet users and
// health-check scripts type: a line of words ending in LF (CRLF usually),
// split as Redis' sdssplitargs splits them, with "double quoted" words
// taking \n \r \t \b \a \\ \" \xHH escapes and 'single quoted' ones \'.

// splitInline returns the length of the inline command line at the start
// of buf, 0 while its LF has not come.
func (c *Codec) splitInline(buf []byte) (int, error) {
	lim := min(MaxInline, c.o.MaxFrame)
	s := &c.sc
	seen := buf[s.pos:min(len(buf), lim)]
	i := bytes.IndexByte(seen, '\n')
	if i >= 0 {
		seen = seen[:i]
	}
	// Control bytes are refused as they come: a TLS or binary client
	// may never send a line feed.
	for _, b := range seen {
		if b < 0x20 && b != '\t' && b != '\v' && b != '\f' && b != '\r' {
			return 0, malformed("control byte 0x%02x in an inline request", b)
		}
	}
	if i < 0 {
		if len(buf) >= lim {
			return 0, malformed("too big inline request")
		}
		s.pos = len(buf)
		return 0, nil
	}
	n := s.pos + i + 1
	if err := c.checkInline(inlineLine(buf[:n])); err != nil {
		return 0, err
	}
	return n, nil
}

// inlineLine strips the LF and an optional CR ending a line.
func inlineLine(b []byte) []byte {
	b = b[:len(b)-1]
	if len(b) > 0 && b[len(b)-1] == '\r' {
		b = b[:len(b)-1]
	}
	return b
}

// checkInline refuses unbalanced quotes, more words than MaxElements, and
// the cross-protocol attacks Redis closes on (a first word of POST or
// Host:). splitInline has refused control bytes, which no terminal sends
// but TLS and binary protocols do.
func (c *Codec) checkInline(l []byte) error {
	words := 0
	for p := 0; ; words++ {
		start, end, next, _, err := word(l, p)
		if err != nil {
			return err
		}
		if start < 0 {
			break
		}
		if words == 0 {
			w := l[start:end]
			if bytes.EqualFold(w, []byte("POST")) || bytes.EqualFold(w, []byte("Host:")) {
				return malformed("POST or Host: as a command (a cross-protocol attack)")
			}
		}
		if words >= c.o.MaxElements {
			return malformed("invalid multibulk length")
		}
		p = next
	}
	return nil
}

// isSpace is C's isspace, which sdssplitargs skips between words.
func isSpace(b byte) bool {
	return b == ' ' || b == '\t' || b == '\n' || b == '\r' || b == '\v' || b == '\f'
}

// word finds the word at or after p in the inline line l: its raw bytes
// l[start:end] (quotes and escapes included when quoted), and where the
// next search starts. start is -1 when no word is left.
func word(l []byte, p int) (start, end, next int, quoted bool, err error) {
	for p < len(l) && isSpace(l[p]) {
		p++
	}
	if p == len(l) {
		return -1, p, p, false, nil
	}
	start = p
	var inq, insq bool
	for ; p < len(l); p++ {
		b := l[p]
		switch {
		case inq:
			if b == '\\' && p+1 < len(l) {
				p++ // \xHH needs no care here: hex digits are never quotes
			} else if b == '"' {
				if p+1 < len(l) && !isSpace(l[p+1]) {
					return 0, 0, 0, false, malformed("unbalanced quotes in request")
				}
				return start, p + 1, p + 1, true, nil
			}
		case insq:
			if b == '\\' && p+1 < len(l) && l[p+1] == '\'' {
				p++
			} else if b == '\'' {
				if p+1 < len(l) && !isSpace(l[p+1]) {
					return 0, 0, 0, false, malformed("unbalanced quotes in request")
				}
				return start, p + 1, p + 1, true, nil
			}
		case b == ' ' || b == '\n' || b == '\r' || b == '\t':
			return start, p, p, quoted, nil
		case b == '"':
			inq, quoted = true, true
		case b == '\'':
			insq, quoted = true, true
		}
	}
	if inq || insq {
		return 0, 0, 0, false, malformed("unbalanced quotes in request")
	}
	return start, p, p, quoted, nil
}

// unquote returns the value of a quoted word, as sdssplitargs builds it.
// It allocates: quoted words are rare (typed by hand).
func unquote(w []byte) []byte {
	out := make([]byte, 0, len(w))
	var inq, insq bool
	for p := 0; p < len(w); p++ {
		b := w[p]
		switch {
		case inq:
			switch {
			case b == '\\' && p+3 < len(w) && w[p+1] == 'x' && isHex(w[p+2]) && isHex(w[p+3]):
				out = append(out, unhex(w[p+2])<<4|unhex(w[p+3]))
				p += 3
			case b == '\\' && p+1 < len(w):
				p++
				out = append(out, unescape(w[p]))
			case b == '"':
				inq = false
			default:
				out = append(out, b)
			}
		case insq:
			switch {
			case b == '\\' && p+1 < len(w) && w[p+1] == '\'':
				p++
				out = append(out, '\'')
			case b == '\'':
				insq = false
			default:
				out = append(out, b)
			}
		case b == '"':
			inq = true
		case b == '\'':
			insq = true
		default:
			out = append(out, b)
		}
	}
	return out
}

func unescape(b byte) byte {
	switch b {
	case 'n':
		return '\n'
	case 'r':
		return '\r'
	case 't':
		return '\t'
	case 'b':
		return '\b'
	case 'a':
		return '\a'
	}
	return b
}

func isHex(b byte) bool {
	return (b >= '0' && b <= '9') || (b >= 'a' && b <= 'f') || (b >= 'A' && b <= 'F')
}

func unhex(b byte) byte {
	switch {
	case b >= 'a':
		return b - 'a' + 10
	case b >= 'A':
		return b - 'A' + 10
	}
	return b - '0'
}
