// Downstream connections: Envoy's Filter (golang.cc) and the downstream
// half of cgo.cc.
//
// The Go side holds a wrapper (Envoy's FilterWrapper) whose weak pointer
// to the filter fails once the connection is destroyed; here the wrapper
// holds a reference on the connection and reads its `gone` flag.
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
  struct sock s;
  atomic_int gone; // the filter is destroyed: calls return CAPIFilterIsGone
  struct listener *l;
  struct dwrapper *wrapper;
  pthread_mutex_t mu; // Filter::mutex_, for the filter state
  struct kv *state;   // filter state (string accessors)
};

struct dwrapper {
  unsigned magic;
  struct dconn *c;
  char *str; // anchors a string handed to Go until the next call
};

static struct dwrapper *wrapper_of(void *f) {
  struct dwrapper *wr = f;
  if (wr == NULL || wr->magic != WRAPPER_MAGIC)
    fatal("downstream call with a %s wrapper %p", wr && wr->magic == WRAPPER_DEAD ? "finalized" : "corrupt", f);
  return wr;
}

// ---- the connection's behaviour (sock_ops) ----

static void d_data(struct sock *s, size_t total, unsigned long long *sl, int n, int end) {
  struct dconn *c = (struct dconn *)s;
  COUNT(into_go_data);
  c->l->lib->on_downstream_data(c->wrapper, total, (GoUint64)(uintptr_t)sl, n, end);
}

static void d_closed(struct sock *s, int event) {
  struct dconn *c = (struct dconn *)s;
  atomic_fetch_sub(&counters.downstream_open, 1);
  COUNT(into_go_other);
  c->l->lib->on_downstream_event(c->wrapper, event);
  // Envoy destroys the filter after the close event; weak pointers fail
  // from then on.
  atomic_store(&c->gone, 1);
}

static int d_may_write(struct sock *s, const char *p, size_t len, int end) {
  struct dconn *c = (struct dconn *)s;
  if (atomic_load(&c->gone)) return 0; // weak_ptr.lock() failed: dropped silently
  if (sock_closed_warning(s)) return 0;
  // Connection::write runs the write filters first: OnDownstreamWrite sees
  // every write, and StopIteration drops the data.
  int n;
  unsigned long long *sl = slices_of(p, len, &n);
  COUNT(into_go_write);
  GoUint64 st = c->l->lib->on_downstream_write(c->wrapper, len, (GoUint64)(uintptr_t)sl, n, end);
  free(sl);
  return st != FILTER_STOP_ITERATION && !atomic_load(&s->closed);
}

static int d_may_close(struct sock *s) {
  struct dconn *c = (struct dconn *)s;
  return !atomic_load(&c->gone) && !sock_closed_warning(s);
}

static void d_free(struct sock *s) {
  struct dconn *c = (struct dconn *)s;
  for (struct kv *k = c->state, *n; k; k = n) {
    n = k->next;
    free(k->key);
    free(k->value);
    free(k);
  }
  pthread_mutex_destroy(&c->mu);
  free(c);
}

static const struct sock_ops downstream_ops = {d_data, d_closed, d_may_write, d_may_close, d_free};

static void on_event(struct handler *h, uint32_t events) { sock_event((struct sock *)h, events); }

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
    c->s.h.on_event = on_event;
    c->s.ops = &downstream_ops;
    atomic_init(&c->s.refs, 2); // the connection and the wrapper
    c->s.w = current_worker;
    c->s.fd = fd;
    c->l = l;
    pthread_mutex_init(&c->mu, NULL);
    addr_string(fd, 0, c->s.local, sizeof c->s.local);
    addr_string(fd, 1, c->s.remote, sizeof c->s.remote);
    struct dwrapper *wr = xcalloc(sizeof *wr);
    wr->magic = WRAPPER_MAGIC;
    wr->c = c;
    c->wrapper = wr;
    atomic_fetch_add(&counters.downstream_open, 1);
    atomic_fetch_add(&counters.downstream_wrappers, 1);
    atomic_fetch_add(&counters.downstream_total, 1);
    c->s.watched = EPOLLIN;
    if (epoll_set(c->s.w->epfd, EPOLL_CTL_ADD, fd, EPOLLIN, &c->s.h) < 0) fatal("epoll add: %s", strerror(errno));
    COUNT(into_go_other);
    l->lib->on_downstream_connection(wr, (GoUint64)(uintptr_t)l->plugin_name, strlen(l->plugin_name), l->config_id);
  }
}

// ---- the callbacks Envoy exports (cgo.cc) ----

CAPIStatus envoyGoFilterDownstreamWrite(void *f, void *buffer_ptr, int buffer_len, int end_stream) {
  COUNT(from_go_write);
  struct dconn *c = wrapper_of(f)->c;
  if (atomic_load(&c->gone)) return CAPIFilterIsGone;
  sock_post_write(&c->s, buffer_ptr, buffer_len, end_stream);
  return CAPIOK;
}

CAPIStatus envoyGoFilterDownstreamClose(void *f, int close_type) {
  struct dconn *c = wrapper_of(f)->c;
  if (atomic_load(&c->gone)) return CAPIFilterIsGone;
  sock_post_close(&c->s, close_type);
  return CAPIOK;
}

struct finalize_task {
  struct task t;
  struct dwrapper *wr;
};

