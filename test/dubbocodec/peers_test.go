package dubbocodec

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"dubbo.apache.org/dubbo-go/v3/client"
	"dubbo.apache.org/dubbo-go/v3/common/constant"
	"dubbo.apache.org/dubbo-go/v3/global"
	"dubbo.apache.org/dubbo-go/v3/protocol"
	dubboproto "dubbo.apache.org/dubbo-go/v3/protocol/dubbo"
	"dubbo.apache.org/dubbo-go/v3/server"
	getty "github.com/apache/dubbo-getty"
	"github.com/dubbogo/gost/log/logger"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/metaproxy/metaproxy/codec"
	"github.com/metaproxy/metaproxy/codecs/dubbo"
	"github.com/metaproxy/metaproxy/test/harness"
	_ "github.com/metaproxy/metaproxy/test/peers/dubbo/dubbogo" // the extensions a provider and consumer need
)

// Greeter is the dubbo-go provider the peer tests call.
type Greeter struct{}

func (Greeter) SayHello(_ context.Context, name string) (string, error) { return "hello, " + name, nil }

func (Greeter) GetUser(_ context.Context, name string) (*User, error) { return sampleUser(name), nil }

func (Greeter) Fail(_ context.Context, msg string) (string, error) { return "", errors.New(msg) }

// EchoAttachment returns the attachment key as the provider received it.
func (Greeter) EchoAttachment(ctx context.Context, key string) (string, error) {
	atta, _ := ctx.Value(constant.AttachmentKey).(map[string]any)
	v, _ := atta[key].(string)
	return v, nil
}

var quietOnce sync.Once

// quietLogs keeps dubbo-go and getty at warn level.
func quietLogs() {
	quietOnce.Do(func() {
		cfg := zap.NewProductionConfig()
		cfg.Level = zap.NewAtomicLevelAt(zapcore.WarnLevel)
		cfg.Encoding = "console"
		cfg.OutputPaths = []string{"stderr"}
		logger.InitLogger(&logger.Config{ZapConfig: &cfg})
		getty.SetLogger(logger.GetLogger())
	})
}

var (
	providerOnce sync.Once
	providerAddr string
	providerErr  error
)

// startProvider serves Greeter with dubbo-go v3.3.1 on 127.0.0.1, once per
// test binary: dubbo-go's server cannot be stopped cleanly in-process.
func startProvider(t *testing.T) string {
	t.Helper()
	quietLogs()
	providerOnce.Do(func() {
		// dubbo-go creates its protocol singleton lazily and without a
		// lock; create it before the provider and consumers race for it.
		dubboproto.GetProtocol()
		port := harness.FreePort(t)
		app := global.DefaultApplicationConfig()
		app.Name = "dubbocodec-test"
		app.MetadataType = constant.RemoteMetadataStorageType // no MetadataService on the same port
		srv, err := server.NewServer(server.SetServerApplication(app),
			server.WithServerProtocol(protocol.WithDubbo(), protocol.WithIp("127.0.0.1"), protocol.WithPort(port)))
		if err == nil {
			err = srv.Register(&Greeter{}, nil, server.WithInterface(iface))
		}
		if err != nil {
			providerErr = err
			return
		}
		go srv.Serve()
		providerAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	})
	if providerErr != nil {
		t.Fatal(providerErr)
	}
	if err := harness.WaitPort(providerAddr, 15*time.Second); err != nil {
		t.Fatal(err)
	}
	return providerAddr
}

// dial returns a dubbo-go consumer of iface at addr.
func dial(t *testing.T, addr string) *client.Connection {
	t.Helper()
	cli, err := client.NewClient(client.WithClientProtocolDubbo(), client.WithClientSerialization("hessian2"), client.WithClientRetries(0))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := cli.Dial(iface, client.WithURL("dubbo://"+addr), client.WithRequestTimeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	return conn
}

// relay forwards one direction of a TCP connection frame by frame through
// the metaproxy codec, recording every frame and optionally editing it.
type relay struct {
	mu     sync.Mutex
	frames [][]byte
	edit   func(c codec.Codec, m *codec.Message) ([]byte, error)
}

func (r *relay) pump(src io.Reader, dst io.Writer) error {
	f, _ := dubbo.NewFactory(dubbo.Options{})
	c := f.NewCodec()
	var buf []byte
	tmp := make([]byte, 64<<10)
	for {
		n, err := src.Read(tmp)
		buf = append(buf, tmp[:n]...)
		for {
			k, serr := c.Split(buf)
			if serr != nil {
				return serr
			}
			if k == 0 {
				break
			}
			frame := append([]byte(nil), buf[:k]...)
			buf = buf[k:]
			m := &codec.Message{Frame: frame}
			if derr := c.Decode(frame, m); derr != nil {
				return derr
			}
			r.mu.Lock()
			r.frames = append(r.frames, frame)
			r.mu.Unlock()
			out := frame
			if r.edit != nil {
				if out, err = r.edit(c, m); err != nil {
					return err
				}
			}
			if _, werr := dst.Write(out); werr != nil {
				return werr
			}
		}
		if err != nil {
			return err
		}
	}
}

// proxy listens on 127.0.0.1 and relays every connection to upstream.
func proxy(t *testing.T, upstream string, req, rsp *relay) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			down, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", upstream)
			if err != nil {
				down.Close()
				continue
			}
			closeBoth := func() { down.Close(); up.Close() }
			go func() { req.pump(down, up); closeBoth() }()
			go func() { rsp.pump(up, down); closeBoth() }()
		}
	}()
	return ln.Addr().String()
}

