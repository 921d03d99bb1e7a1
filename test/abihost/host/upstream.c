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
  struct sock s;
  struct handler timer;
  struct dso *lib;
  uint64_t go_conn_id;
  char addr[96];
  struct sockaddr_storage sa;
  socklen_t salen;
  int tfd;
  int state;
  struct uwrapper *wrapper;
};

struct uwrapper {
  unsigned magic;
  struct uconn *c;
};

static atomic_uint next_worker;

static struct uwrapper *uwrapper_of(void *u) {
  struct uwrapper *wr = u;
  if (wr == NULL || wr->magic != UWRAPPER_MAGIC)
    fatal("upstream call with a %s wrapper %p", wr && wr->magic == UWRAPPER_DEAD ? "finalized" : "corrupt", u);
  return wr;
}

// ---- the connection's behaviour (sock_ops) ----

static void u_data(struct sock *s, size_t total, unsigned long long *sl, int n, int end) {
  struct uconn *c = (struct uconn *)s;
  COUNT(into_go_data);
  c->lib->on_upstream_data(c->wrapper, total, (GoUint64)(uintptr_t)sl, n, end);
}

static void u_closed(struct sock *s, int event) {
  struct uconn *c = (struct uconn *)s;
  c->state = U_DONE;
  atomic_fetch_sub(&counters.upstream_open, 1);
  COUNT(into_go_other);
  c->lib->on_upstream_event(c->wrapper, event);
}

// u_ready applies UpstreamConn's checks before posted work.
static int u_ready(struct sock *s, const char *what) {
  struct uconn *c = (struct uconn *)s;
  if (c->state == U_DONE) {
    atomic_fetch_add(&counters.closed_warnings, 1);
    hlog(3, "connection has closed, addr: %s", c->addr);
    return 0;
  }
  if (c->state != U_READY)
    fatal("upstream %s to %s before the connection is ready: Envoy dereferences a null connection", what, c->addr);
  return 1;
}

static int u_may_write(struct sock *s, const char *p, size_t len, int end) {
  (void)p, (void)len, (void)end;
  return u_ready(s, "write");
}

static int u_may_close(struct sock *s) { return u_ready(s, "close"); }

static void u_free(struct sock *s) { free(s); }

static const struct sock_ops upstream_ops = {u_data, u_closed, u_may_write, u_may_close, u_free};

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
  epoll_ctl(c->s.w->epfd, EPOLL_CTL_DEL, c->tfd, NULL);
  close(c->tfd);
  c->tfd = -1;
}

// fail is UpstreamConn::onPoolFailure: the connection never opened.
static void fail(struct uconn *c, int reason, const char *why) {
  hlog(4, "onPoolFailure, addr: %s, reason: %d, %s", c->addr, reason, why);
  stop_timer(c);
  if (c->s.fd >= 0) {
    epoll_ctl(c->s.w->epfd, EPOLL_CTL_DEL, c->s.fd, NULL);
    close(c->s.fd);
    c->s.fd = -1;
  }
  c->state = U_DONE;
  atomic_fetch_add(&counters.upstream_failures, 1);
  COUNT(into_go_other);
  c->lib->on_upstream_failure(c->wrapper, reason, c->go_conn_id);
  sock_unref(&c->s); // the connection's own reference
}

// ready is UpstreamConn::onPoolReady.
static void ready(struct uconn *c) {
  stop_timer(c);
  c->state = U_READY;
  addr_string(c->s.fd, 0, c->s.local, sizeof c->s.local);
  addr_string(c->s.fd, 1, c->s.remote, sizeof c->s.remote);
  atomic_fetch_add(&counters.upstream_open, 1);
  sock_watch(&c->s);
  COUNT(into_go_other);
  c->lib->on_upstream_ready(c->wrapper, c->go_conn_id);
}

