package harness

import (
	"fmt"
	"strconv"
	"testing"
	"time"
)

// DubboPeer is the import path of the dubbo-go peer binary.
const DubboPeer = Module + "/test/peers/dubbo/dubbopeer"

// DubboInterface is the service the peer's providers export.
const DubboInterface = "org.apache.dubbo.samples.basic.api.DemoService"

// DubboProvider is a running dubbo-go provider.
type DubboProvider struct {
	*Process
	Port int
	Tag  string
}

// StartDubboProvider starts a dubbo-go provider tagged tag on a free port of
// 127.0.0.1 and waits until it listens.
func StartDubboProvider(t testing.TB, tag string) *DubboProvider {
	t.Helper()
	return StartDubboProviderOn(t, tag, FreePort(t))
}

// StartDubboProviderOn starts a dubbo-go provider on 127.0.0.1:port (to
// bring a killed provider back on its old address).
func StartDubboProviderOn(t testing.TB, tag string, port int) *DubboProvider {
	t.Helper()
	bin := Build(t, DubboPeer)
	p := Start(t, "provider "+tag, bin, "-mode", "provider", "-port", strconv.Itoa(port), "-tag", tag)
	return &DubboProvider{Process: p, Port: port, Tag: tag}
}

// Addr returns the provider's "127.0.0.1:port".
func (p *DubboProvider) Addr() string { return Addr(p.Port) }

// HelloFrom returns the reply the provider gives to sayHello(name).
func (p *DubboProvider) HelloFrom(name string) string {
	return "Hello " + name + ", response from " + p.Tag + "@" + p.Addr()
}

// DubboConsumer runs the dubbo-go consumer against addr with extra flags
// (-method, -name, -n, -c, ...) and returns its stdout. A failed run's error
// carries the consumer's stderr.
func DubboConsumer(t testing.TB, addr string, flags ...string) (string, error) {
	t.Helper()
	bin := Build(t, DubboPeer)
	args := append([]string{"-mode", "consumer", "-url", "dubbo://" + addr}, flags...)
	out, stderr, err := Run(t, 2*time.Minute, bin, args...)
	if err != nil {
		err = fmt.Errorf("consumer %v: %w\nstderr:\n%s", flags, err, stderr)
	}
	return out, err
}
