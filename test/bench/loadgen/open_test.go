package main

import (
	"bufio"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// goldenThrift returns the frames of kind ("request" or "response") that
// Apache Thrift 0.17 wrote in codecs/thrift/testdata/framed-binary.txt.
func goldenThrift(t *testing.T, kind string) [][]byte {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "..", "..", "codecs", "thrift", "testdata", "framed-binary.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out [][]byte
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		k, h, ok := strings.Cut(sc.Text(), " ")
		if !ok || k != kind {
			continue
		}
		b, err := hex.DecodeString(h)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// The open loop's request is the Apache client's frame, byte for byte.
func TestThriftHelloFrameIsGolden(t *testing.T) {
	if got := hex.EncodeToString(goldenThrift(t, "request")[0]); got != thriftHelloFrame {
		t.Fatalf("golden sayHello frame is %s, loadgen sends %s", got, thriftHelloFrame)
	}
	frame, _ := hex.DecodeString(thriftHelloFrame)
	if seq := frame[thriftSeqOffset : thriftSeqOffset+4]; hex.EncodeToString(seq) != "00000001" {
		t.Fatalf("sequence id bytes %x, want 00000001", seq)
	}
}

// parseThriftReply accepts the Apache server's success reply and refuses
// its declared exception and its EXCEPTION message.
func TestParseThriftReply(t *testing.T) {
	rsp := goldenThrift(t, "response")
	seq, err := parseThriftReply(rsp[0][4:])
	if err != nil || seq != 1 {
		t.Fatalf("success reply: seq %d, %v", seq, err)
	}
	for _, i := range []int{1, 2} { // HelloError; TApplicationException
		if _, err := parseThriftReply(rsp[i][4:]); err == nil {
			t.Errorf("response %d accepted: %x", i, rsp[i])
		}
	}
	if _, err := parseThriftReply(rsp[4][4:]); err == nil {
		t.Error("echoHeader reply accepted as sayHello's")
	}
}