static void delete_wrapper(struct dwrapper *wr) {
  struct dconn *c = wr->c;
  if (!atomic_load(&c->s.closed))
    fatal("downstream wrapper finalized while its connection %s is open: Envoy would call Go with a dangling wrapper", c->s.remote);
  wr->magic = WRAPPER_DEAD;
  free(wr->str);
  free(wr);
  atomic_fetch_sub(&counters.downstream_wrappers, 1);
  sock_unref(&c->s);
}

static void run_finalize(struct task *t) {
  delete_wrapper(((struct finalize_task *)t)->wr);
  free(t);
}

void envoyGoFilterDownstreamFinalize(void *f, int reason) {
  (void)reason;
  struct dwrapper *wr = wrapper_of(f);
  if (!atomic_load(&wr->c->gone)) {
    // The destructor runs on the worker, after work already posted.
    struct finalize_task *ft = xmalloc(sizeof *ft);
    ft->wr = wr;
    ft->t.run = run_finalize;
    post(wr->c->s.w, &ft->t);
    return;
  }
  delete_wrapper(wr);
}

CAPIStatus envoyGoFilterDownstreamInfo(void *f, int info_type, void *ret) {
  struct dconn *c = wrapper_of(f)->c;
  if (atomic_load(&c->gone)) return CAPIFilterIsGone;
  sock_info(&c->s, info_type, ret);
  return CAPIOK;
}

// ---- filter state ----

static struct kv *state_find(struct dconn *c, const char *k, size_t kl) {
  for (struct kv *e = c->state; e; e = e->next)
    if (strlen(e->key) == kl && memcmp(e->key, k, kl) == 0) return e;
  return NULL;
}

static void state_set(struct dconn *c, const char *k, size_t kl, const char *v, size_t vl) {
  struct kv *e = state_find(c, k, kl);
  if (!e) {
    e = xcalloc(sizeof *e);
    e->key = xstrndup(k, kl);
    e->next = c->state;
    c->state = e;
  }
  free(e->value);
  e->value = xstrndup(v, vl);
}

static void answer_get(struct dconn *c, const char *k, size_t kl, GoString *out) {
  struct kv *e = state_find(c, k, kl);
  if (e) {
    free(c->wrapper->str);
    c->wrapper->str = xstrndup(e->value, strlen(e->value));
    out->p = c->wrapper->str;
    out->n = (ptrdiff_t)strlen(e->value);
  }
}

struct state_task {
  struct task t;
  struct dconn *c;
  char *key, *value;
  GoString *out; // get only: Go's string, waiting on the semaphore
};

static int alive(struct dconn *c) { return !atomic_load(&c->gone) && !atomic_load(&c->s.closed); }

static void run_state(struct task *t) {
  struct state_task *st = (struct state_task *)t;
  struct dconn *c = st->c;
  if (!alive(c)) {
    // For a get, Envoy logs and never wakes the waiting goroutine.
    hlog(2, "golang filter has gone or destroyed in setStringFilterState");
  } else if (st->out == NULL) {
    pthread_mutex_lock(&c->mu);
    state_set(c, st->key, strlen(st->key), st->value, strlen(st->value));
    pthread_mutex_unlock(&c->mu);
  } else {
    answer_get(c, st->key, strlen(st->key), st->out);
    COUNT(into_go_other);
    c->l->lib->on_sema_dec(c->wrapper);
  }
  sock_unref(&c->s);
  free(st->key);
  free(st->value);
  free(st);
}

static void post_state(struct dconn *c, GoString *k, GoString *v, GoString *out) {
  struct state_task *st = xcalloc(sizeof *st);
  st->c = c;
  st->key = xstrndup(k->p, (size_t)k->n);
  if (v) st->value = xstrndup(v->p, (size_t)v->n);
  st->out = out;
  st->t.run = run_state;
  sock_ref(&c->s);
  post(c->s.w, &st->t);
}

CAPIStatus envoyGoFilterSetFilterState(void *f, void *key, void *value, int state_type, int life_span,
                                       int stream_sharing) {
  (void)state_type, (void)life_span, (void)stream_sharing;
  struct dconn *c = wrapper_of(f)->c;
  if (atomic_load(&c->gone)) return CAPIFilterIsGone;
  CAPIStatus res = CAPIOK;
  pthread_mutex_lock(&c->mu);
  if (atomic_load(&c->s.closed)) {
    hlog(3, "connection has closed, addr: %s", c->s.remote);
    res = CAPIFilterIsDestroy;
  } else if (current_worker == c->s.w) {
    GoString *k = key, *v = value;
    state_set(c, k->p, (size_t)k->n, v->p, (size_t)v->n);
  } else {
    post_state(c, key, value, NULL);
  }
  pthread_mutex_unlock(&c->mu);
  return res;
}

CAPIStatus envoyGoFilterGetFilterState(void *f, void *key, void *value) {
  struct dconn *c = wrapper_of(f)->c;
  if (atomic_load(&c->gone)) return CAPIFilterIsGone;
  CAPIStatus res = CAPIOK;
  pthread_mutex_lock(&c->mu);
  if (atomic_load(&c->s.closed)) {
    res = CAPIFilterIsDestroy;
  } else if (current_worker == c->s.w) {
    GoString *k = key;
    answer_get(c, k->p, (size_t)k->n, value);
  } else {
    post_state(c, key, NULL, value);
    res = CAPIYield;
  }
  pthread_mutex_unlock(&c->mu);
  return res;
}
