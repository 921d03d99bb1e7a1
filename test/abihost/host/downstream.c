// Downstream connections: Envoy's Filter (golang.cc) and the downstream
// half of cgo.cc.
//
// The Go side holds a wrapper (Envoy's FilterWrapper) whose weak pointer
// to the filter fails once the connection is destroyed; here the wrapper
// holds a reference on the connection and reads its `gone` flag. Every
// Go-to-C call copies what it needs and posts the work to the
// connection's worker.
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "host.h"

#define WRAPPER_MAGIC 0x6f57444eu
#define WRAPPER_DEAD 0xdeadbeefu

struct kv {
  char *key, *value;
  struct kv *next;
};

struct dconn {
  struct handler h;
  atomic_int refs;
  atomic_int gone; // the filter is destroyed: calls return CAPIFilterIsGone
  struct worker *w;
  struct listener *l;
  int fd;
  atomic_int closed; // Filter::closed_: the close event was raised
  int close_pending; // FlushWrite close waiting for the write buffer
  int write_end;     // end_stream written: shut down after the flush
  struct buf out;
  struct dwrapper *wrapper;
  char local[64], remote[64];
  pthread_mutex_t mu; // Filter::mutex_
  struct kv *state;   // filter state (string accessors)
};

struct dwrapper {
  unsigned magic;
  struct dconn *c;
  char *str; // anchors a string handed to Go until the next call
};

struct free_task {
  struct task t;
  struct dconn *c;
};

static void run_free(struct task *t) {
  struct dconn *c = ((struct free_task *)t)->c;
  for (struct kv *k = c->state, *n; k; k = n) {
    n = k->next;
    free(k->key);
    free(k->value);
    free(k);
  }
  buf_free(&c->out);
  pthread_mutex_destroy(&c->mu);
  free(c);
  free(t);
}

static void dconn_unref(struct dconn *c) {
  if (atomic_fetch_sub(&c->refs, 1) != 1) return;
  struct free_task *ft = xmalloc(sizeof *ft);
  ft->c = c;
  ft->t.run = run_free;
  defer_free(c->w, &ft->t);
}

static struct dwrapper *wrapper_of(void *f) {
  struct dwrapper *wr = f;
  if (wr == NULL || wr->magic != WRAPPER_MAGIC)
    fatal("downstream call with a %s wrapper %p", wr && wr->magic == WRAPPER_DEAD ? "finalized" : "corrupt", f);
  return wr;
}

static void watch(struct dconn *c) {
  uint32_t ev = c->close_pending ? 0 : EPOLLIN;
  if (c->out.len > c->out.off) ev |= EPOLLOUT;
  epoll_set(c->w->epfd, EPOLL_CTL_MOD, c->fd, ev, &c->h);
}

// close_now closes the socket and raises the close event, then destroys
// the filter (Envoy defers that to the end of the loop iteration).
static void close_now(struct dconn *c, int event, int reset) {
  if (atomic_load(&c->closed)) return;
  pthread_mutex_lock(&c->mu);
  atomic_store(&c->closed, 1);
  pthread_mutex_unlock(&c->mu);
  epoll_ctl(c->w->epfd, EPOLL_CTL_DEL, c->fd, NULL);
  if (reset) {
    struct linger lg = {1, 0};
    setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  }
  close(c->fd);
  c->fd = -1;
  atomic_fetch_sub(&counters.downstream_open, 1);
  c->l->lib->on_downstream_event(c->wrapper, event);
  atomic_store(&c->gone, 1);
  dconn_unref(c);
}

static void flush(struct dconn *c) {
  int r = buf_flush(&c->out, c->fd);
  if (r < 0) {
    close_now(c, EV_REMOTE_CLOSE, 0);
    return;
  }
  if (r == 0 && c->write_end) shutdown(c->fd, SHUT_WR);
  if (r == 0 && c->close_pending) {
    close_now(c, EV_LOCAL_CLOSE, 0);
    return;
  }
  watch(c);
}

