package tracing

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"google.golang.org/grpc"

	"github.com/metaproxy/metaproxy/cluster"
	"github.com/metaproxy/metaproxy/filter"
	"github.com/metaproxy/metaproxy/internal/grpcdial"
)

// One TracerProvider, OTLP exporter and gRPC connection per collector
// (its endpoints and the service name the spans are reported under) per
// process, shared by every listener that traces to it and counted: the
// last filter to let go shuts it down, flushing what is queued.

// Export settings. Spans wait in a bounded queue; a full queue drops the
// newest span rather than block the request that ended it.
var (
	queueSize     = 2048
	batchSize     = 512
	flushInterval = time.Second
	exportTimeout = 5 * time.Second
	// retry is the exporter's retry of a failed export (Unavailable and
	// the like): short, since while it runs the queue fills and drops.
	retry = otlptracegrpc.RetryConfig{Enabled: true, InitialInterval: 200 * time.Millisecond, MaxInterval: time.Second, MaxElapsedTime: 2 * time.Second}
)

// listenerKey is the instrumentation scope attribute that names the
// listener whose tracer made a span: drops are counted by it.
const listenerKey = attribute.Key("metaproxy.listener")

type collector struct {
	key  string
	cc   *grpc.ClientConn
	tp   *sdktrace.TracerProvider
	b    *batcher
	refs int

	mu    sync.Mutex
	drops map[string]*sink // by listener stat prefix
}

type sink struct {
	stat *filter.Stat
	refs int
}

var collectors struct {
	mu sync.Mutex
	m  map[string]*collector
}

