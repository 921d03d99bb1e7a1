// abihost plays Envoy's side of the golang network filter ABI
// (contrib/golang/filters/network in Envoy v1.36) so that the real plugin
// .so can be driven without an Envoy binary. Every behaviour mirrors a named
// piece of Envoy's source; see README.md for what is not reproduced.
#pragma once

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stddef.h>
#include <sys/socket.h>

// The real headers from the Envoy module: api.h declares the callbacks this
// program exports, so the compiler checks every signature against Envoy's.
#include "libgolang.h"

// Envoy's enums as the Go SDK numbers them (contrib/golang/common/go/api/type.go).
enum { EV_REMOTE_CLOSE = 0, EV_LOCAL_CLOSE = 1 };
enum { CLOSE_FLUSH_WRITE = 0, CLOSE_NO_FLUSH = 1, CLOSE_FLUSH_WRITE_AND_DELAY = 2, CLOSE_ABORT = 3, CLOSE_ABORT_RESET = 4 };
enum { POOL_OVERFLOW = 0, POOL_LOCAL_FAILURE = 1, POOL_REMOTE_FAILURE = 2, POOL_TIMEOUT = 3 };
enum { FILTER_CONTINUE = 0, FILTER_STOP_ITERATION = 1 };

// SLICE is the size of the slices handed to Go, as Envoy's buffers use.
#define SLICE 16384
// READ_LIMIT bounds one read burst, Envoy's default per-connection buffer limit.
#define READ_LIMIT (1024 * 1024)

// ---- the loaded plugin (Envoy's Dso::NetworkFilterDsoImpl, dso.h) ----
struct dso {
  char *id;
  char *path;
  void *handle;
  GoUint64 (*on_config)(GoUint64 id_ptr, GoUint64 id_len, GoUint64 cfg_ptr, GoUint64 cfg_len);
  GoUint64 (*on_downstream_connection)(void *w, GoUint64 name_ptr, GoUint64 name_len, GoUint64 config_id);
  GoUint64 (*on_downstream_data)(void *w, GoUint64 size, GoUint64 slices, GoInt n, GoInt end);
  void (*on_downstream_event)(void *w, GoInt event);
  GoUint64 (*on_downstream_write)(void *w, GoUint64 size, GoUint64 slices, GoInt n, GoInt end);
  void (*on_upstream_ready)(void *w, GoUint64 conn_id);
  void (*on_upstream_failure)(void *w, GoInt reason, GoUint64 conn_id);
  void (*on_upstream_data)(void *w, GoUint64 size, GoUint64 slices, GoInt n, GoInt end);
  void (*on_upstream_event)(void *w, GoInt event);
  void (*on_sema_dec)(void *w);
  struct dso *next;
};

struct dso *dso_load(const char *id, const char *path);
struct dso *dso_find(const char *id);

// ---- workers: one epoll loop each, fed by posted tasks ----
struct handler {
  void (*on_event)(struct handler *h, uint32_t events);
};

struct task {
  struct task *next;
  void (*run)(struct task *t); // runs on the worker and frees t
};

struct worker {
  int id;
  pthread_t thread;
  int epfd;
  struct handler wake; // eventfd
  int evfd;
  pthread_mutex_t mu;
  struct task *head, *tail;
  struct task *dead; // run after the current batch of events
  char *rbuf;        // READ_LIMIT bytes that reads land in
};

extern struct worker *workers;
extern int nworkers;
extern _Thread_local struct worker *current_worker;