static void on_event(struct handler *h, uint32_t events) {
  struct dconn *c = (struct dconn *)h;
  if (atomic_load(&c->closed)) return; // a stale event from this batch
  atomic_fetch_add(&c->refs, 1);
  if ((events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) && c->out.len > c->out.off) flush(c);
  if (!atomic_load(&c->closed) && c->close_pending && (events & (EPOLLHUP | EPOLLERR)))
    close_now(c, EV_REMOTE_CLOSE, 0);
  if (!atomic_load(&c->closed) && !c->close_pending && (events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
    unsigned long long *s;
    int n, eof, err;
    size_t total = read_burst(c->fd, &s, &n, &eof, &err);
    if (total > 0) {
      // Envoy drains its read buffer after onData whatever Go returns.
      c->l->lib->on_downstream_data(c->wrapper, total, (GoUint64)(uintptr_t)s, n, 0);
    }
    slices_free(s, n, 0);
    if (eof || err) close_now(c, EV_REMOTE_CLOSE, 0);
  }
  dconn_unref(c);
}

void listener_accept(struct handler *h, uint32_t events) {
  (void)events;
  struct listener *l = (struct listener *)h;
  for (;;) {
    int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) hlog(4, "accept: %s", strerror(errno));
      return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); // as Envoy's listeners do
    struct dconn *c = xcalloc(sizeof *c);
    c->h.on_event = on_event;
    atomic_init(&c->refs, 2); // the connection and the wrapper
    c->w = current_worker;
    c->l = l;
    c->fd = fd;
    pthread_mutex_init(&c->mu, NULL);
    addr_string(fd, 0, c->local, sizeof c->local);
    addr_string(fd, 1, c->remote, sizeof c->remote);
    struct dwrapper *wr = xcalloc(sizeof *wr);
    wr->magic = WRAPPER_MAGIC;
    wr->c = c;
    c->wrapper = wr;
    atomic_fetch_add(&counters.downstream_open, 1);
    atomic_fetch_add(&counters.downstream_wrappers, 1);
    atomic_fetch_add(&counters.downstream_total, 1);
    if (epoll_set(c->w->epfd, EPOLL_CTL_ADD, fd, EPOLLIN, &c->h) < 0) fatal("epoll add: %s", strerror(errno));
    l->lib->on_downstream_connection(wr, (GoUint64)(uintptr_t)l->plugin_name, strlen(l->plugin_name), l->config_id);
  }
}

// ---- posted work ----

struct write_task {
  struct task t;
  struct dconn *c;
  int end;
  size_t len;
  char data[];
};

static void run_write(struct task *t) {
  struct write_task *wt = (struct write_task *)t;
  struct dconn *c = wt->c;
  if (atomic_load(&c->gone)) {
    // weak_ptr.lock() failed: dropped silently
  } else if (atomic_load(&c->closed)) {
    atomic_fetch_add(&counters.closed_warnings, 1);
    hlog(3, "connection has closed, addr: %s", c->remote);
  } else if (c->write_end) {
    hlog(0, "error: write data after end_stream");
  } else {
    // Connection::write runs the write filters first: OnDownstreamWrite
    // sees every write, and StopIteration drops the data.
    int n;
    unsigned long long *s = slices_of(wt->data, wt->len, &n);
    GoUint64 st = c->l->lib->on_downstream_write(c->wrapper, wt->len, (GoUint64)(uintptr_t)s, n, wt->end);
    slices_free(s, n, 0);
    if (st != FILTER_STOP_ITERATION && !atomic_load(&c->closed)) {
      buf_append(&c->out, wt->data, wt->len);
      if (wt->end) c->write_end = 1;
      flush(c);
    }
  }
  dconn_unref(c);
  free(wt);
}

struct close_task {
  struct task t;
  struct dconn *c;
  int type;
};

static void run_close(struct task *t) {
  struct close_task *ct = (struct close_task *)t;
  struct dconn *c = ct->c;
  if (atomic_load(&c->gone)) {
  } else if (atomic_load(&c->closed)) {
    atomic_fetch_add(&counters.closed_warnings, 1);
    hlog(3, "connection has closed, addr: %s", c->remote);
  } else if ((ct->type == CLOSE_FLUSH_WRITE || ct->type == CLOSE_FLUSH_WRITE_AND_DELAY) && c->out.len > c->out.off) {
    c->close_pending = 1;
    watch(c);
  } else {
    close_now(c, EV_LOCAL_CLOSE, ct->type == CLOSE_ABORT_RESET);
  }
  dconn_unref(c);
  free(ct);
}

