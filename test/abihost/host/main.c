// abihost: loads a golang network filter plugin the way Envoy v1.36 does and
// serves the listeners described by a host config file (written by the Go
// translator from an Envoy bootstrap).
//
//	abihost [-keep-env] CONFIG
//
// Config lines (fields separated by spaces):
//
//	workers N
//	log_level trace|debug|info|warning|error|critical|off
//	cluster plainText CONNECT_TIMEOUT_MS MAX_CONNECTIONS
//	listener NAME ADDR PORT LIBRARY_ID LIBRARY_PATH PLUGIN_NAME HEX_OF_SERIALIZED_ANY (- when empty)
//
// Once every listener is bound the host prints "listening NAME IP:PORT" per
// listener, then "ready". It then reads commands on stdin: "stats" prints
// the counters; end of input exits.
#include <dlfcn.h>
#include <errno.h>
#include <execinfo.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "host.h"

struct listener *listeners;
static struct dso *dsos;

// ---- the log callbacks Envoy exports (contrib/golang/common/log/cgo.cc) ----

void envoyGoFilterLog(uint32_t level, void *message_data, int message_len) {
  static const char *names[] = {"trace", "debug", "info", "warning", "error", "critical"};
  if (level > 5) {
    if (level == 6) return; // off
    fatal("undefined log level %u with message '%.*s'", level, message_len, (char *)message_data);
  }
  if ((int)level < log_level) return;
  fprintf(stderr, "[%s][golang] %.*s\n", names[level], message_len, (char *)message_data);
}

uint32_t envoyGoFilterLogLevel(void) { return (uint32_t)log_level; }

// ---- loading (contrib/golang/common/dso/dso.cc) ----

struct dso *dso_find(const char *id) {
  for (struct dso *d = dsos; d; d = d->next)
    if (strcmp(d->id, id) == 0) return d;
  return NULL;
}

#define SYM(field, name)                                              \
  do {                                                                \
    *(void **)&d->field = dlsym(d->handle, name);                     \
    if (!d->field) fatal("lib: %s, cannot find symbol: %s", path, name); \
  } while (0)

// dso_load loads path once per library id, like DsoManager::load; a second
// load of the same id returns the first library whatever its path.
struct dso *dso_load(const char *id, const char *path) {
  struct dso *d = dso_find(id);
  if (d) return d;
  d = xcalloc(sizeof *d);
  d->id = strdup(id);
  d->path = strdup(path);
  d->handle = dlopen(path, RTLD_LAZY);
  if (!d->handle) fatal("cannot load : %s error: %s", path, dlerror());
  SYM(on_config, "envoyGoFilterOnNetworkFilterConfig");
  SYM(on_downstream_connection, "envoyGoFilterOnDownstreamConnection");
  SYM(on_downstream_data, "envoyGoFilterOnDownstreamData");
  SYM(on_downstream_event, "envoyGoFilterOnDownstreamEvent");
  SYM(on_downstream_write, "envoyGoFilterOnDownstreamWrite");
  SYM(on_upstream_ready, "envoyGoFilterOnUpstreamConnectionReady");
  SYM(on_upstream_failure, "envoyGoFilterOnUpstreamConnectionFailure");
  SYM(on_upstream_data, "envoyGoFilterOnUpstreamData");
  SYM(on_upstream_event, "envoyGoFilterOnUpstreamEvent");
  SYM(on_sema_dec, "envoyGoFilterOnSemaDec");
  d->next = dsos;
  dsos = d;
  return d;
}

// ---- process setup ----

static void crash(int sig, siginfo_t *info, void *ctx) {
  (void)info, (void)ctx;
  char msg[64];
  int n = snprintf(msg, sizeof msg, "abihost: caught signal %d, backtrace:\n", sig);
  write(2, msg, (size_t)n);
  void *frames[64];
  int nf = backtrace(frames, 64);
  backtrace_symbols_fd(frames, nf, 2);
  signal(sig, SIG_DFL);
  raise(sig);
}

// install_crash_handlers runs before dlopen: the Go runtime then forwards
// the faults of non-Go code to these handlers, as it does in Envoy.
static void install_crash_handlers(void) {
  stack_t ss = {.ss_sp = xmalloc(1 << 16), .ss_size = 1 << 16};
  sigaltstack(&ss, NULL);
  struct sigaction sa = {0};
  sa.sa_sigaction = crash;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  int sigs[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
  for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) sigaction(sigs[i], &sa, NULL);
  signal(SIGPIPE, SIG_IGN);
}

// reexec restarts the process with GODEBUG=cgocheck=0, as Envoy
// deployments of the golang filter must run.
static void reexec(char **argv) {
  const char *cur = getenv("GODEBUG");
  if (cur && strstr(cur, "cgocheck=0")) return;
  char val[1024];
  snprintf(val, sizeof val, "%s%scgocheck=0", cur ? cur : "", cur && *cur ? "," : "");
  setenv("GODEBUG", val, 1);
  execv("/proc/self/exe", argv);
  fatal("re-exec: %s", strerror(errno));
}

static int level_of(const char *s) {
  static const char *names[] = {"trace", "debug", "info", "warning", "error", "critical", "off"};
  for (int i = 0; i < 7; i++)
    if (strcmp(s, names[i]) == 0) return i;
  fatal("unknown log level %s", s);
}

