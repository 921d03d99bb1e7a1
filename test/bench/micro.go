package bench

import (
	"bufio"
	"fmt"
	"strconv"
	"strings"
)

// Micro is one Go benchmark result line.
type Micro struct {
	Name        string // without the "Benchmark" prefix and the -GOMAXPROCS suffix
	NsPerOp     float64
	BytesPerOp  int64
	AllocsPerOp int64
}

// ParseMicro reads the result lines of `go test -bench -benchmem` output;
// other lines are ignored. A result line without B/op and allocs/op is an
// error: the report needs them.
func ParseMicro(out string) ([]Micro, error) {
	var ms []Micro
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") || f[3] != "ns/op" {
			continue
		}
		m := Micro{Name: strings.TrimPrefix(f[0], "Benchmark")}
		if i := strings.LastIndexByte(m.Name, '-'); i > 0 {
			if _, err := strconv.Atoi(m.Name[i+1:]); err == nil {
				m.Name = m.Name[:i]
			}
		}
		var err error
		if m.NsPerOp, err = strconv.ParseFloat(f[2], 64); err != nil {
			return nil, fmt.Errorf("%s: ns/op: %w", f[0], err)
		}
		var haveB, haveA bool
		for i := 4; i+1 < len(f); i += 2 {
			switch f[i+1] {
			case "B/op":
				m.BytesPerOp, err = strconv.ParseInt(f[i], 10, 64)
				haveB = true
			case "allocs/op":
				m.AllocsPerOp, err = strconv.ParseInt(f[i], 10, 64)
				haveA = true
			}
			if err != nil {
				return nil, fmt.Errorf("%s: %s: %w", f[0], f[i+1], err)
			}
		}
		if !haveB || !haveA {
			return nil, fmt.Errorf("%s: no B/op or allocs/op (run with -benchmem)", f[0])
		}
		ms = append(ms, m)
	}
	return ms, sc.Err()
}

func microTable(ms []Micro) string {
	t := &table{head: []string{"benchmark", "ns/op", "B/op", "allocs/op"}}
	for _, m := range ms {
		t.add(m.Name, fmt.Sprintf("%.0f", m.NsPerOp), fmt.Sprint(m.BytesPerOp), fmt.Sprint(m.AllocsPerOp))
	}
	return t.String()
}
