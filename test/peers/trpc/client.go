package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/types/known/wrapperspb"
	"trpc.group/trpc-go/trpc-go/client"
	"trpc.group/trpc-go/trpc-go/codec"
	"trpc.group/trpc-go/trpc-go/errs"
)

type clientFlags struct {
	addr, method, callee, name, meta string
	n, c                             int
	oneway, multiplexed              bool
	timeout                          time.Duration
}

// Result is what the client prints after "RESULT ": the outcome of every
// call, in order.
type Result struct {
	OK     int    `json:"ok"`
	Errors int    `json:"errors"`
	Calls  []Call `json:"calls"`
}

// Call is the outcome of one call: the reply, or the error trpc-go
// returned with its code (errs.Code) and type ("framework", "callee
// framework", "business").
type Call struct {
	Reply string `json:"reply,omitempty"`
	Code  int    `json:"code,omitempty"`
	Type  string `json:"type,omitempty"`
	Error string `json:"error,omitempty"`
	// TransInfo is the response's trans_info.
	TransInfo map[string]string `json:"trans_info,omitempty"`
}

// callOpts are the client options of a call to addr.
func callOpts(addr string, timeout time.Duration, meta map[string]string) []client.Option {
	opts := []client.Option{
		client.WithTarget("ip://" + addr),
		client.WithProtocol("trpc"),
		client.WithNetwork("tcp"),
		client.WithTimeout(timeout),
	}
	for k, v := range meta {
		opts = append(opts, client.WithMetaData(k, []byte(v)))
	}
	return opts
}

// invoke makes one unary call of fn with argument arg.
func invoke(callee, fn, arg string, opts ...client.Option) Call {
	ctx, msg := codec.WithCloneMessage(context.Background())
	defer codec.PutBackMessage(msg)
	msg.WithClientRPCName(fn)
	msg.WithCalleeServiceName(callee)
	msg.WithSerializationType(codec.SerializationTypePB)
	rsp := &wrapperspb.StringValue{}
	if err := client.DefaultClient.Invoke(ctx, wrapperspb.String(arg), rsp, opts...); err != nil {
		c := Call{Code: int(errs.Code(err)), Error: errs.Msg(err)}
		if e, ok := err.(*errs.Error); ok {
			c.Type = errType(e.Type)
		}
		return c
	}
	c := Call{Reply: rsp.GetValue()}
	if md := msg.ClientMetaData(); len(md) > 0 {
		c.TransInfo = map[string]string{}
		for k, v := range md {
			c.TransInfo[k] = string(v)
		}
	}
	return c
}

func errType(t int) string {
	switch t {
	case errs.ErrorTypeFramework:
		return "framework"
	case errs.ErrorTypeCalleeFramework:
		return "callee framework"
	case errs.ErrorTypeBusiness:
		return "business"
	}
	return fmt.Sprint(t)
}

// runClient makes cf.n sequential calls and prints the Result.
func runClient(cf clientFlags) error {
	if cf.addr == "" {
		return fmt.Errorf("client: -addr is required")
	}
	meta := map[string]string{}
	for _, kv := range strings.Split(cf.meta, ",") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			meta[k] = v
		}
	}
	fn := cf.method
	if !strings.HasPrefix(fn, "/") {
		fn = Func(fn)
	}
	opts := callOpts(cf.addr, cf.timeout, meta)
	if cf.oneway {
		opts = append(opts, client.WithSendOnly())
	}
	if cf.multiplexed {
		// One connection for every call, responses matched by the head's
		// stream id (trpc-go's multiplexed transport).
		opts = append(opts, client.WithMultiplexed(true))
	}
	// cf.c workers take the calls' indexes from a channel; each result
	// goes to its index.
	calls := make([]Call, cf.n)
	idx := make(chan int)
	var wg sync.WaitGroup
	for range max(cf.c, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range idx {
				calls[i] = invoke(cf.callee, fn, strings.ReplaceAll(cf.name, "{i}", fmt.Sprint(i)), opts...)
			}
		}()
	}
	for i := range cf.n {
		idx <- i
	}
	close(idx)
	wg.Wait()
	r := Result{Calls: calls}
	for _, c := range calls {
		if c.Error == "" && c.Code == 0 {
			r.OK++
		} else {
			r.Errors++
		}
	}
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	fmt.Println("RESULT", string(b))
	return nil
}

// waitListening waits until addr accepts connections, or serve fails.
func waitListening(addr string, serve <-chan error) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case err := <-serve:
			return fmt.Errorf("serve: %v", err)
		default:
		}
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s does not accept connections: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
