package redis

import "github.com/metaproxy/metaproxy/codec"

// keyProc names how a command's movable keys are found.
type keyProc uint8

const (
	procNone      keyProc = iota
	procKeynum            // a numkeys argument at nk, then that many keys (EVAL, ZUNIONSTORE...)
	procStreams           // the keys after STREAMS, half of what follows (XREAD, XREADGROUP)
	procMigrate           // argument 3, or what follows KEYS when it is empty
	procSort              // also the key after the last STORE
	procGeoradius         // also the key after the last STORE or STOREDIST
	procSub               // argument 2 for the subcommands that take a key (OBJECT ENCODING...)
)

// command is a row of the command table.
type command struct {
	name              string // upper case: the method every spelling decodes to
	first, last, step int8
	proc              keyProc
	nk                int8
}

// keyRange is a run of key positions: first to last, every step.
type keyRange struct{ first, last, step int }

// maxRanges is the most runs one command's keys take.
const maxRanges = 3

// maxName is the longest command name looked up.
const maxName = 24

var index = func() map[string]*command {
	m := make(map[string]*command, len(commands))
	for i := range commands {
		m[commands[i].name] = &commands[i]
	}
	return m
}()

// lookup finds a command by name in any case, without allocating.
func lookup(name []byte) *command {
	if len(name) == 0 || len(name) > maxName {
		return nil
	}
	var up [maxName]byte
	for i, c := range name {
		if c >= 'a' && c <= 'z' {
			c -= 'a' - 'A'
		}
		up[i] = c
	}
	return index[string(up[:len(name)])]
}

// equalFold reports whether b is upper in any case; upper is upper case.
func equalFold(b []byte, upper string) bool {
	if len(b) != len(upper) {
		return false
	}
	for i, c := range b {
		if c >= 'a' && c <= 'z' {
			c -= 'a' - 'A'
		}
		if c != upper[i] {
			return false
		}
	}
	return true
}

// keyedSubs are the subcommands of OBJECT, MEMORY, XINFO and XGROUP that
// take a key as argument 2.
var keyedSubs = map[string][]string{
	"OBJECT": {"ENCODING", "FREQ", "IDLETIME", "REFCOUNT"},
	"MEMORY": {"USAGE"},
	"XINFO":  {"STREAM", "GROUPS", "CONSUMERS"},
	"XGROUP": {"CREATE", "SETID", "DESTROY", "CREATECONSUMER", "DELCONSUMER"},
}

// resolve appends the runs of key positions of the request a to dst.
func (c *command) resolve(a *argIter, dst []keyRange) []keyRange {
	argc := a.argc
	if c.first > 0 && int(c.first) < argc {
		last := int(c.last)
		if last < 0 {
			last += argc
		}
		if last = min(last, argc-1); last >= int(c.first) {
			dst = append(dst, keyRange{int(c.first), last, int(c.step)})
		}
	}
	switch c.proc {
	case procKeynum:
		nk := int(c.nk)
		if n, ok := parseLen(a.bytes(nk)); ok && n > 0 && n <= int64(argc-nk-1) {
			dst = append(dst, keyRange{nk + 1, nk + int(n), 1})
		}
	case procStreams:
		dst = streamKeys(a, int(c.nk), dst)
	case procMigrate:
		dst = migrateKeys(a, dst)
	case procSort:
		// Redis' sortGetKeys: the key after the last STORE, past LIMIT's,
		// GET's and BY's arguments.
		store := -1
		for i := 2; i < argc; i++ {
			b := a.bytes(i)
			switch {
			case equalFold(b, "LIMIT"):
				i += 2
			case equalFold(b, "GET") || equalFold(b, "BY"):
				i++
			case equalFold(b, "STORE") && i+1 < argc:
				store = i + 1
			}
		}
		if store > 0 {
			dst = append(dst, keyRange{store, store, 1})
		}
	case procGeoradius:
		// The key specs: the key after the first STORE, then the one after
		// the first STOREDIST.
		for _, kw := range [...]string{"STORE", "STOREDIST"} {
			if i := keyword(a, kw, int(c.nk)); i > 0 {
				dst = append(dst, keyRange{i + 1, i + 1, 1})
			}
		}
	case procSub:
		if argc >= 3 {
			sub := a.bytes(1)
			for _, s := range keyedSubs[c.name] {
				if equalFold(sub, s) {
					dst = append(dst, keyRange{2, 2, 1})
					break
				}
			}
		}
	}
	return dst
}

// keyword returns the index of the first argument from `from` on that is
// kw, as a key spec's keyword search finds it (never the last argument,
// which could not be followed by a key); 0 if there is none.
func keyword(a *argIter, kw string, from int) int {
	for i := from; i < a.argc-1; i++ {
		if equalFold(a.bytes(i), kw) {
			return i
		}
	}
	return 0
}

// streamKeys finds XREAD's and XREADGROUP's keys as their key spec does:
// the first half of what follows the first STREAMS from argument from.
func streamKeys(a *argIter, from int, dst []keyRange) []keyRange {
	pos := keyword(a, "STREAMS", from)
	if num := (a.argc - pos - 1) / 2; pos > 0 && num > 0 {
		dst = append(dst, keyRange{pos + 1, pos + num, 1})
	}
	return dst
}

// migrateKeys finds MIGRATE's keys as Redis' migrateGetKeys does.
func migrateKeys(a *argIter, dst []keyRange) []keyRange {
	if a.argc < 4 {
		return dst
	}
	for i := 6; i < a.argc; i++ {
		b := a.bytes(i)
		switch {
		case equalFold(b, "KEYS"):
			if len(a.bytes(3)) > 0 {
				i = a.argc // KEYS needs an empty key argument
				break
			}
			if i+1 < a.argc {
				dst = append(dst, keyRange{i + 1, a.argc - 1, 1})
			}
			return dst
		case equalFold(b, "AUTH"):
			i++
		case equalFold(b, "AUTH2"):
			i += 2
		}
	}
	return append(dst, keyRange{3, 3, 1})
}

// Keys reports where the keys of the request m are, as argument indexes
// (0 is the command name): first to last inclusive, every step — MGET and
// DEL give 1, argc-1, 1; MSET 1, argc-1, 2; EVAL the numkeys keys after
// its numkeys. first is 0 for a command without keys, and for unknown
// commands. A command whose keys are not one run (ZUNIONSTORE's
// destination and sources, SORT ... STORE) gives its first run;
// KeyPositions lists every key.
func Keys(m *codec.Message) (first, last, step int) {
	a, ok := request(m)
	if !ok {
		return 0, 0, 0
	}
	cmd := lookup(a.bytes(0))
	if cmd == nil {
		return 0, 0, 0
	}
	var buf [maxRanges]keyRange
	if r := cmd.resolve(&a, buf[:0]); len(r) > 0 {
		return r[0].first, r[0].last, r[0].step
	}
	return 0, 0, 0
}

// KeyPositions appends the argument index of every key of the request m
// to dst, in order, as COMMAND GETKEYS lists them.
func KeyPositions(dst []int, m *codec.Message) []int {
	a, ok := request(m)
	if !ok {
		return dst
	}
	cmd := lookup(a.bytes(0))
	if cmd == nil {
		return dst
	}
	var buf [maxRanges]keyRange
	for _, r := range cmd.resolve(&a, buf[:0]) {
		for i := r.first; i <= r.last; i += r.step {
			dst = append(dst, i)
		}
	}
	return dst
}