struct finalize_task {
  struct task t;
  struct dwrapper *wr;
};

static void delete_wrapper(struct dwrapper *wr) {
  struct dconn *c = wr->c;
  if (!atomic_load(&c->closed))
    fatal("downstream wrapper finalized while its connection %s is open: Envoy would call Go with a dangling wrapper", c->remote);
  wr->magic = WRAPPER_DEAD;
  free(wr->str);
  free(wr);
  atomic_fetch_sub(&counters.downstream_wrappers, 1);
  dconn_unref(c);
}

static void run_finalize(struct task *t) {
  struct finalize_task *ft = (struct finalize_task *)t;
  delete_wrapper(ft->wr);
  free(ft);
}

// ---- the callbacks Envoy exports (cgo.cc) ----

CAPIStatus envoyGoFilterDownstreamWrite(void *f, void *buffer_ptr, int buffer_len, int end_stream) {
  struct dwrapper *wr = wrapper_of(f);
  struct dconn *c = wr->c;
  if (atomic_load(&c->gone)) return CAPIFilterIsGone;
  if (buffer_len < 0) fatal("downstream write of %d bytes", buffer_len);
  struct write_task *wt = xmalloc(sizeof *wt + (size_t)buffer_len);
  memcpy(wt->data, buffer_ptr, (size_t)buffer_len); // Go's bytes are copied at once
  wt->len = (size_t)buffer_len;
  wt->end = end_stream;
  wt->c = c;
  wt->t.run = run_write;
  atomic_fetch_add(&c->refs, 1);
  post(c->w, &wt->t);
  return CAPIOK;
}

CAPIStatus envoyGoFilterDownstreamClose(void *f, int close_type) {
  struct dwrapper *wr = wrapper_of(f);
  struct dconn *c = wr->c;
  if (atomic_load(&c->gone)) return CAPIFilterIsGone;
  struct close_task *ct = xmalloc(sizeof *ct);
  ct->c = c;
  ct->type = close_type;
  ct->t.run = run_close;
  atomic_fetch_add(&c->refs, 1);
  post(c->w, &ct->t);
  return CAPIOK;
}

void envoyGoFilterDownstreamFinalize(void *f, int reason) {
  (void)reason;
  struct dwrapper *wr = wrapper_of(f);
  if (!atomic_load(&wr->c->gone)) {
    // The destructor runs on the worker, after work already posted.
    struct finalize_task *ft = xmalloc(sizeof *ft);
    ft->wr = wr;
    ft->t.run = run_finalize;
    post(wr->c->w, &ft->t);
    return;
  }
  delete_wrapper(wr);
}

CAPIStatus envoyGoFilterDownstreamInfo(void *f, int info_type, void *ret) {
  struct dwrapper *wr = wrapper_of(f);
  struct dconn *c = wr->c;
  if (atomic_load(&c->gone)) return CAPIFilterIsGone;
  GoString *s = ret;
  switch (info_type) {
  case 0:
    s->p = c->local;
    break;
  case 1:
    s->p = c->remote;
    break;
  default:
    fatal("downstream info type %d: corrupt enum", info_type);
  }
  s->n = (ptrdiff_t)strlen(s->p);
  return CAPIOK;
}

// ---- filter state ----

static void state_set(struct dconn *c, const char *k, size_t kl, const char *v, size_t vl) {
  for (struct kv *e = c->state; e; e = e->next) {
    if (strlen(e->key) == kl && memcmp(e->key, k, kl) == 0) {
      // FilterState::setData on a read-only key is an error in Envoy; the
      // Go SDK always sets Mutable by default, so replacing is the model.
      free(e->value);
      e->value = xstrndup(v, vl);
      return;
    }
  }
  struct kv *e = xmalloc(sizeof *e);
  e->key = xstrndup(k, kl);
  e->value = xstrndup(v, vl);
  e->next = c->state;
  c->state = e;
}

