package mysql

// Statement kinds, the values of KeyStatement (and of codec.KeyMethod for
// COM_QUERY and COM_STMT_PREPARE).
const (
	StmtSelect      = "SELECT" // also TABLE, VALUES and WITH ... SELECT
	StmtInsert      = "INSERT"
	StmtUpdate      = "UPDATE"
	StmtDelete      = "DELETE"
	StmtReplace     = "REPLACE"
	StmtDDL         = "DDL"         // CREATE, ALTER, DROP, TRUNCATE, RENAME
	StmtTransaction = "TRANSACTION" // BEGIN, START TRANSACTION, COMMIT, ROLLBACK, SAVEPOINT, RELEASE, XA
	StmtSet         = "SET"
	StmtShow        = "SHOW"
	StmtUse         = "USE"
	StmtCall        = "CALL"
	StmtOther       = "OTHER"
	// StmtMulti is a COM_QUERY holding more than one statement, on a
	// connection that negotiated CLIENT_MULTI_STATEMENTS (unless the first
	// is DDL, whose routine bodies hold semicolons).
	StmtMulti = "MULTI"
)

// lexer walks SQL text the way the server's lexer skips what is not code:
// whitespace, /* */ comments, "-- " and # comments to the end of the line,
// and strings and quoted identifiers. The text of an executable comment
// (/*! and MariaDB's /*M!, with an optional version) is code.
type lexer struct {
	q    []byte
	p    int
	exec bool // inside an executable comment
}

func isSpace(c byte) bool { return c == ' ' || (c >= '\t' && c <= '\r') }

func isWord(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '$' || c >= 0x80
}

// skip moves past whitespace and comments.
func (l *lexer) skip() {
	q := l.q
	for l.p < len(q) {
		c, rest := q[l.p], len(q)-l.p
		switch {
		case isSpace(c):
			l.p++
		case c == '#', c == '-' && rest >= 3 && q[l.p+1] == '-' && q[l.p+2] <= ' ':
			for l.p < len(q) && q[l.p] != '\n' {
				l.p++
			}
		case c == '/' && rest >= 2 && q[l.p+1] == '*':
			switch {
			case rest >= 3 && q[l.p+2] == '!':
				l.p += 3
			case rest >= 4 && q[l.p+2] == 'M' && q[l.p+3] == '!':
				l.p += 4
			default:
				l.p += 2
				for l.p < len(q) && !(q[l.p] == '*' && l.p+1 < len(q) && q[l.p+1] == '/') {
					l.p++
				}
				l.p = min(l.p+2, len(q))
				continue
			}
			l.exec = true
			for l.p < len(q) && q[l.p] >= '0' && q[l.p] <= '9' {
				l.p++
			}
		case c == '*' && l.exec && rest >= 2 && q[l.p+1] == '/':
			l.p += 2
			l.exec = false
		default:
			return
		}
	}
}

// word reads the word at the current position, upper-cased into buf; it
// returns "" when the current byte does not start a word or the word is
// longer than buf.
func (l *lexer) word(buf *[12]byte) []byte {
	n := 0
	for l.p < len(l.q) && isWord(l.q[l.p]) {
		c := l.q[l.p]
		if c >= 'a' && c <= 'z' {
			c -= 'a' - 'A'
		}
		if n < len(buf) {
			buf[n] = c
		}
		n++
		l.p++
	}
	if n > len(buf) {
		return nil
	}
	return buf[:n]
}

// step moves past one token that is not a word: a string or quoted
// identifier, or one byte.
func (l *lexer) step() {
	quote := l.q[l.p]
	l.p++
	if quote != '\'' && quote != '"' && quote != '`' {
		return
	}
	for l.p < len(l.q) {
		c := l.q[l.p]
		l.p++
		switch {
		case c == quote:
			return
		case c == '\\' && quote != '`':
			l.p++
		}
	}
	l.p = min(l.p, len(l.q))
}

