// Upstream connections: Envoy's UpstreamConn (upstream.cc) and the upstream
// half of cgo.cc. Connections go through the `plainText` ORIGINAL_DST
// cluster's settings (connect timeout, max connections) and are placed on
// the workers round-robin, not on the worker of the caller.
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "host.h"

#define UWRAPPER_MAGIC 0x7550434eu
#define UWRAPPER_DEAD 0xdeadbeefu

struct cluster_cfg plaintext;

enum { U_NEW, U_CONNECTING, U_READY, U_DONE };

struct uconn {
  struct handler h;
  struct handler timer;
  atomic_int refs;
  struct worker *w;
  struct dso *lib;
  uint64_t go_conn_id;
  char addr[96];
  struct sockaddr_storage sa;
  socklen_t salen;
  int fd, tfd;
  int state;
  atomic_int closed; // UpstreamConn::closed_
  int close_pending, write_end, half_close, read_eof;
  struct buf out;
  struct uwrapper *wrapper;
  char local[64], remote[64];
};

struct uwrapper {
  unsigned magic;
  struct uconn *c;
};

static atomic_uint next_worker;

struct ufree_task {
  struct task t;
  struct uconn *c;
};

static void run_free(struct task *t) {
  struct uconn *c = ((struct ufree_task *)t)->c;
  buf_free(&c->out);
  free(c);
  free(t);
}

static void uconn_unref(struct uconn *c) {
  if (atomic_fetch_sub(&c->refs, 1) != 1) return;
  struct ufree_task *ft = xmalloc(sizeof *ft);
  ft->c = c;
  ft->t.run = run_free;
  defer_free(c->w, &ft->t);
}

static struct uwrapper *uwrapper_of(void *u) {
  struct uwrapper *wr = u;
  if (wr == NULL || wr->magic != UWRAPPER_MAGIC)
    fatal("upstream call with a %s wrapper %p", wr && wr->magic == UWRAPPER_DEAD ? "finalized" : "corrupt", u);
  return wr;
}

// parse_addr accepts what Envoy's parseInternetAddressAndPortNoThrow does:
// "a.b.c.d:port" or "[v6]:port".
static int parse_addr(struct uconn *c) {
  char host[80];
  const char *a = c->addr, *colon = strrchr(a, ':');
  if (!colon || colon == a) return -1;
  char *end;
  long port = strtol(colon + 1, &end, 10);
  if (*end || colon[1] == 0 || port < 0 || port > 65535) return -1;
  size_t hl = (size_t)(colon - a);
  if (a[0] == '[') {
    if (hl < 3 || a[hl - 1] != ']' || hl - 2 >= sizeof host) return -1;
    memcpy(host, a + 1, hl - 2);
    host[hl - 2] = 0;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&c->sa;
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons((uint16_t)port);
    if (inet_pton(AF_INET6, host, &s6->sin6_addr) != 1) return -1;
    c->salen = sizeof *s6;
    return 0;
  }
  if (hl >= sizeof host) return -1;
  memcpy(host, a, hl);
  host[hl] = 0;
  struct sockaddr_in *s4 = (struct sockaddr_in *)&c->sa;
  s4->sin_family = AF_INET;
  s4->sin_port = htons((uint16_t)port);
  if (inet_pton(AF_INET, host, &s4->sin_addr) != 1) return -1;
  c->salen = sizeof *s4;
  return 0;
}

static void stop_timer(struct uconn *c) {
  if (c->tfd < 0) return;
  epoll_ctl(c->w->epfd, EPOLL_CTL_DEL, c->tfd, NULL);
  close(c->tfd);
  c->tfd = -1;
}

