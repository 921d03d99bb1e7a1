package dubbo

// countArgs returns the number of arguments a Dubbo parameter-type
// descriptor such as "Ljava/lang/String;I[J" announces.
//
// Java Dubbo (ReflectUtils.desc2classArray) and dubbo-go both count the
// matches of one regular expression found left to right, skipping what does
// not match:
//
//	ident = [_$a-zA-Z][_$a-zA-Z0-9]*
//	class = L ident (/ ident)* ;
//	desc  = [VZBCDFIJS] | class | \[+ ([VZBCDFIJS] | class)
//
// countArgs reproduces that count exactly, without a regexp or allocation,
// so that a proxy reads as many argument values as the provider will.
func countArgs(desc string) int {
	n := 0
	for i := 0; i < len(desc); {
		if l := descAt(desc, i); l > 0 {
			n++
			i += l
		} else {
			i++
		}
	}
	return n
}

// descAt returns the length of the descriptor match at i, or 0.
func descAt(d string, i int) int {
	switch c := d[i]; {
	case isPrimitive(c):
		return 1
	case c == 'L':
		return classAt(d, i)
	case c == '[':
		j := i
		for j < len(d) && d[j] == '[' {
			j++
		}
		if j == len(d) {
			return 0
		}
		if isPrimitive(d[j]) {
			return j + 1 - i
		}
		if d[j] == 'L' {
			if l := classAt(d, j); l > 0 {
				return j - i + l
			}
		}
	}
	return 0
}

func isPrimitive(c byte) bool {
	switch c {
	case 'V', 'Z', 'B', 'C', 'D', 'F', 'I', 'J', 'S':
		return true
	}
	return false
}

// classAt returns the length of "L ident (/ ident)* ;" at i, or 0.
func classAt(d string, i int) int {
	j := i + 1
	for {
		if j == len(d) || !isIdentStart(d[j]) {
			return 0
		}
		for j++; j < len(d) && (isIdentStart(d[j]) || d[j] >= '0' && d[j] <= '9'); j++ {
		}
		if j == len(d) {
			return 0
		}
		switch d[j] {
		case ';':
			return j + 1 - i
		case '/':
			j++
		default:
			return 0
		}
	}
}

func isIdentStart(c byte) bool {
	return c == '_' || c == '$' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}