// TestDubboGoTraffic captures real dubbo-go consumer and provider frames,
// cross-checks each with the oracle and, with -update, stores them.
func TestDubboGoTraffic(t *testing.T) {
	up := startProvider(t)
	var req, rsp relay
	conn := dial(t, proxy(t, up, &req, &rsp))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	var s string
	if err := conn.CallUnary(ctx, []any{"alice"}, &s, "sayHello"); err != nil || s != "hello, alice" {
		t.Fatalf("sayHello: %q, %v", s, err)
	}
	var u User
	if err := conn.CallUnary(ctx, []any{"bob"}, &u, "getUser"); err != nil || u.Name != "bob" {
		t.Fatalf("getUser: %+v, %v", u, err)
	}
	if err := conn.CallUnary(ctx, []any{"boom"}, &s, "fail"); err == nil {
		t.Fatal("fail did not fail")
	}
	if err := conn.CallUnary(ctx, []any{"x"}, &s, "noSuchMethod"); err == nil {
		t.Fatal("an unknown method did not fail")
	}

	const origin = "dubbo-go v3.3.1 consumer and provider, captured on 127.0.0.1"
	var gs []golden
	names := map[string]int{}
	for _, group := range [][][]byte{req.frames, rsp.frames} {
		for _, f := range group {
			o, err := oracle(f)
			if err != nil {
				t.Fatalf("the oracle cannot read a dubbo-go frame: %v", err)
			}
			kind := o.want.Kind
			if kind == "response" {
				kind += "_" + o.want.Status
			}
			names[kind]++
			name := fmt.Sprintf("go_%s_%d", kind, names[kind])
			gs = append(gs, newGolden(name, origin, f, crossCheckWith(t, name, f, o)))
		}
	}
	if names["request"] != 4 || names["response_ok"] != 2 || names["response_error"] != 2 {
		t.Errorf("captured %v, want 4 requests, 2 ok and 2 error responses", names)
	}
	if *update {
		writeGoldens(t, "go_", gs)
	}
}

// TestDubboGoThroughEdits puts the codec's edits between a real consumer
// and provider: request ids are rewritten both ways and an attachment is
// added, which the provider must see.
func TestDubboGoThroughEdits(t *testing.T) {
	up := startProvider(t)
	const shift = 1 << 40
	req := relay{edit: func(c codec.Codec, m *codec.Message) ([]byte, error) {
		if m.Kind != codec.KindRequest {
			return m.Frame, nil
		}
		return c.Encode(nil, m, &codec.Edit{SetID: true, ID: m.ID + shift,
			Headers: []codec.KV{{Key: "x-metaproxy", Value: "edited ü🤣"}}})
	}}
	rsp := relay{edit: func(c codec.Codec, m *codec.Message) ([]byte, error) {
		if m.Kind != codec.KindResponse {
			return m.Frame, nil
		}
		return c.Encode(nil, m, &codec.Edit{SetID: true, ID: m.ID - shift,
			Headers: []codec.KV{{Key: "x-upstream", Value: "seen"}}})
	}}
	conn := dial(t, proxy(t, up, &req, &rsp))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := range 20 {
		var s string
		if err := conn.CallUnary(ctx, []any{"x-metaproxy"}, &s, "echoAttachment"); err != nil || s != "edited ü🤣" {
			t.Fatalf("call %d: the provider saw x-metaproxy=%q, err=%v", i, s, err)
		}
	}
	var u User
	if err := conn.CallUnary(ctx, []any{"carol"}, &u, "getUser"); err != nil || u.Name != "carol" || u.Home == nil {
		t.Fatalf("getUser through edits: %+v, %v", u, err)
	}
}

// TestDubboGoSeesErrorReplies serves a dubbo-go consumer from the codec's
// ErrorReply alone: every local error must reach the caller as an error
// carrying the message.
func TestDubboGoSeesErrorReplies(t *testing.T) {
	quietLogs()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var next codec.ErrorType
	var mu sync.Mutex
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer nc.Close()
				var r relay
				r.edit = func(c codec.Codec, m *codec.Message) ([]byte, error) {
					switch m.Kind {
					case codec.KindHeartbeat:
						return c.HeartbeatReply(nil, m), nil
					case codec.KindRequest:
						mu.Lock()
						et := next
						mu.Unlock()
						return c.ErrorReply(nil, m, codec.Errorf(et, "local reply for %s", m.Meta.Value(codec.KeyMethod))), nil
					}
					return nil, nil
				}
				r.pump(nc, nc)
			}()
		}
	}()
	conn := dial(t, ln.Addr().String())
	for et := codec.ErrorType(0); et < codec.NumErrorTypes; et++ {
		mu.Lock()
		next = et
		mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		var s string
		err := conn.CallUnary(ctx, []any{"alice"}, &s, "sayHello")
		cancel()
		want := et.String() + ": local reply for sayHello"
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v: the consumer got %v, want an error containing %q", et, err, want)
		}
	}
}