static void on_event(struct handler *h, uint32_t events) {
  struct uconn *c = (struct uconn *)h;
  if (c->state == U_DONE) return; // a stale event from this batch
  if (c->state != U_CONNECTING) {
    sock_event(&c->s, events);
    return;
  }
  int err = 0;
  socklen_t l = sizeof err;
  getsockopt(c->s.fd, SOL_SOCKET, SO_ERROR, &err, &l);
  if (err) fail(c, POOL_REMOTE_FAILURE, strerror(err));
  else if (events & EPOLLOUT) ready(c);
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
  c->s.fd = socket(c->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (c->s.fd < 0) {
    fail(c, POOL_LOCAL_FAILURE, strerror(errno));
    return;
  }
  int one = 1;
  setsockopt(c->s.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  c->state = U_CONNECTING;
  int r;
  do {
    r = connect(c->s.fd, (struct sockaddr *)&c->sa, c->salen);
  } while (r < 0 && errno == EINTR);
  if (r < 0 && errno != EINPROGRESS) {
    fail(c, POOL_REMOTE_FAILURE, strerror(errno));
    return;
  }
  c->s.watched = EPOLLOUT;
  if (epoll_set(c->s.w->epfd, EPOLL_CTL_ADD, c->s.fd, EPOLLOUT, &c->s.h) < 0) fatal("epoll: %s", strerror(errno));
  c->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  struct itimerspec its = {.it_value = {plaintext.connect_timeout_ms / 1000, (plaintext.connect_timeout_ms % 1000) * 1000000}};
  timerfd_settime(c->tfd, 0, &its, NULL);
  epoll_set(c->s.w->epfd, EPOLL_CTL_ADD, c->tfd, EPOLLIN, &c->timer);
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
  c->s.h.on_event = on_event;
  c->s.ops = &upstream_ops;
  c->s.fd = c->tfd = -1;
  c->s.w = &workers[atomic_fetch_add(&next_worker, 1) % (unsigned)nworkers];
  atomic_init(&c->s.refs, 2); // the connection and the wrapper
  snprintf(c->s.remote, sizeof c->s.remote, "%s", c->addr);
  c->timer.on_event = on_timer;
  c->lib = d;
  c->go_conn_id = conn_id;
  struct uwrapper *wr = xcalloc(sizeof *wr);
  wr->magic = UWRAPPER_MAGIC;
  wr->c = c;
  c->wrapper = wr;
  atomic_fetch_add(&counters.upstream_wrappers, 1);
  atomic_fetch_add(&counters.upstream_total, 1);
  struct connect_task *t = xmalloc(sizeof *t);
  t->c = c;
  t->t.run = run_connect;
  post(c->s.w, &t->t);
  return wr;
}

CAPIStatus envoyGoFilterUpstreamWrite(void *u, void *buffer_ptr, int buffer_len, int end_stream) {
  COUNT(from_go_write);
  sock_post_write(&uwrapper_of(u)->c->s, buffer_ptr, buffer_len, end_stream);
  return CAPIOK;
}

CAPIStatus envoyGoFilterUpstreamClose(void *u, int close_type) {
  sock_post_close(&uwrapper_of(u)->c->s, close_type);
  return CAPIOK;
}

struct ufinalize_task {
  struct task t;
  struct uwrapper *wr;
};

static void run_finalize(struct task *t) {
  struct uwrapper *wr = ((struct ufinalize_task *)t)->wr;
  struct uconn *c = wr->c;
  if (c->state == U_READY)
    fatal("upstream wrapper for %s finalized while the connection is open: Envoy would hand the socket back to its pool", c->addr);
  wr->magic = UWRAPPER_DEAD;
  free(wr);
  atomic_fetch_sub(&counters.upstream_wrappers, 1);
  sock_unref(&c->s);
  free(t);
}

void envoyGoFilterUpstreamFinalize(void *u, int reason) {
  (void)reason;
  struct uwrapper *wr = uwrapper_of(u);
  // The destructor runs on the connection's worker, after work already posted.
  struct ufinalize_task *t = xmalloc(sizeof *t);
  t->wr = wr;
  t->t.run = run_finalize;
  post(wr->c->s.w, &t->t);
}

CAPIStatus envoyGoFilterUpstreamInfo(void *u, int info_type, void *ret) {
  sock_info(&uwrapper_of(u)->c->s, info_type, ret);
  return CAPIOK;
}

CAPIStatus envoyGoFilterUpstreamConnEnableHalfClose(void *u, int enable_half_close) {
  struct uconn *c = uwrapper_of(u)->c;
  if (current_worker != c->s.w)
    fatal("EnableHalfClose for %s called off the connection's worker: Envoy does not post it", c->addr);
  if (c->state == U_DONE) {
    hlog(3, "connection has closed, addr: %s", c->addr);
    return CAPIOK;
  }
  c->s.half_close = enable_half_close != 0;
  return CAPIOK;
}