static void fail(struct uconn *c, int reason, const char *why) {
  hlog(4, "onPoolFailure, addr: %s, reason: %d, %s", c->addr, reason, why);
  stop_timer(c);
  if (c->fd >= 0) {
    epoll_ctl(c->w->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
  }
  c->state = U_DONE;
  atomic_fetch_add(&counters.upstream_failures, 1);
  c->lib->on_upstream_failure(c->wrapper, reason, c->go_conn_id);
  uconn_unref(c); // the connection's own reference
}

static void close_now(struct uconn *c, int event, int reset) {
  if (atomic_load(&c->closed)) return;
  atomic_store(&c->closed, 1);
  epoll_ctl(c->w->epfd, EPOLL_CTL_DEL, c->fd, NULL);
  if (reset) {
    struct linger lg = {1, 0};
    setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  }
  close(c->fd);
  c->fd = -1;
  c->state = U_DONE;
  atomic_fetch_sub(&counters.upstream_open, 1);
  c->lib->on_upstream_event(c->wrapper, event);
  uconn_unref(c);
}

static void watch(struct uconn *c) {
  uint32_t ev = (c->close_pending || c->read_eof) ? 0 : EPOLLIN;
  if (c->out.len > c->out.off) ev |= EPOLLOUT;
  epoll_set(c->w->epfd, EPOLL_CTL_MOD, c->fd, ev, &c->h);
}

static void flush(struct uconn *c) {
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

static void ready(struct uconn *c) {
  stop_timer(c);
  c->state = U_READY;
  addr_string(c->fd, 0, c->local, sizeof c->local);
  addr_string(c->fd, 1, c->remote, sizeof c->remote);
  atomic_fetch_add(&counters.upstream_open, 1);
  epoll_set(c->w->epfd, EPOLL_CTL_MOD, c->fd, EPOLLIN, &c->h);
  c->lib->on_upstream_ready(c->wrapper, c->go_conn_id);
}

static void on_event(struct handler *h, uint32_t events) {
  struct uconn *c = (struct uconn *)h;
  if (c->state == U_DONE) return; // a stale event from this batch
  atomic_fetch_add(&c->refs, 1);
  if (c->state == U_CONNECTING) {
    int err = 0;
    socklen_t l = sizeof err;
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
    if (err) fail(c, POOL_REMOTE_FAILURE, strerror(err));
    else if (events & EPOLLOUT) ready(c);
    uconn_unref(c);
    return;
  }
  if ((events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) && c->out.len > c->out.off) flush(c);
  if (!atomic_load(&c->closed) && c->close_pending && (events & (EPOLLHUP | EPOLLERR)))
    close_now(c, EV_REMOTE_CLOSE, 0);
  if (!atomic_load(&c->closed) && !c->close_pending && !c->read_eof && (events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
    unsigned long long *s;
    int n, eof, err;
    size_t total = read_burst(c->fd, &s, &n, &eof, &err);
    if (total > 0 || (eof && c->half_close)) {
      // With half close enabled, end of stream is delivered as data.
      c->lib->on_upstream_data(c->wrapper, total, (GoUint64)(uintptr_t)s, n, eof && c->half_close);
    }
    slices_free(s, n, 0);
    if (err || (eof && !c->half_close)) close_now(c, EV_REMOTE_CLOSE, 0);
    else if (eof) {
      c->read_eof = 1;
      watch(c);
    }
  }
  uconn_unref(c);
}

static void on_timer(struct handler *h, uint32_t events) {
  (void)events;
  struct uconn *c = (struct uconn *)((char *)h - offsetof(struct uconn, timer));
  if (c->state == U_CONNECTING) fail(c, POOL_TIMEOUT, "connect timeout");
}

struct connect_task {
  struct task t;
  struct uconn *c;
};

// run_connect is UpstreamConn::connect on the chosen worker.
static void run_connect(struct task *t) {
  struct uconn *c = ((struct connect_task *)t)->c;
  free(t);
  if (!plaintext.present) {
    fail(c, POOL_LOCAL_FAILURE, "cluster not found");
    return;
  }
  if (atomic_load(&counters.upstream_open) >= plaintext.max_connections) {
    fail(c, POOL_OVERFLOW, "circuit breaker max_connections");
    return;
  }
  c->fd = socket(c->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (c->fd < 0) {
    fail(c, POOL_LOCAL_FAILURE, strerror(errno));
    return;
  }
  int one = 1;
  setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  c->state = U_CONNECTING;
  int r;
  do {
    r = connect(c->fd, (struct sockaddr *)&c->sa, c->salen);
  } while (r < 0 && errno == EINTR);
  if (r < 0 && errno != EINPROGRESS) {
    fail(c, POOL_REMOTE_FAILURE, strerror(errno));
    return;
  }
  if (epoll_set(c->w->epfd, EPOLL_CTL_ADD, c->fd, EPOLLOUT, &c->h) < 0) fatal("epoll: %s", strerror(errno));
  c->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  struct itimerspec its = {.it_value = {plaintext.connect_timeout_ms / 1000, (plaintext.connect_timeout_ms % 1000) * 1000000}};
  timerfd_settime(c->tfd, 0, &its, NULL);
  epoll_set(c->w->epfd, EPOLL_CTL_ADD, c->tfd, EPOLLIN, &c->timer);
}

// ---- the callbacks Envoy exports (cgo.cc) ----

void *envoyGoFilterUpstreamConnect(void *library_id, void *addr, uint64_t conn_id) {
  GoString *id = library_id, *a = addr;
  char lib[256];
  snprintf(lib, sizeof lib, "%.*s", (int)id->n, id->p);
  struct dso *d = dso_find(lib);
  if (!d) fatal("upstream connect: no library with id %s", lib);
  struct uconn *c = xcalloc(sizeof *c);
  if ((size_t)a->n >= sizeof c->addr) fatal("malformed IP address: %.*s", (int)a->n, a->p);
  memcpy(c->addr, a->p, (size_t)a->n);
  if (parse_addr(c) < 0) {
    // Envoy throws an EnvoyException on the calling Go thread: the process dies.
    fatal("malformed IP address: %s", c->addr);
  }
  c->h.on_event = on_event;
  c->timer.on_event = on_timer;
  c->fd = c->tfd = -1;
  c->lib = d;
  c->go_conn_id = conn_id;
  c->w = &workers[atomic_fetch_add(&next_worker, 1) % (unsigned)nworkers];
  atomic_init(&c->refs, 2); // the connection and the wrapper
  struct uwrapper *wr = xcalloc(sizeof *wr);
  wr->magic = UWRAPPER_MAGIC;
  wr->c = c;
  c->wrapper = wr;
  atomic_fetch_add(&counters.upstream_wrappers, 1);
  atomic_fetch_add(&counters.upstream_total, 1);
  struct connect_task *t = xmalloc(sizeof *t);
  t->c = c;
  t->t.run = run_connect;
  post(c->w, &t->t);
  return wr;
}

struct uwrite_task {
  struct task t;
  struct uconn *c;
  int end;
  size_t len;
  char data[];
};

static void run_write(struct task *t) {
  struct uwrite_task *wt = (struct uwrite_task *)t;
  struct uconn *c = wt->c;
  if (atomic_load(&c->closed) || c->state == U_DONE) {
    atomic_fetch_add(&counters.closed_warnings, 1);
    hlog(3, "connection has closed, addr: %s", c->addr);
  } else if (c->state != U_READY) {
    fatal("upstream write to %s before the connection is ready: Envoy dereferences a null connection", c->addr);
  } else if (!c->write_end) {
    buf_append(&c->out, wt->data, wt->len);
    if (wt->end) c->write_end = 1;
    flush(c);
  }
  uconn_unref(c);
  free(wt);
}

CAPIStatus envoyGoFilterUpstreamWrite(void *u, void *buffer_ptr, int buffer_len, int end_stream) {
  struct uconn *c = uwrapper_of(u)->c;
  if (buffer_len < 0) fatal("upstream write of %d bytes", buffer_len);
  struct uwrite_task *wt = xmalloc(sizeof *wt + (size_t)buffer_len);
  memcpy(wt->data, buffer_ptr, (size_t)buffer_len);
  wt->len = (size_t)buffer_len;
  wt->end = end_stream;
  wt->c = c;
  wt->t.run = run_write;
  atomic_fetch_add(&c->refs, 1);
  post(c->w, &wt->t);
  return CAPIOK;
}

struct uclose_task {
  struct task t;
  struct uconn *c;
  int type;
};

static void run_close(struct task *t) {
  struct uclose_task *ct = (struct uclose_task *)t;
  struct uconn *c = ct->c;
  if (atomic_load(&c->closed) || c->state == U_DONE) {
    atomic_fetch_add(&counters.closed_warnings, 1);
    hlog(3, "connection has closed, addr: %s", c->addr);
  } else if (c->state != U_READY) {
    fatal("upstream close of %s before the connection is ready: Envoy dereferences a null connection", c->addr);
  } else if ((ct->type == CLOSE_FLUSH_WRITE || ct->type == CLOSE_FLUSH_WRITE_AND_DELAY) && c->out.len > c->out.off) {
    c->close_pending = 1;
    watch(c);
  } else {
    close_now(c, EV_LOCAL_CLOSE, ct->type == CLOSE_ABORT_RESET);
  }
  uconn_unref(c);
  free(ct);
}

CAPIStatus envoyGoFilterUpstreamClose(void *u, int close_type) {
  struct uconn *c = uwrapper_of(u)->c;
  struct uclose_task *ct = xmalloc(sizeof *ct);
  ct->c = c;
  ct->type = close_type;
  ct->t.run = run_close;
  atomic_fetch_add(&c->refs, 1);
  post(c->w, &ct->t);
  return CAPIOK;
}

struct ufinalize_task {
  struct task t;
  struct uwrapper *wr;
};

static void run_finalize(struct task *t) {
  struct uwrapper *wr = ((struct ufinalize_task *)t)->wr;
  struct uconn *c = wr->c;
  if (c->state == U_READY && !atomic_load(&c->closed))
    fatal("upstream wrapper for %s finalized while the connection is open: Envoy would hand the socket back to its pool", c->addr);
  wr->magic = UWRAPPER_DEAD;
  free(wr);
  atomic_fetch_sub(&counters.upstream_wrappers, 1);
  uconn_unref(c);
  free(t);
}

void envoyGoFilterUpstreamFinalize(void *u, int reason) {
  (void)reason;
  struct uwrapper *wr = uwrapper_of(u);
  struct ufinalize_task *t = xmalloc(sizeof *t);
  t->wr = wr;
  t->t.run = run_finalize;
  post(wr->c->w, &t->t);
}

CAPIStatus envoyGoFilterUpstreamInfo(void *u, int info_type, void *ret) {
  struct uconn *c = uwrapper_of(u)->c;
  GoString *s = ret;
  switch (info_type) {
  case 0:
    s->p = c->local;
    break;
  case 1:
    s->p = c->remote;
    break;
  default:
    fatal("upstream info type %d: corrupt enum", info_type);
  }
  s->n = (ptrdiff_t)strlen(s->p);
  return CAPIOK;
}

CAPIStatus envoyGoFilterUpstreamConnEnableHalfClose(void *u, int enable_half_close) {
  struct uconn *c = uwrapper_of(u)->c;
  if (current_worker != c->w)
    fatal("EnableHalfClose for %s called off the connection's worker: Envoy does not post it", c->addr);
  if (atomic_load(&c->closed)) {
    hlog(3, "connection has closed, addr: %s", c->addr);
    return CAPIOK;
  }
  c->half_close = enable_half_close != 0;
  return CAPIOK;
}