// classify returns the statement kind of the SQL text q. With multi it
// looks past the first statement for another.
func classify(q []byte, multi bool) string {
	l := lexer{q: q}
	var buf [12]byte
	for l.skip(); l.p < len(q) && q[l.p] == '('; l.skip() {
		l.p++
	}
	kind := StmtOther
	switch string(l.word(&buf)) {
	case "SELECT", "TABLE", "VALUES":
		kind = StmtSelect
	case "WITH":
		kind = l.withMain()
	case "INSERT":
		kind = StmtInsert
	case "UPDATE":
		kind = StmtUpdate
	case "DELETE":
		kind = StmtDelete
	case "REPLACE":
		kind = StmtReplace
	case "CREATE", "ALTER", "DROP", "TRUNCATE", "RENAME":
		kind = StmtDDL
	case "BEGIN":
		// BEGIN [WORK], but not MariaDB's compound BEGIN NOT ATOMIC ... END.
		if l.skip(); string(l.word(&buf)) != "NOT" {
			kind = StmtTransaction
		}
	case "START":
		if l.skip(); string(l.word(&buf)) == "TRANSACTION" {
			kind = StmtTransaction
		}
	case "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE", "XA":
		kind = StmtTransaction
	case "SET":
		kind = StmtSet
	case "SHOW":
		kind = StmtShow
	case "USE":
		kind = StmtUse
	case "CALL":
		kind = StmtCall
	}
	if multi && kind != StmtDDL && l.another() {
		return StmtMulti
	}
	return kind
}

// withMain finds the statement a WITH clause introduces: the first of
// SELECT, INSERT, UPDATE, DELETE, REPLACE, TABLE, VALUES outside the
// parentheses of the common table expressions.
func (l *lexer) withMain() string {
	var buf [12]byte
	depth := 0
	for l.skip(); l.p < len(l.q); l.skip() {
		switch c := l.q[l.p]; {
		case isWord(c):
			w := l.word(&buf)
			if depth > 0 {
				continue
			}
			switch string(w) {
			case "SELECT", "TABLE", "VALUES":
				return StmtSelect
			case "INSERT":
				return StmtInsert
			case "UPDATE":
				return StmtUpdate
			case "DELETE":
				return StmtDelete
			case "REPLACE":
				return StmtReplace
			}
		case c == '(':
			depth++
			l.p++
		case c == ')':
			depth--
			l.p++
		default:
			l.step()
		}
	}
	return StmtOther
}

// another reports whether a statement follows the current one: a ';'
// outside strings and comments followed by more than whitespace, comments
// and semicolons.
func (l *lexer) another() bool {
	for l.skip(); l.p < len(l.q); l.skip() {
		if l.q[l.p] != ';' {
			l.step()
			continue
		}
		for l.p < len(l.q) && l.q[l.p] == ';' {
			l.p++
			l.skip()
		}
		return l.p < len(l.q)
	}
	return false
}

// useDatabase returns the database of a USE statement: a plain or
// backquoted identifier followed by nothing but whitespace, comments and
// semicolons.
func useDatabase(q []byte) (string, bool) {
	l := lexer{q: q}
	var buf [12]byte
	if l.skip(); string(l.word(&buf)) != "USE" {
		return "", false
	}
	l.skip()
	var name []byte
	switch {
	case l.p < len(q) && q[l.p] == '`':
		for l.p++; ; l.p++ {
			if l.p >= len(q) {
				return "", false
			}
			if q[l.p] == '`' {
				if l.p+1 < len(q) && q[l.p+1] == '`' {
					l.p++
				} else {
					l.p++
					break
				}
			}
			name = append(name, q[l.p])
		}
	default:
		start := l.p
		for l.p < len(q) && isWord(q[l.p]) {
			l.p++
		}
		name = q[start:l.p]
	}
	for l.skip(); l.p < len(q) && q[l.p] == ';'; l.skip() {
		l.p++
	}
	if len(name) == 0 || l.p < len(q) {
		return "", false
	}
	return string(name), true
}
