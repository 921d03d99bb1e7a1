package redis

import (
	"fmt"
	"strconv"

	"github.com/metaproxy/metaproxy/codec"
)

// Merge says how the replies to the parts of a split command make the
// command's reply.
type Merge uint8

// Merge rules.
const (
	MergeNone  Merge = iota // the command does not split
	MergeArray              // MGET: one array, values in the original key order
	MergeSum                // DEL, EXISTS, UNLINK, TOUCH: the sum of the integers
	MergeAllOK              // MSET: +OK when every part answered +OK
)

// MultiKey describes a multi-key command that an engine may split into one
// sub-command per shard: its key groups are Step arguments each (a key, or
// MSET's key and value), from argument First on.
type MultiKey struct {
	First  int // argument index of the first group: 1
	Step   int // arguments per group
	Groups int // how many groups
	Merge  Merge
}

var multiKeys = map[string]MultiKey{
	"MGET":   {First: 1, Step: 1, Merge: MergeArray},
	"MSET":   {First: 1, Step: 2, Merge: MergeAllOK},
	"DEL":    {First: 1, Step: 1, Merge: MergeSum},
	"EXISTS": {First: 1, Step: 1, Merge: MergeSum},
	"UNLINK": {First: 1, Step: 1, Merge: MergeSum},
	"TOUCH":  {First: 1, Step: 1, Merge: MergeSum},
}

// Splittable reports how the request m splits: ok for MGET, MSET, DEL,
// EXISTS, UNLINK and TOUCH with at least one key group and no stray
// argument. (MSETNX is atomic across its keys and never splits.)
func Splittable(m *codec.Message) (mk MultiKey, ok bool) {
	a, ok := request(m)
	if !ok {
		return mk, false
	}
	cmd := lookup(a.bytes(0))
	if cmd == nil {
		return mk, false
	}
	mk, ok = multiKeys[cmd.name]
	n := a.argc - mk.First
	if !ok || n < mk.Step || n%mk.Step != 0 {
		return MultiKey{}, false
	}
	mk.Groups = n / mk.Step
	return mk, true
}

// AppendCommand appends a command frame: an array of args as bulk
// strings.
func AppendCommand(dst []byte, args ...[]byte) []byte {
	dst = append(dst, '*')
	dst = strconv.AppendInt(dst, int64(len(args)), 10)
	dst = append(dst, '\r', '\n')
	for _, a := range args {
		dst = appendBulk(dst, a)
	}
	return dst
}

// AppendPart appends the sub-command of a split command that holds the key
// groups listed in groups (indexes below mk.Groups, in the order the
// part's reply will answer them): the command name, then each group's
// arguments. args are the command's arguments (Args).
func AppendPart(dst []byte, args [][]byte, mk MultiKey, groups []int) ([]byte, error) {
	if len(args) != mk.First+mk.Groups*mk.Step || len(groups) == 0 {
		return dst, fmt.Errorf("%s: %d arguments, %d groups do not fit %+v", Name, len(args), len(groups), mk)
	}
	dst = append(dst, '*')
	dst = strconv.AppendInt(dst, int64(1+len(groups)*mk.Step), 10)
	dst = append(dst, '\r', '\n')
	dst = appendBulk(dst, args[0])
	for _, g := range groups {
		if g < 0 || g >= mk.Groups {
			return dst, fmt.Errorf("%s: key group %d of %d", Name, g, mk.Groups)
		}
		for _, a := range args[mk.First+g*mk.Step : mk.First+(g+1)*mk.Step] {
			dst = appendBulk(dst, a)
		}
	}
	return dst, nil
}

// MergeReplies appends the reply of a split command to dst: replies[i]
// answers the part made of the groups parts[i] (as given to AppendPart),
// and every group is in exactly one part. The first error reply of a part
// is the whole command's reply (as Redis Cluster proxies answer); a reply
// of the wrong shape is an error, for the engine to answer as a bad
// response.
func MergeReplies(dst []byte, mk MultiKey, parts [][]int, replies [][]byte) ([]byte, error) {
	if len(parts) != len(replies) {
		return dst, fmt.Errorf("%s: %d parts, %d replies", Name, len(parts), len(replies))
	}
	seen := make([]bool, mk.Groups)
	for _, p := range parts {
		for _, g := range p {
			if g < 0 || g >= mk.Groups || seen[g] {
				return dst, fmt.Errorf("%s: key group %d missing, repeated or out of range", Name, g)
			}
			seen[g] = true
		}
	}
	for g, ok := range seen {
		if !ok {
			return dst, fmt.Errorf("%s: key group %d is in no part", Name, g)
		}
	}
	for _, r := range replies {
		if t, err := replyType(r); err != nil {
			return dst, err
		} else if t == '-' || t == '!' {
			return append(dst, r...), nil
		}
	}
	switch mk.Merge {
	case MergeArray:
		vals := make([][]byte, mk.Groups)
		for i, r := range replies {
			if err := elements(r, parts[i], vals); err != nil {
				return dst, err
			}
		}
		dst = append(dst, '*')
		dst = strconv.AppendInt(dst, int64(mk.Groups), 10)
		dst = append(dst, '\r', '\n')
		for _, v := range vals {
			dst = append(dst, v...)
		}
		return dst, nil
	case MergeSum:
		var sum int64
		for _, r := range replies {
			v, end, err := line(r, 1, maxLenLine)
			n, perr := strconv.ParseInt(string(v), 10, 64)
			if r[0] != ':' || err != nil || end != len(r) || perr != nil {
				return dst, fmt.Errorf("%s: part reply %.40q is not an integer", Name, r)
			}
			sum += n
		}
		dst = append(dst, ':')
		dst = strconv.AppendInt(dst, sum, 10)
		return append(dst, '\r', '\n'), nil
	case MergeAllOK:
		for _, r := range replies {
			if string(r) != "+OK\r\n" {
				return dst, fmt.Errorf("%s: part reply %.40q is not +OK", Name, r)
			}
		}
		return append(dst, "+OK\r\n"...), nil
	}
	return dst, fmt.Errorf("%s: %+v does not merge", Name, mk)
}

// elements places the values of the array reply r, which answers groups,
// into vals.
func elements(r []byte, groups []int, vals [][]byte) error {
	bad := func() error {
		return fmt.Errorf("%s: part reply %.40q is not an array of %d values", Name, r, len(groups))
	}
	if len(r) == 0 || r[0] != '*' {
		return bad()
	}
	v, p, err := line(r, 1, maxLenLine)
	n, ok := parseLen(v)
	if err != nil || p == 0 || !ok || n != int64(len(groups)) {
		return bad()
	}
	for _, g := range groups {
		end, err := skip(r, p)
		if err != nil {
			return bad()
		}
		vals[g], p = r[p:end], end
	}
	if p != len(r) {
		return bad()
	}
	return nil
}