// acquire returns the shared collector of cluster c's endpoints and
// service name, and registers dropped as the drop counter of listener.
func acquire(c cluster.Config, service, listener string, dropped *filter.Stat, log *slog.Logger) (*collector, error) {
	addrs, key, err := grpcdial.Addrs(c)
	if err != nil {
		return nil, err
	}
	key += "|" + service
	collectors.mu.Lock()
	defer collectors.mu.Unlock()
	if col := collectors.m[key]; col != nil {
		col.refs++
		col.register(listener, dropped)
		return col, nil
	}
	cc, err := grpcdial.Dial(c.Name, addrs)
	if err != nil {
		return nil, err
	}
	set := settings{queue: queueSize, batch: batchSize, interval: flushInterval, timeout: exportTimeout}
	exp, err := otlptracegrpc.New(context.Background(), otlptracegrpc.WithGRPCConn(cc),
		otlptracegrpc.WithTimeout(set.timeout), otlptracegrpc.WithRetry(retry))
	if err != nil {
		cc.Close()
		return nil, fmt.Errorf("cluster %q: %w", c.Name, err)
	}
	col := &collector{key: key, cc: cc, refs: 1, drops: map[string]*sink{}}
	col.b = newBatcher(exp, set, col.dropped, log.With("collector", c.Name))
	if service == "" {
		service = "unknown_service"
	}
	col.tp = sdktrace.NewTracerProvider(
		sdktrace.WithSpanProcessor(col.b),
		sdktrace.WithSampler(sdktrace.AlwaysSample()), // the filter samples
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", service))))
	col.register(listener, dropped)
	if collectors.m == nil {
		collectors.m = map[string]*collector{}
	}
	collectors.m[key] = col
	return col, nil
}

// release lets go of col for listener.
func (col *collector) release(listener string) {
	collectors.mu.Lock()
	col.unregister(listener)
	col.refs--
	last := col.refs == 0
	if last {
		delete(collectors.m, col.key)
	}
	collectors.mu.Unlock()
	if last {
		ctx, cancel := context.WithTimeout(context.Background(), col.b.set.timeout)
		_ = col.tp.Shutdown(ctx) // flushes the queue, shuts the exporter down
		cancel()
		col.cc.Close()
	}
}

func (col *collector) register(listener string, st *filter.Stat) {
	col.mu.Lock()
	defer col.mu.Unlock()
	s := col.drops[listener]
	if s == nil {
		s = &sink{}
		col.drops[listener] = s
	}
	s.stat = st // the newest configuration's stats
	s.refs++
}

func (col *collector) unregister(listener string) {
	col.mu.Lock()
	defer col.mu.Unlock()
	if s := col.drops[listener]; s != nil {
		if s.refs--; s.refs == 0 {
			delete(col.drops, listener)
		}
	}
}

// dropped counts lost spans on their listeners' counters.
func (col *collector) dropped(spans []sdktrace.ReadOnlySpan) {
	col.mu.Lock()
	defer col.mu.Unlock()
	for _, s := range spans {
		attrs := s.InstrumentationScope().Attributes
		l, _ := attrs.Value(listenerKey)
		if sk := col.drops[l.AsString()]; sk != nil {
			sk.stat.Inc()
		}
	}
}

// batcher is the span processor: a bounded queue that a goroutine empties
// in batches to the exporter, every flushInterval or as soon as a batch is
// full. OnEnd never blocks: with the queue full, the span is dropped.
// Spans of a failed export are dropped too. Both are counted.
type batcher struct {
	exp     sdktrace.SpanExporter
	set     settings
	q       chan sdktrace.ReadOnlySpan
	flush   chan chan struct{}
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
	dropped func([]sdktrace.ReadOnlySpan)
	log     *slog.Logger
	failing bool // the last export failed (the goroutine's)
}

// settings are the export settings of one collector, fixed when it is made.
type settings struct {
	queue, batch      int
	interval, timeout time.Duration
}

func newBatcher(exp sdktrace.SpanExporter, set settings, dropped func([]sdktrace.ReadOnlySpan), log *slog.Logger) *batcher {
	b := &batcher{exp: exp, set: set, q: make(chan sdktrace.ReadOnlySpan, set.queue), flush: make(chan chan struct{}),
		stop: make(chan struct{}), done: make(chan struct{}), dropped: dropped, log: log}
	go b.run()
	return b
}

// OnStart implements sdktrace.SpanProcessor.
func (b *batcher) OnStart(context.Context, sdktrace.ReadWriteSpan) {}

// OnEnd implements sdktrace.SpanProcessor.
func (b *batcher) OnEnd(s sdktrace.ReadOnlySpan) {
	select {
	case b.q <- s:
	default:
		b.dropped([]sdktrace.ReadOnlySpan{s})
	}
}

// ForceFlush implements sdktrace.SpanProcessor: what is queued is exported.
func (b *batcher) ForceFlush(ctx context.Context) error {
	ack := make(chan struct{})
	select {
	case b.flush <- ack:
	case <-b.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-ack:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Shutdown implements sdktrace.SpanProcessor: the queue is exported, then
// the exporter shut down.
func (b *batcher) Shutdown(ctx context.Context) error {
	b.once.Do(func() { close(b.stop) })
	select {
	case <-b.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	return b.exp.Shutdown(ctx)
}

func (b *batcher) run() {
	defer close(b.done)
	t := time.NewTicker(b.set.interval)
	defer t.Stop()
	batch := make([]sdktrace.ReadOnlySpan, 0, b.set.batch)
	for {
		select {
		case s := <-b.q:
			if batch = append(batch, s); len(batch) == b.set.batch {
				batch = b.export(batch)
			}
		case <-t.C:
			batch = b.export(batch)
		case ack := <-b.flush:
			batch = b.export(b.drain(batch))
			close(ack)
		case <-b.stop:
			b.export(b.drain(batch))
			return
		}
	}
}

// drain moves what is queued into batch, exporting full batches.
func (b *batcher) drain(batch []sdktrace.ReadOnlySpan) []sdktrace.ReadOnlySpan {
	for {
		select {
		case s := <-b.q:
			if batch = append(batch, s); len(batch) == b.set.batch {
				batch = b.export(batch)
			}
		default:
			return batch
		}
	}
}

// export sends batch and returns it emptied.
func (b *batcher) export(batch []sdktrace.ReadOnlySpan) []sdktrace.ReadOnlySpan {
	if len(batch) == 0 {
		return batch
	}
	ctx, cancel := context.WithTimeout(context.Background(), b.set.timeout)
	err := b.exp.ExportSpans(ctx, batch)
	cancel()
	switch {
	case err != nil:
		b.dropped(batch)
		if !b.failing {
			b.log.Warn("tracing: span export failed; spans are dropped until it works again", "spans", len(batch), "error", err)
		}
		b.failing = true
	case b.failing:
		b.log.Info("tracing: span export works again")
		b.failing = false
	}
	clear(batch)
	return batch[:0]
}
