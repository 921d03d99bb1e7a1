package declarative

import (
	"encoding/json"
	"errors"
	"strconv"
)

// A small JSON reader for metadata paths: it checks a document's syntax
// and finds the value at a dotted path ("params.user", "items.0.id")
// without allocating; only a string value holding escapes is decoded
// into a new string.

var (
	errJSON      = errors.New("json: syntax error")
	errJSONDepth = errors.New("json: nested too deeply")
)

const maxJSONDepth = 100

func jsonWS(b []byte, p int) int {
	for p < len(b) && (b[p] == ' ' || b[p] == '\t' || b[p] == '\n' || b[p] == '\r') {
		p++
	}
	return p
}

// jsonCheck checks that b is one JSON value (or only whitespace).
func jsonCheck(b []byte) error {
	p := jsonWS(b, 0)
	if p == len(b) {
		return nil
	}
	p, err := jsonSkip(b, p, 0)
	if err != nil {
		return err
	}
	if jsonWS(b, p) != len(b) {
		return errJSON
	}
	return nil
}

// jsonSkip returns the end of the value at b[p:].
func jsonSkip(b []byte, p, depth int) (int, error) {
	if p >= len(b) {
		return p, errJSON
	}
	switch c := b[p]; {
	case c == '"':
		end, _, err := jsonString(b, p)
		return end, err
	case c == '{' || c == '[':
		if depth >= maxJSONDepth {
			return p, errJSONDepth
		}
		closer := byte('}')
		if c == '[' {
			closer = ']'
		}
		p = jsonWS(b, p+1)
		if p < len(b) && b[p] == closer {
			return p + 1, nil
		}
		for {
			var err error
			if c == '{' {
				if p >= len(b) || b[p] != '"' {
					return p, errJSON
				}
				if p, _, err = jsonString(b, p); err != nil {
					return p, err
				}
				if p = jsonWS(b, p); p >= len(b) || b[p] != ':' {
					return p, errJSON
				}
				p = jsonWS(b, p+1)
			}
			if p, err = jsonSkip(b, p, depth+1); err != nil {
				return p, err
			}
			if p = jsonWS(b, p); p >= len(b) {
				return p, errJSON
			}
			if b[p] == closer {
				return p + 1, nil
			}
			if b[p] != ',' {
				return p, errJSON
			}
			p = jsonWS(b, p+1)
		}
	case c == '-' || c >= '0' && c <= '9':
		return jsonNumber(b, p)
	}
	for _, lit := range [...]string{"true", "false", "null"} {
		if len(b)-p >= len(lit) && string(b[p:p+len(lit)]) == lit {
			return p + len(lit), nil
		}
	}
	return p, errJSON
}

// jsonString returns the end of the string at b[p:] and whether it holds
// escapes.
func jsonString(b []byte, p int) (int, bool, error) {
	esc := false
	for p++; p < len(b); p++ {
		switch c := b[p]; {
		case c == '"':
			return p + 1, esc, nil
		case c < 0x20:
			return p, esc, errJSON
		case c == '\\':
			esc = true
			if p++; p >= len(b) {
				return p, esc, errJSON
			}
			switch b[p] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if len(b)-p < 5 {
					return p, esc, errJSON
				}
				for _, h := range b[p+1 : p+5] {
					if !(h >= '0' && h <= '9' || h >= 'a' && h <= 'f' || h >= 'A' && h <= 'F') {
						return p, esc, errJSON
					}
				}
				p += 4
			default:
				return p, esc, errJSON
			}
		}
	}
	return p, esc, errJSON
}

func jsonDigits(b []byte, p int) int {
	for p < len(b) && b[p] >= '0' && b[p] <= '9' {
		p++
	}
	return p
}

func jsonNumber(b []byte, p int) (int, error) {
	if b[p] == '-' {
		p++
	}
	switch {
	case p < len(b) && b[p] == '0':
		p++
	case p < len(b) && b[p] >= '1' && b[p] <= '9':
		p = jsonDigits(b, p)
	default:
		return p, errJSON
	}
	if p < len(b) && b[p] == '.' {
		q := jsonDigits(b, p+1)
		if q == p+1 {
			return q, errJSON
		}
		p = q
	}
	if p < len(b) && (b[p] == 'e' || b[p] == 'E') {
		p++
		if p < len(b) && (b[p] == '+' || b[p] == '-') {
			p++
		}
		q := jsonDigits(b, p)
		if q == p {
			return q, errJSON
		}
		p = q
	}
	return p, nil
}

// jsonPath returns the value at path in the checked document b: a
// string's contents, or the JSON text of any other value. A key that
// occurs twice takes its last value, as encoding/json does.
func jsonPath(b []byte, path []string) (string, bool, error) {
	p := jsonWS(b, 0)
	if p == len(b) {
		return "", false, nil
	}
	for _, seg := range path {
		at := -1
		switch b[p] {
		case '{':
			for q := jsonWS(b, p+1); b[q] == '"'; {
				end, esc, _ := jsonString(b, q)
				v := jsonWS(b, jsonWS(b, end)+1)
				if jsonKey(b[q:end], esc) == seg {
					at = v
				}
				vend, err := jsonSkip(b, v, 0)
				if err != nil {
					return "", false, err
				}
				if q = jsonWS(b, vend); b[q] == ',' {
					q = jsonWS(b, q+1)
				}
			}
		case '[':
			idx, err := strconv.Atoi(seg)
			if err != nil || idx < 0 {
				return "", false, nil
			}
			for i, q := 0, jsonWS(b, p+1); b[q] != ']'; i++ {
				if i == idx {
					at = q
					break
				}
				vend, err := jsonSkip(b, q, 0)
				if err != nil {
					return "", false, err
				}
				if q = jsonWS(b, vend); b[q] == ',' {
					q = jsonWS(b, q+1)
				}
			}
		}
		if at < 0 {
			return "", false, nil
		}
		p = at
	}
	end, err := jsonSkip(b, p, 0)
	if err != nil {
		return "", false, err
	}
	if b[p] != '"' {
		return str(b[p:end]), true, nil
	}
	_, esc, _ := jsonString(b, p)
	return jsonKey(b[p:end], esc), true, nil
}

// jsonKey returns the contents of the string literal s.
func jsonKey(s []byte, esc bool) string {
	if !esc {
		return str(s[1 : len(s)-1])
	}
	var out string
	if json.Unmarshal(s, &out) != nil {
		return ""
	}
	return out
}
