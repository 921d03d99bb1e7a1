package dubbo

import "unicode/utf8"

// maxChunk is the number of UTF-16 units per string chunk, as Java's
// Hessian2Output writes them.
const maxChunk = 0x8000

// appendString appends s as a Hessian 2 string: lengths count UTF-16 units,
// characters beyond U+FFFF are written as two 3-byte surrogate halves, and
// invalid UTF-8 bytes become U+FFFD. Long strings are split into chunks
// that never separate the halves of a character.
func appendString(dst []byte, s string) []byte {
	if s == "" {
		return append(dst, 0)
	}
	for len(s) > 0 {
		units, n := 0, 0
		for n < len(s) {
			u, size := 1, 1
			if c := s[n]; c >= utf8.RuneSelf {
				var r rune
				r, size = utf8.DecodeRuneInString(s[n:])
				if r > 0xffff {
					u = 2
				}
			}
			if units+u > maxChunk {
				break
			}
			units, n = units+u, n+size
		}
		switch final := n == len(s); {
		case !final:
			dst = append(dst, 'R', byte(units>>8), byte(units))
		case units <= 0x1f:
			dst = append(dst, byte(units))
		case units <= 0x3ff:
			dst = append(dst, 0x30+byte(units>>8), byte(units))
		default:
			dst = append(dst, 'S', byte(units>>8), byte(units))
		}
		dst = appendModifiedUTF8(dst, s[:n])
		s = s[n:]
	}
	return dst
}

// appendModifiedUTF8 appends s with characters beyond U+FFFF split into
// surrogate halves of three bytes each, as Java writes them.
func appendModifiedUTF8(dst []byte, s string) []byte {
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			dst = append(dst, c)
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		if r <= 0xffff {
			dst = utf8.AppendRune(dst, r) // RuneError for invalid bytes
			continue
		}
		r -= 0x10000
		dst = appendHalf(dst, 0xd800+r>>10)
		dst = appendHalf(dst, 0xdc00+r&0x3ff)
	}
	return dst
}

// appendHalf appends a surrogate half in its 3-byte form.
func appendHalf(dst []byte, h rune) []byte {
	return append(dst, byte(0xe0|h>>12), byte(0x80|(h>>6)&0x3f), byte(0x80|h&0x3f))
}