static const char *state_get(struct dconn *c, const char *k, size_t kl) {
  for (struct kv *e = c->state; e; e = e->next)
    if (strlen(e->key) == kl && memcmp(e->key, k, kl) == 0) return e->value;
  return NULL;
}

struct state_task {
  struct task t;
  struct dconn *c;
  char *key, *value;
  GoString *out; // get only: Go's string, waiting on the semaphore
};

static void run_state_set(struct task *t) {
  struct state_task *st = (struct state_task *)t;
  struct dconn *c = st->c;
  if (!atomic_load(&c->gone) && !atomic_load(&c->closed)) {
    pthread_mutex_lock(&c->mu);
    state_set(c, st->key, strlen(st->key), st->value, strlen(st->value));
    pthread_mutex_unlock(&c->mu);
  } else {
    hlog(2, "golang filter has gone or destroyed in setStringFilterState");
  }
  dconn_unref(c);
  free(st->key);
  free(st->value);
  free(st);
}

static void answer_get(struct dconn *c, const char *k, size_t kl, GoString *out) {
  const char *v = state_get(c, k, kl);
  if (v) {
    free(c->wrapper->str);
    c->wrapper->str = xstrndup(v, strlen(v));
    out->p = c->wrapper->str;
    out->n = (ptrdiff_t)strlen(v);
  }
}

static void run_state_get(struct task *t) {
  struct state_task *st = (struct state_task *)t;
  struct dconn *c = st->c;
  if (!atomic_load(&c->gone) && !atomic_load(&c->closed)) {
    answer_get(c, st->key, strlen(st->key), st->out);
    c->l->lib->on_sema_dec(c->wrapper);
  } else {
    // Envoy logs and never wakes the waiting goroutine.
    hlog(2, "golang filter has gone or destroyed in setStringFilterState");
  }
  dconn_unref(c);
  free(st->key);
  free(st);
}

CAPIStatus envoyGoFilterSetFilterState(void *f, void *key, void *value, int state_type, int life_span,
                                       int stream_sharing) {
  (void)state_type, (void)life_span, (void)stream_sharing;
  struct dwrapper *wr = wrapper_of(f);
  struct dconn *c = wr->c;
  if (atomic_load(&c->gone)) return CAPIFilterIsGone;
  GoString *k = key, *v = value;
  pthread_mutex_lock(&c->mu);
  if (atomic_load(&c->closed)) {
    pthread_mutex_unlock(&c->mu);
    hlog(3, "connection has closed, addr: %s", c->remote);
    return CAPIFilterIsDestroy;
  }
  if (current_worker == c->w) {
    state_set(c, k->p, (size_t)k->n, v->p, (size_t)v->n);
  } else {
    struct state_task *st = xcalloc(sizeof *st);
    st->c = c;
    st->key = xstrndup(k->p, (size_t)k->n);
    st->value = xstrndup(v->p, (size_t)v->n);
    st->t.run = run_state_set;
    atomic_fetch_add(&c->refs, 1);
    post(c->w, &st->t);
  }
  pthread_mutex_unlock(&c->mu);
  return CAPIOK;
}

CAPIStatus envoyGoFilterGetFilterState(void *f, void *key, void *value) {
  struct dwrapper *wr = wrapper_of(f);
  struct dconn *c = wr->c;
  if (atomic_load(&c->gone)) return CAPIFilterIsGone;
  GoString *k = key;
  CAPIStatus res = CAPIOK;
  pthread_mutex_lock(&c->mu);
  if (atomic_load(&c->closed)) {
    res = CAPIFilterIsDestroy;
  } else if (current_worker == c->w) {
    answer_get(c, k->p, (size_t)k->n, value);
  } else {
    struct state_task *st = xcalloc(sizeof *st);
    st->c = c;
    st->key = xstrndup(k->p, (size_t)k->n);
    st->out = value;
    st->t.run = run_state_get;
    atomic_fetch_add(&c->refs, 1);
    post(c->w, &st->t);
    res = CAPIYield;
  }
  pthread_mutex_unlock(&c->mu);
  return res;
}
