package dubbocodec

import (
	"errors"
	"fmt"
	"math"
	"math/rand"
	"strings"
	"testing"
	"time"

	hessian "github.com/apache/dubbo-go-hessian2"
)

var (
	int32Edges = []int32{0, -16, 47, -17, 48, -2048, 2047, -2049, 2048, -262144, 262143, -262145, 262144, math.MinInt32, math.MaxInt32}
	int64Edges = []int64{0, -8, 15, -9, 16, -2048, 2047, -2049, 2048, -262144, 262143, -262145, 262144,
		math.MinInt32, math.MaxInt32, math.MinInt32 - 1, math.MaxInt32 + 1, math.MinInt64, math.MaxInt64}
	float64Edges = []float64{0, 1, 3, -128, 127, -129, 128, -32768, 32767, 32768, 1.5, 0.001, -12.25, math.Pi, 1e300, -1e-300}
	lengths      = []int{0, 1, 15, 16, 31, 32, 1023, 1024, 4095, 4096, 4097, 9000}
	alphabets    = [][]rune{[]rune("abcxyz019"), []rune("äöüßé"), []rune("你好世界"), []rune("🤣😀𝄞")}
)

func randString(r *rand.Rand) string {
	n := lengths[r.Intn(len(lengths))]
	var b strings.Builder
	for range n {
		a := alphabets[r.Intn(len(alphabets))]
		b.WriteRune(a[r.Intn(len(a))])
	}
	return b.String()
}

// randValue returns a random value of a type dubbo-go-hessian2 can encode
// as a call argument, exercising every Hessian 2 encoding it writes.
func randValue(r *rand.Rand, depth int) any {
	k := r.Intn(14)
	if depth > 3 {
		k = r.Intn(8)
	}
	switch k {
	case 0:
		return nil
	case 1:
		return r.Intn(2) == 0
	case 2:
		if r.Intn(3) == 0 {
			return r.Int31() - r.Int31()
		}
		return int32Edges[r.Intn(len(int32Edges))]
	case 3:
		if r.Intn(3) == 0 {
			return r.Int63() - r.Int63()
		}
		return int64Edges[r.Intn(len(int64Edges))]
	case 4:
		if r.Intn(3) == 0 {
			return r.NormFloat64() * 1e6
		}
		return float64Edges[r.Intn(len(float64Edges))]
	case 5:
		return randString(r)
	case 6:
		b := make([]byte, lengths[r.Intn(len(lengths))])
		r.Read(b)
		return b
	case 7:
		t := time.Unix(r.Int63n(4e9), 0).UTC()
		if r.Intn(2) == 0 {
			t = t.Add(time.Duration(r.Intn(1000)) * time.Millisecond)
		}
		return t
	case 8:
		l := make([]any, r.Intn(10))
		for i := range l {
			l[i] = randValue(r, depth+1)
		}
		return l
	case 9:
		if r.Intn(2) == 0 {
			l := make([]int32, r.Intn(12))
			for i := range l {
				l[i] = int32Edges[r.Intn(len(int32Edges))]
			}
			return l
		}
		l := make([]string, r.Intn(12))
		for i := range l {
			l[i] = randString(r)
		}
		return l
	case 10:
		m := map[any]any{}
		for range r.Intn(6) {
			m[randString(r)] = randValue(r, depth+1)
		}
		m[int32Edges[r.Intn(len(int32Edges))]] = randValue(r, depth+1)
		return m
	case 11:
		m := map[string]any{}
		for range r.Intn(6) {
			m[randString(r)] = randValue(r, depth+1)
		}
		return m
	case 12:
		u := sampleUser(randString(r))
		u.Friends = append(u.Friends, sampleUser("friend"))
		return u
	default:
		a := &Address{Street: randString(r), Zip: r.Int31()}
		return []any{a, a, &Address{Street: "other"}, a}
	}
}

// TestRandomValues puts random values before the attachments (as call
// arguments and as results): the codec finds the attachments the library
// finds only if it skips every value exactly.
func TestRandomValues(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	svc := hessian.Service{Path: iface, Interface: iface, Method: "m", Version: "2.1"}
	for i := range 400 {
		args := make([]any, r.Intn(5))
		for j := range args {
			args[j] = randValue(r, 0)
		}
		atta := map[string]string{"sentinel": fmt.Sprint(i), "s": randString(r)}
		name := fmt.Sprintf("random request %d", i)
		frame, err := hessian.NewHessianCodec(nil).Write(svc,
			hessian.DubboHeader{SerialID: 2, Type: hessian.PackageRequest_TwoWay, ID: int64(i)}, hessian.NewRequest(args, atta))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if w, ok := crossCheckRandom(t, name, frame); ok && w.Meta["sentinel"] != fmt.Sprint(i) {
			t.Fatalf("%s: the oracle lost the sentinel: %v", name, w.Meta)
		}

		atta["dubbo"] = "2.0.2"
		frame, err = hessian.NewHessianCodec(nil).Write(hessian.Service{},
			hessian.DubboHeader{SerialID: 2, Type: hessian.PackageResponse, ID: int64(i), ResponseStatus: hessian.Response_OK},
			hessian.NewResponse(randValue(r, 0), nil, atta))
		if err != nil {
			t.Fatalf("random response %d: %v", i, err)
		}
		crossCheckRandom(t, fmt.Sprintf("random response %d", i), frame)
	}
	t.Logf("the library could not decode %d of 800 random frames", oraclePanics)
	if oraclePanics > 40 {
		t.Errorf("the library could not decode %d of 800 random frames", oraclePanics)
	}
}

var oraclePanics int

// crossCheckRandom cross-checks a random frame unless the library cannot
// decode it; the codec must still accept it.
func crossCheckRandom(t *testing.T, name string, frame []byte) (want, bool) {
	t.Helper()
	o, err := oracle(frame)
	if errors.Is(err, errOraclePanic) {
		oraclePanics++
		decode(t, frame)
		return want{}, false
	}
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return crossCheckWith(t, name, frame, o), true
}
