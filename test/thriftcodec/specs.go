package thriftcodec

import (
	"math/rand"

	"github.com/apache/thrift/lib/go/thrift"

	"github.com/metaproxy/metaproxy/test/peers/thrift/gen/hello"
)

// Requests are the request messages of the tests and golden files. The
// headers are only written on THeader wires.
func Requests(w Wire) []Spec {
	s := []Spec{
		{Method: "sayHello", Type: thrift.CALL, Seq: 1, Body: &hello.HelloSayHelloArgs{Name: "bob"},
			Headers: map[string]string{"x-trace-id": "abc123"}},
		{Service: "Hello", Method: "sayHello", Type: thrift.CALL, Seq: 2, Body: &hello.HelloSayHelloArgs{Name: "alice"},
			Headers: map[string]string{"tenant": "t1", "x-b": "ü2"}},
		{Method: "ping", Type: thrift.ONEWAY, Seq: 3, Body: &hello.HelloPingArgs{Note: "n1"}},
		{Method: "echoBag", Type: thrift.CALL, Seq: 300, Body: &hello.HelloEchoBagArgs{Bag: FullBag()}},
		{Method: "sayHello", Type: thrift.CALL, Seq: -2, Body: &hello.HelloSayHelloArgs{}},
	}
	return withHeaders(w, s)
}

// Responses are the response messages of the tests and golden files.
func Responses(w Wire) []Spec {
	ok := "Hello bob"
	s := []Spec{
		{Method: "sayHello", Type: thrift.REPLY, Seq: 1, Body: &hello.HelloSayHelloResult{Success: &ok},
			Headers: map[string]string{"srv": "s1"}},
		{Method: "sayHello", Type: thrift.REPLY, Seq: 2, Body: &hello.HelloSayHelloResult{Err: &hello.HelloError{Message: "no", Code: 42}}},
		{Method: "sayHello", Type: thrift.EXCEPTION, Seq: 3, Body: thrift.NewTApplicationException(thrift.UNKNOWN_METHOD, "boom")},
		{Method: "echoBag", Type: thrift.REPLY, Seq: 300, Body: &hello.HelloEchoBagResult{Success: FullBag()}},
		{Method: "echoHeader", Type: thrift.REPLY, Seq: 7, Body: &hello.HelloEchoHeaderResult{Success: new(string)}},
	}
	return withHeaders(w, s)
}

func withHeaders(w Wire, s []Spec) []Spec {
	if !w.Header() {
		for i := range s {
			s[i].Headers = nil
		}
	}
	return s
}

// FullBag is a Bag with every field set, nested three deep.
func FullBag() *hello.Bag {
	b := leafBag(1)
	b.Child = leafBag(2)
	b.Child.Child = leafBag(3)
	b.Children = []*hello.Bag{leafBag(4), {}, leafBag(5)}
	return b
}

func leafBag(i int) *hello.Bag {
	return &hello.Bag{
		Flag: i%2 == 1, Small: int8(-i), ShortNum: int16(-300 * i), Num: int32(70000 * i), Big: -1 << (40 + i),
		Ratio: 1.5 * float64(i), Text: "text", Blob: []byte{0, 0x80, 0xff, byte(i)},
		Names:    []string{"a", "", "ccc"},
		Ids:      []int32{1, -1, 1 << 30},
		Groups:   map[string][]int64{"g": {1, 2, 3}, "empty": {}},
		Switches: map[int32]bool{1: true, 2: false},
		Bits:     []bool{true, false, true, true, false, true, false, true, true, false, true, false, true, true, false, true, false},
		FarField: int32(i),
	}
}

// RandomBag returns a Bag of random shape and contents, nested at most
// depth deep.
func RandomBag(r *rand.Rand, depth int) *hello.Bag {
	b := &hello.Bag{
		Flag: r.Intn(2) == 0, Small: int8(r.Intn(256)), ShortNum: int16(r.Intn(1 << 16)), Num: r.Int31() - r.Int31(),
		Big: r.Int63() - r.Int63(), Ratio: r.NormFloat64(), Text: randString(r, r.Intn(40)), Blob: []byte(randString(r, r.Intn(300))),
		FarField: r.Int31n(5),
	}
	for i := r.Intn(20); i > 0; i-- {
		b.Names = append(b.Names, randString(r, r.Intn(8)))
	}
	for i := r.Intn(20); i > 0; i-- {
		b.Ids = append(b.Ids, r.Int31()-r.Int31())
	}
	if n := r.Intn(4); n > 0 {
		b.Groups = map[string][]int64{}
		for ; n > 0; n-- {
			var l []int64
			for j := r.Intn(18); j > 0; j-- {
				l = append(l, r.Int63()>>r.Intn(63))
			}
			b.Groups[randString(r, 3)] = l
		}
	}
	if n := r.Intn(3); n > 0 {
		b.Switches = map[int32]bool{}
		for ; n > 0; n-- {
			b.Switches[r.Int31n(100)] = r.Intn(2) == 0
		}
	}
	for i := r.Intn(20); i > 0; i-- {
		b.Bits = append(b.Bits, r.Intn(2) == 0)
	}
	if depth > 0 {
		if r.Intn(2) == 0 {
			b.Child = RandomBag(r, depth-1)
		}
		for i := r.Intn(3); i > 0; i-- {
			b.Children = append(b.Children, RandomBag(r, depth-1))
		}
	}
	return b
}

func randString(r *rand.Rand, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Intn(256))
	}
	return string(b)
}
