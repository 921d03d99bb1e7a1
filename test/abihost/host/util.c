// Small helpers: allocation, logging, buffers, slices, socket reads.
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "host.h"

int log_level = 2;
struct counters counters;

static const char *level_names[] = {"trace", "debug", "info", "warning", "error", "critical"};

void *xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (!p) fatal("out of memory");
  return p;
}

void *xcalloc(size_t n) {
  void *p = calloc(1, n ? n : 1);
  if (!p) fatal("out of memory");
  return p;
}

char *xstrndup(const char *s, size_t n) {
  char *p = xmalloc(n + 1);
  memcpy(p, s, n);
  p[n] = 0;
  return p;
}

void fatal(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "abihost: fatal: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  fflush(stderr);
  abort();
}

void hlog(int level, const char *fmt, ...) {
  if (level < log_level || level > 5) return;
  char line[8192];
  va_list ap;
  va_start(ap, fmt);
  int n = snprintf(line, sizeof line, "[%s][abihost] ", level_names[level]);
  vsnprintf(line + n, sizeof line - n, fmt, ap);
  va_end(ap);
  fprintf(stderr, "%s\n", line);
}

void buf_append(struct buf *b, const char *p, size_t n) {
  if (b->off > 0 && b->off == b->len) b->off = b->len = 0;
  if (b->len + n > b->cap) {
    if (b->off > 0) {
      memmove(b->p, b->p + b->off, b->len - b->off);
      b->len -= b->off;
      b->off = 0;
    }
    size_t cap = b->cap ? b->cap : SLICE;
    while (cap < b->len + n) cap *= 2;
    if (cap != b->cap) {
      char *q = realloc(b->p, cap);
      if (!q) fatal("out of memory");
      b->p = q;
      b->cap = cap;
    }
  }
  memcpy(b->p + b->len, p, n);
  b->len += n;
}

void buf_free(struct buf *b) {
  free(b->p);
  *b = (struct buf){0};
}

int buf_flush(struct buf *b, int fd) {
  while (b->off < b->len) {
    ssize_t n = send(fd, b->p + b->off, b->len - b->off, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return 1;
      return -1;
    }
    b->off += (size_t)n;
  }
  b->off = b->len = 0;
  return 0;
}

size_t read_burst(int fd, unsigned long long **out, int *nout, int *eof, int *err) {
  int cap = 4, n = 0;
  size_t total = 0;
  unsigned long long *s = xmalloc(sizeof(*s) * 2 * cap);
  *eof = *err = 0;
  char *next = current_worker->rbuf;
  while (total < READ_LIMIT) {
    char *p = next;
    size_t want = READ_LIMIT - total < SLICE ? READ_LIMIT - total : SLICE;
    ssize_t r;
    do {
      r = read(fd, p, want);
    } while (r < 0 && errno == EINTR);
    if (r <= 0) {
      if (r == 0) *eof = 1;
      else if (errno != EAGAIN && errno != EWOULDBLOCK) *err = errno;
      break;
    }
    if (n == cap) {
      cap *= 2;
      s = realloc(s, sizeof(*s) * 2 * cap);
      if (!s) fatal("out of memory");
    }
    s[2 * n] = (unsigned long long)(uintptr_t)p;
    s[2 * n + 1] = (unsigned long long)r;
    n++;
    total += (size_t)r;
    next += r;
    if ((size_t)r < want) {
      // A short read usually means the socket is drained; one more read
      // would tell for sure, Envoy does the same with its next event.
      break;
    }
  }
  *out = s;
  *nout = n;
  return total;
}

unsigned long long *slices_of(const char *p, size_t len, int *nout) {
  int n = (int)((len + SLICE - 1) / SLICE);
  unsigned long long *s = xmalloc(sizeof(*s) * 2 * (n ? n : 1));
  for (int i = 0; i < n; i++) {
    size_t l = len - (size_t)i * SLICE;
    s[2 * i] = (unsigned long long)(uintptr_t)(p + (size_t)i * SLICE);
    s[2 * i + 1] = l < SLICE ? l : SLICE;
  }
  *nout = n;
  return s;
}

void addr_string(int fd, int peer, char *out, size_t outlen) {
  struct sockaddr_storage ss;
  socklen_t sl = sizeof ss;
  int r = peer ? getpeername(fd, (struct sockaddr *)&ss, &sl) : getsockname(fd, (struct sockaddr *)&ss, &sl);
  char ip[INET6_ADDRSTRLEN] = "?";
  if (r < 0) {
    snprintf(out, outlen, "unknown");
    return;
  }
  if (ss.ss_family == AF_INET6) {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
    inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof ip);
    snprintf(out, outlen, "[%s]:%d", ip, ntohs(a->sin6_port));
  } else {
    struct sockaddr_in *a = (struct sockaddr_in *)&ss;
    inet_ntop(AF_INET, &a->sin_addr, ip, sizeof ip);
    snprintf(out, outlen, "%s:%d", ip, ntohs(a->sin_port));
  }
}

int epoll_set(int epfd, int op, int fd, uint32_t events, struct handler *h) {
  struct epoll_event ev = {.events = events, .data.ptr = h};
  return epoll_ctl(epfd, op, fd, &ev);
}
