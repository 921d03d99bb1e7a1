// Sockets owned by one worker: what Envoy's ConnectionImpl does for both
// downstream and upstream connections (read bursts, buffered writes, the
// close types) and the copy-and-post of Go's writes and closes.
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "host.h"

struct free_task {
  struct task t;
  struct sock *s;
};

static void run_free(struct task *t) {
  struct sock *s = ((struct free_task *)t)->s;
  buf_free(&s->out);
  s->ops->free(s);
  free(t);
}

void sock_ref(struct sock *s) { atomic_fetch_add(&s->refs, 1); }

void sock_unref(struct sock *s) {
  if (atomic_fetch_sub(&s->refs, 1) != 1) return;
  struct free_task *ft = xmalloc(sizeof *ft);
  ft->s = s;
  ft->t.run = run_free;
  defer_free(s->w, &ft->t);
}

// sock_watch registers the events s waits for now, if they changed: Envoy
// registers its sockets once (edge-triggered) and makes no epoll_ctl per
// write, so neither does the host when a flush leaves nothing behind.
void sock_watch(struct sock *s) {
  uint32_t ev = (s->close_pending || s->read_eof) ? 0 : EPOLLIN;
  if (s->out.len > s->out.off) ev |= EPOLLOUT;
  if (ev == s->watched) return;
  s->watched = ev;
  epoll_set(s->w->epfd, EPOLL_CTL_MOD, s->fd, ev, &s->h);
}

void sock_close_now(struct sock *s, int event, int reset) {
  if (atomic_load(&s->closed)) return;
  atomic_store(&s->closed, 1);
  epoll_ctl(s->w->epfd, EPOLL_CTL_DEL, s->fd, NULL);
  if (reset) {
    struct linger lg = {1, 0};
    setsockopt(s->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  }
  close(s->fd);
  s->fd = -1;
  s->ops->closed(s, event);
  sock_unref(s); // the connection's own reference
}

static void flush(struct sock *s) {
  int r = buf_flush(&s->out, s->fd);
  if (r < 0) {
    sock_close_now(s, EV_REMOTE_CLOSE, 0); // a write error is a remote close in Envoy
    return;
  }
  if (r == 0 && s->write_end) shutdown(s->fd, SHUT_WR);
  if (r == 0 && s->close_pending) {
    sock_close_now(s, EV_LOCAL_CLOSE, 0);
    return;
  }
  sock_watch(s);
}

void sock_event(struct sock *s, uint32_t events) {
  if (atomic_load(&s->closed)) return; // a stale event from this batch
  sock_ref(s);
  if ((events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) && s->out.len > s->out.off) flush(s);
  if (!atomic_load(&s->closed) && s->close_pending && (events & (EPOLLHUP | EPOLLERR)))
    sock_close_now(s, EV_REMOTE_CLOSE, 0);
  if (!atomic_load(&s->closed) && !s->close_pending && !s->read_eof && (events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
    unsigned long long *sl;
    int n, eof, err;
    size_t total = read_burst(s->fd, &sl, &n, &eof, &err);
    // With half close enabled, the end of stream is delivered as data;
    // without, it closes the connection. Envoy drains its read buffer
    // after the filter whatever the filter returns.
    if (total > 0 || (eof && s->half_close)) s->ops->data(s, total, sl, n, eof && s->half_close);
    free(sl);
    if (err || (eof && !s->half_close)) {
      sock_close_now(s, EV_REMOTE_CLOSE, 0);
    } else if (eof && !atomic_load(&s->closed)) {
      s->read_eof = 1;
      sock_watch(s);
    }
  }
  sock_unref(s);
}

// ---- Go's writes and closes, copied and posted to the owning worker ----

struct write_task {
  struct task t;
  struct sock *s;
  int end;
  size_t len;
  char data[];
};

static void run_write(struct task *t) {
  struct write_task *wt = (struct write_task *)t;
  struct sock *s = wt->s;
  if (s->ops->may_write(s, wt->data, wt->len, wt->end)) {
    if (s->write_end) {
      hlog(0, "error: write data after end_stream");
    } else {
      buf_append(&s->out, wt->data, wt->len);
      if (wt->end) s->write_end = 1;
      flush(s);
    }
  }
  sock_unref(s);
  free(wt);
}

void sock_post_write(struct sock *s, const void *p, int len, int end) {
  if (len < 0) fatal("write of %d bytes", len);
  struct write_task *wt = xmalloc(sizeof *wt + (size_t)len);
  memcpy(wt->data, p, (size_t)len); // Go's bytes are copied at once
  wt->len = (size_t)len;
  wt->end = end;
  wt->s = s;
  wt->t.run = run_write;
  sock_ref(s);
  post(s->w, &wt->t);
}

struct close_task {
  struct task t;
  struct sock *s;
  int type;
};

static void run_close(struct task *t) {
  struct close_task *ct = (struct close_task *)t;
  struct sock *s = ct->s;
  int flushing = ct->type == CLOSE_FLUSH_WRITE || ct->type == CLOSE_FLUSH_WRITE_AND_DELAY;
  if (s->ops->may_close(s)) {
    if (flushing && s->out.len > s->out.off) {
      s->close_pending = 1; // closed once the write buffer drains
      sock_watch(s);
    } else {
      sock_close_now(s, EV_LOCAL_CLOSE, ct->type == CLOSE_ABORT_RESET);
    }
  }
  sock_unref(s);
  free(ct);
}

void sock_post_close(struct sock *s, int type) {
  struct close_task *ct = xmalloc(sizeof *ct);
  ct->s = s;
  ct->type = type;
  ct->t.run = run_close;
  sock_ref(s);
  post(s->w, &ct->t);
}

int sock_closed_warning(struct sock *s) {
  if (!atomic_load(&s->closed)) return 0;
  atomic_fetch_add(&counters.closed_warnings, 1);
  hlog(3, "connection has closed, addr: %s", s->remote);
  return 1;
}

void sock_info(struct sock *s, int info_type, void *ret) {
  GoString *g = ret;
  switch (info_type) {
  case 0:
    g->p = s->local;
    break;
  case 1:
    g->p = s->remote;
    break;
  default:
    fatal("connection info type %d: corrupt enum", info_type);
  }
  g->n = (ptrdiff_t)strlen(g->p);
}