void worker_start(struct worker *w, int id);
void post(struct worker *w, struct task *t);
// defer_free runs t on w after the batch of events being handled, so that
// events already returned by epoll never see freed memory.
void defer_free(struct worker *w, struct task *t);
void *xmalloc(size_t n);
void *xcalloc(size_t n);
char *xstrndup(const char *s, size_t n);
void fatal(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
void hlog(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
extern int log_level; // spdlog levels: 0 trace ... 5 critical, 6 off

// ---- byte buffers ----
struct buf {
  char *p;
  size_t off, len, cap;
};
void buf_append(struct buf *b, const char *p, size_t n);
void buf_free(struct buf *b);
// buf_flush writes pending bytes; it returns 0 when all are written, 1 when
// some remain (EAGAIN), -1 on a socket error.
int buf_flush(struct buf *b, int fd);

// read_burst reads up to READ_LIMIT bytes into the current worker's read
// buffer as SLICE-sized slices, like Envoy's RawBufferSocket::doRead. It
// returns the byte count and sets *eof on end of stream, *err on a socket
// error. *slices is Envoy's unsigned long long[2n] of (pointer, length),
// pointing into the buffer until the worker's next read; free() it.
size_t read_burst(int fd, unsigned long long **slices, int *n, int *eof, int *err);
// slices_of splits len bytes at p into SLICE-sized slices without copying;
// free() the result.
unsigned long long *slices_of(const char *p, size_t len, int *n);

void addr_string(int fd, int peer, char *out, size_t outlen);
int epoll_set(int epfd, int op, int fd, uint32_t events, struct handler *h);

// ---- configuration (written by the Go translator from an Envoy bootstrap) ----
struct listener {
  struct handler h;
  char *name;
  int fd;
  struct dso *lib;
  char *plugin_name;
  uint64_t config_id;
  char *bound; // "ip:port" actually bound
  struct listener *next;
};

struct cluster_cfg {
  int present;              // a cluster named plainText exists
  long connect_timeout_ms;  // its connect_timeout
  long max_connections;     // its circuit breaker
};
extern struct cluster_cfg plaintext;
extern struct listener *listeners;

// ---- connections (sock.c) ----

struct sock;

// sock_ops are what differs between downstream and upstream connections.
struct sock_ops {
  // data hands a read burst (or, with end, the end of stream) to Go.
  void (*data)(struct sock *s, size_t total, unsigned long long *slices, int n, int end);
  // closed raises the close event to Go; the socket is closed already.
  void (*closed)(struct sock *s, int event);
  // may_write and may_close run on the worker before posted work: they
  // apply Envoy's checks (connection gone, closed, not ready) and return
  // whether to go on. may_write runs the write filters too.
  int (*may_write)(struct sock *s, const char *p, size_t len, int end);
  int (*may_close)(struct sock *s);
  // free releases the connection once nothing refers to it.
  void (*free)(struct sock *s);
};

// sock is the socket part of a connection; downstream and upstream
// connections start with one.
struct sock {
  struct handler h;
  const struct sock_ops *ops;
  atomic_int refs; // the connection itself, its wrapper, posted work
  struct worker *w;
  int fd;
  atomic_int closed; // the close event was raised
  int close_pending; // a flushing close waits for the write buffer
  int write_end;     // end_stream written: shut down after the flush
  int read_eof;      // end of stream read with half close enabled
  int half_close;
  uint32_t watched; // the events s is registered for
  struct buf out;
  char local[96], remote[96];
};

void sock_ref(struct sock *s);
void sock_unref(struct sock *s);
void sock_watch(struct sock *s);
void sock_event(struct sock *s, uint32_t events);
void sock_close_now(struct sock *s, int event, int reset);
void sock_post_write(struct sock *s, const void *p, int len, int end);
void sock_post_close(struct sock *s, int type);
// sock_closed_warning logs Envoy's "connection has closed" warning and
// returns 1 if s is closed.
int sock_closed_warning(struct sock *s);
// sock_info answers a connection info call (0: local, 1: remote address).
void sock_info(struct sock *s, int info_type, void *ret);

void listener_accept(struct handler *h, uint32_t events);

// counters reported by the "stats" command
struct counters {
  atomic_long downstream_open, downstream_wrappers, downstream_total;
  atomic_long upstream_open, upstream_wrappers, upstream_total, upstream_failures;
  atomic_long closed_warnings;
  // cgo crossings, for the benchmark: calls into Go on the data path
  // (OnDownstreamData, OnUpstreamData), through the write filter
  // (OnDownstreamWrite) and the rest (connections, events, semaphores,
  // config); calls from Go to write (Downstream/UpstreamWrite); eventfd
  // wake-ups of another worker by post().
  atomic_long into_go_data, into_go_write, into_go_other, from_go_write, wakeups;
};
extern struct counters counters;
// COUNT adds one to a counter; relaxed, since only totals are read.
#define COUNT(c) atomic_fetch_add_explicit(&counters.c, 1, memory_order_relaxed)
