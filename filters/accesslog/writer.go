package accesslog

import (
	"io"
	"log/slog"
	"os"
	"sync"
	"time"
)

// Queue and batch bounds of a writer.
const (
	// QueueLen is how many lines wait for a writer at most; more are
	// dropped and counted.
	QueueLen = 4096
	// batchBytes is how much a writer gathers into one write.
	batchBytes = 64 << 10
	// maxPooled is the largest line buffer kept for reuse.
	maxPooled = 16 << 10
	// closeWait is how long the last Close waits for the queue to drain
	// before closing the file under a blocked write.
	closeWait = 5 * time.Second
)

// line is a pooled line buffer (tmp is scratch space for JSON values).
type line struct{ b, tmp []byte }

var linePool = sync.Pool{New: func() any { return &line{b: make([]byte, 0, 512), tmp: make([]byte, 0, 128)} }}

func getLine() *line { return linePool.Get().(*line) }

func putLine(l *line) {
	if cap(l.b) > maxPooled || cap(l.tmp) > maxPooled {
		return
	}
	l.b, l.tmp = l.b[:0], l.tmp[:0]
	linePool.Put(l)
}

// writer owns one output (a file path, stdout, stderr): one goroutine
// takes lines off a bounded queue and writes them in batches. Writers are
// shared, by key, by every logger of the process (see acquire).
type writer struct {
	key  string
	out  io.Writer
	file io.Closer // nil: not ours to close (stdout, stderr)
	log  *slog.Logger

	q    chan *line
	stop chan struct{} // closed when the last reference is released
	done chan struct{} // closed when the goroutine has returned

	refs int // guarded by writers.mu
}

var writers = struct {
	mu sync.Mutex
	m  map[string]*writer
}{m: map[string]*writer{}}

// opener opens the output of a key.
type opener func(key string) (out io.Writer, closer io.Closer, err error)

// openPath opens a file in append mode, creating it; /dev/stdout and
// /dev/stderr are the process's own.
func openPath(path string) (io.Writer, io.Closer, error) {
	switch path {
	case "/dev/stdout":
		return os.Stdout, nil, nil
	case "/dev/stderr":
		return os.Stderr, nil, nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, nil, err
	}
	return f, f, nil
}

// acquire returns the writer of key, opening it with open if no logger
// holds it yet; release it when done.
func acquire(key string, open opener, log *slog.Logger) (*writer, error) {
	writers.mu.Lock()
	defer writers.mu.Unlock()
	if w := writers.m[key]; w != nil {
		w.refs++
		return w, nil
	}
	out, c, err := open(key)
	if err != nil {
		return nil, err
	}
	w := &writer{key: key, out: out, file: c, log: log, q: make(chan *line, QueueLen),
		stop: make(chan struct{}), done: make(chan struct{}), refs: 1}
	writers.m[key] = w
	go w.run()
	return w, nil
}

// enqueue hands l to the writer without blocking; it reports false (and
// l is the caller's still) when the queue is full or the writer stopped.
func (w *writer) enqueue(l *line) bool {
	select {
	case <-w.stop:
		return false
	default:
	}
	select {
	case w.q <- l:
		return true
	default:
		return false
	}
}

// release drops a reference; the last one flushes the queue and closes
// the output.
func (w *writer) release() {
	writers.mu.Lock()
	w.refs--
	last := w.refs == 0
	if last {
		delete(writers.m, w.key)
	}
	writers.mu.Unlock()
	if !last {
		return
	}
	close(w.stop)
	select {
	case <-w.done:
	case <-time.After(closeWait):
		// A write is blocked (a pipe nobody reads): closing the file
		// makes it fail, and the goroutine ends.
		w.log.Warn("access log: flushing took too long; closing the output", "path", w.key)
	}
	if w.file != nil {
		_ = w.file.Close()
	}
	<-w.done
}

func (w *writer) run() {
	defer close(w.done)
	batch := make([]byte, 0, batchBytes)
	var lastErr string
	write := func() {
		if len(batch) == 0 {
			return
		}
		if _, err := w.out.Write(batch); err != nil && err.Error() != lastErr {
			lastErr = err.Error()
			w.log.Warn("access log: write failed", "path", w.key, "error", err)
		}
		if cap(batch) > 4*batchBytes {
			batch = make([]byte, 0, batchBytes)
		}
		batch = batch[:0]
	}
	for {
		select {
		case l := <-w.q:
			batch = append(batch, l.b...)
			putLine(l)
		case <-w.stop:
			// Flush what is queued; later lines are not taken.
			for {
				select {
				case l := <-w.q:
					batch = append(batch, l.b...)
					putLine(l)
					if len(batch) >= batchBytes {
						write()
					}
					continue
				default:
				}
				write()
				return
			}
		}
		// Gather what else is queued, then write once.
	gather:
		for len(batch) < batchBytes {
			select {
			case l := <-w.q:
				batch = append(batch, l.b...)
				putLine(l)
			default:
				break gather
			}
		}
		write()
	}
}
