// Worker event loops. Like Envoy's dispatchers, each worker owns its
// connections; work from other threads (every Go-to-C call) is copied and
// posted to the owning worker through a locked queue and an eventfd.
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "host.h"

struct worker *workers;
int nworkers;
_Thread_local struct worker *current_worker;

// post queues t for w like Envoy's DispatcherImpl::post: only the post
// that makes the queue non-empty wakes the worker, and a worker posting to
// itself needs no wake-up since it drains its queue after every batch.
void post(struct worker *w, struct task *t) {
  t->next = NULL;
  pthread_mutex_lock(&w->mu);
  int wake = w->head == NULL;
  if (w->tail) w->tail->next = t;
  else w->head = t;
  w->tail = t;
  pthread_mutex_unlock(&w->mu);
  if (!wake || current_worker == w) return;
  COUNT(wakeups);
  uint64_t one = 1;
  while (write(w->evfd, &one, sizeof one) < 0 && errno == EINTR) {
  }
}

void defer_free(struct worker *w, struct task *t) {
  pthread_mutex_lock(&w->mu);
  t->next = w->dead;
  w->dead = t;
  pthread_mutex_unlock(&w->mu);
}

static void run_list(struct task *t) {
  while (t) {
    struct task *next = t->next;
    t->run(t);
    t = next;
  }
}

// drain runs the queued tasks; it returns 0 if there were none.
static int drain(struct worker *w) {
  pthread_mutex_lock(&w->mu);
  struct task *t = w->head;
  w->head = w->tail = NULL;
  pthread_mutex_unlock(&w->mu);
  run_list(t);
  return t != NULL;
}

static void run_posted(struct handler *h, uint32_t events) {
  (void)events;
  struct worker *w = (struct worker *)((char *)h - offsetof(struct worker, wake));
  uint64_t v;
  while (read(w->evfd, &v, sizeof v) < 0 && errno == EINTR) {
  }
  drain(w);
}

static void alt_stack(void) {
  // The Go runtime requires signal handlers to run on an alternate stack
  // on threads it did not create.
  stack_t ss = {.ss_sp = xmalloc(1 << 16), .ss_size = 1 << 16};
  sigaltstack(&ss, NULL);
}

static void *loop(void *arg) {
  struct worker *w = arg;
  current_worker = w;
  alt_stack();
  struct epoll_event evs[64];
  for (;;) {
    int n = epoll_wait(w->epfd, evs, 64, -1);
    if (n < 0) {
      if (errno == EINTR) continue; // Go's preemption signal lands here
      fatal("epoll_wait: %s", strerror(errno));
    }
    for (int i = 0; i < n; i++) {
      struct handler *h = evs[i].data.ptr;
      h->on_event(h, evs[i].events);
    }
    // Run what the batch posted to this worker without waking it, and
    // what those tasks post in turn.
    while (drain(w)) {
    }
    pthread_mutex_lock(&w->mu);
    struct task *dead = w->dead;
    w->dead = NULL;
    pthread_mutex_unlock(&w->mu);
    run_list(dead);
  }
  return NULL;
}

void worker_start(struct worker *w, int id) {
  w->id = id;
  w->epfd = epoll_create1(EPOLL_CLOEXEC);
  w->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (w->epfd < 0 || w->evfd < 0) fatal("worker %d: %s", id, strerror(errno));
  pthread_mutex_init(&w->mu, NULL);
  w->wake.on_event = run_posted;
  w->rbuf = xmalloc(READ_LIMIT);
  if (epoll_set(w->epfd, EPOLL_CTL_ADD, w->evfd, EPOLLIN, &w->wake) < 0) fatal("epoll: %s", strerror(errno));
  for (struct listener *l = listeners; l; l = l->next)
    if (epoll_set(w->epfd, EPOLL_CTL_ADD, l->fd, EPOLLIN | EPOLLEXCLUSIVE, &l->h) < 0)
      fatal("epoll listener: %s", strerror(errno));
  if (pthread_create(&w->thread, NULL, loop, w) != 0) fatal("pthread_create");
}
