package kvpeer

import (
	"fmt"
	"net"
	"sync"
	"testing"
	"time"
)

func start(t *testing.T) (*Server, *Client) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := Serve(ln, "s1")
	t.Cleanup(func() { s.Close() })
	c, err := Dial(s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return s, c
}

func TestPeer(t *testing.T) {
	s, c := start(t)
	r, err := c.Call(Pair{"op", "hello"}, Pair{"name", "ann"})
	if err != nil || r.Flags != FlagResponse || r.Status != StatusOK || r.Map()["reply"] != "Hello ann from s1" {
		t.Fatalf("hello: %+v %v", r, err)
	}
	r, err = c.Call(Pair{"op", "echo"}, Pair{"x-a", "1"})
	if err != nil || r.Map()["x-a"] != "1" || r.Map()["served-by"] != "s1" {
		t.Fatalf("echo: %+v %v", r, err)
	}
	if r, err = c.Call(Pair{"op", "fail"}, Pair{"name", "x"}); err != nil || r.Status != StatusAppError {
		t.Fatalf("fail: %+v %v", r, err)
	}
	if r, err = c.Heartbeat(); err != nil || r.Flags != FlagHeartbeat|FlagResponse {
		t.Fatalf("heartbeat: %+v %v", r, err)
	}
	for i := 0; i < 3; i++ {
		if err := c.Oneway(Pair{"op", "log"}); err != nil {
			t.Fatal(err)
		}
	}
	for deadline := time.Now().Add(10 * time.Second); s.Oneways() < 3; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d oneways arrived", s.Oneways())
		}
	}
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprint("n", i)
			r, err := c.Call(Pair{"name", name})
			if err != nil || r.Map()["reply"] != "Hello "+name+" from s1" {
				t.Errorf("concurrent call %d: %+v %v", i, r, err)
			}
		}()
	}
	wg.Wait()
}

func TestParse(t *testing.T) {
	f := Frame{Flags: FlagRequest, ID: 0x0a0b0c0d, Status: 3, Pairs: []Pair{{"k", "v"}, {"", ""}}}
	b, err := f.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	for cut := 0; cut < len(b); cut++ {
		if _, n, err := Parse(b[:cut]); n != 0 || err != nil {
			t.Fatalf("cut %d: n=%d err=%v", cut, n, err)
		}
	}
	g, n, err := Parse(b)
	if err != nil || n != len(b) || g.ID != f.ID || g.Status != 3 || len(g.Pairs) != 2 || g.Version != Version {
		t.Fatalf("%+v n=%d err=%v", g, n, err)
	}
	for _, bad := range [][]byte{[]byte("KVX"), append([]byte("KVP1\x02"), make([]byte, 11)...)} {
		if _, _, err := Parse(bad); err == nil {
			t.Errorf("% x accepted", bad)
		}
	}
}