static unsigned char *unhex(const char *s, size_t *n) {
  size_t l = strlen(s);
  if (l % 2) fatal("odd hex length");
  unsigned char *out = xmalloc(l / 2);
  for (size_t i = 0; i < l / 2; i++) {
    unsigned v;
    if (sscanf(s + 2 * i, "%2x", &v) != 1) fatal("bad hex");
    out[i] = (unsigned char)v;
  }
  *n = l / 2;
  return out;
}

static void bind_listener(struct listener *l, const char *ip, int port) {
  struct sockaddr_storage ss = {0};
  socklen_t sl;
  if (strchr(ip, ':')) {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
    a->sin6_family = AF_INET6;
    a->sin6_port = htons((uint16_t)port);
    if (inet_pton(AF_INET6, ip, &a->sin6_addr) != 1) fatal("listener %s: bad address %s", l->name, ip);
    sl = sizeof *a;
  } else {
    struct sockaddr_in *a = (struct sockaddr_in *)&ss;
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, ip, &a->sin_addr) != 1) fatal("listener %s: bad address %s", l->name, ip);
    sl = sizeof *a;
  }
  l->fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(l->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(l->fd, (struct sockaddr *)&ss, sl) < 0 || listen(l->fd, 1024) < 0)
    fatal("listener %s: %s:%d: %s", l->name, ip, port, strerror(errno));
  char b[80];
  addr_string(l->fd, 0, b, sizeof b);
  l->bound = strdup(b);
}

// read_config parses the host config and loads the plugin for every
// listener, handing it its config on this (the main) thread as Envoy does.
static void read_config(const char *path) {
  FILE *f = fopen(path, "r");
  if (!f) fatal("%s: %s", path, strerror(errno));
  size_t cap = 0;
  char *line = NULL;
  struct listener **tail = &listeners;
  nworkers = 2;
  while (getline(&line, &cap, f) > 0) {
    line[strcspn(line, "\n")] = 0;
    char *save, *kw = strtok_r(line, " ", &save);
    if (!kw || kw[0] == '#') continue;
    char *a[7] = {0};
    for (int i = 0; i < 7; i++) a[i] = strtok_r(NULL, " ", &save);
    if (strcmp(kw, "workers") == 0 && a[0]) {
      nworkers = atoi(a[0]);
      if (nworkers < 1) fatal("workers must be positive");
    } else if (strcmp(kw, "log_level") == 0 && a[0]) {
      log_level = level_of(a[0]);
    } else if (strcmp(kw, "cluster") == 0 && a[2]) {
      if (strcmp(a[0], "plainText") != 0) continue;
      plaintext.present = 1;
      plaintext.connect_timeout_ms = atol(a[1]);
      plaintext.max_connections = atol(a[2]);
    } else if (strcmp(kw, "listener") == 0 && a[6]) {
      struct listener *l = xcalloc(sizeof *l);
      l->h.on_event = listener_accept;
      l->name = strdup(a[0]);
      l->plugin_name = strdup(a[5]);
      l->lib = dso_load(a[3], a[4]);
      size_t n = 0;
      unsigned char *cfg = strcmp(a[6], "-") == 0 ? NULL : unhex(a[6], &n);
      COUNT(into_go_other);
      l->config_id = l->lib->on_config((GoUint64)(uintptr_t)l->lib->id, strlen(l->lib->id), (GoUint64)(uintptr_t)cfg, n);
      if (l->config_id == 0) fatal("listener %s: config id is zero", l->name);
      free(cfg);
      bind_listener(l, a[1], atoi(a[2]));
      *tail = l; // keep the config's order for the "listening" lines
      tail = &l->next;
    } else {
      fatal("%s: bad line starting with %s", path, kw);
    }
  }
  free(line);
  fclose(f);
}

int main(int argc, char **argv) {
  int keep_env = argc > 1 && strcmp(argv[1], "-keep-env") == 0;
  if (argc != 2 + keep_env) {
    fprintf(stderr, "usage: abihost [-keep-env] CONFIG\n");
    return 2;
  }
  if (!keep_env) reexec(argv);
  install_crash_handlers();
  read_config(argv[1 + keep_env]);
  workers = xcalloc(sizeof *workers * (size_t)nworkers);
  for (int i = 0; i < nworkers; i++) worker_start(&workers[i], i);
  for (struct listener *l = listeners; l; l = l->next) printf("listening %s %s\n", l->name, l->bound);
  printf("ready\n");
  fflush(stdout);
  char cmd[64];
  while (fgets(cmd, sizeof cmd, stdin)) {
    if (strncmp(cmd, "stats", 5) == 0) {
      printf("stats downstream_open=%ld downstream_wrappers=%ld downstream_total=%ld upstream_open=%ld "
             "upstream_wrappers=%ld upstream_total=%ld upstream_failures=%ld closed_warnings=%ld "
             "into_go_data=%ld into_go_write=%ld into_go_other=%ld from_go_write=%ld wakeups=%ld\n",
             atomic_load(&counters.downstream_open), atomic_load(&counters.downstream_wrappers),
             atomic_load(&counters.downstream_total), atomic_load(&counters.upstream_open),
             atomic_load(&counters.upstream_wrappers), atomic_load(&counters.upstream_total),
             atomic_load(&counters.upstream_failures), atomic_load(&counters.closed_warnings),
             atomic_load(&counters.into_go_data), atomic_load(&counters.into_go_write),
             atomic_load(&counters.into_go_other), atomic_load(&counters.from_go_write),
             atomic_load(&counters.wakeups));
      fflush(stdout);
    }
  }
  // Envoy never calls into Go on shutdown either.
  _exit(0);
}
