/*
 * The bench's fixed-rate load generator for the hit rows: an open loop over keep-alive HTTP/1.1
 * connections. Requests arrive as independent clients make them (a Poisson process of the given rate:
 * gaps drawn from the exponential distribution, from a fixed seed, so every server of a run is offered
 * the same arrivals), each sent when due whatever the earlier ones are doing, and timed from its due
 * time to the last byte of its answer: a request that waits for a free connection, or for a stalled
 * generator, waits as a client arriving then would (no coordinated omission).
 *
 * Why C and not the bench's Node: at half the bare route's saturation (20,000 to 35,000 requests/s here)
 * a Node generator spends most of its own core on undici and promises, its pauses (garbage collection, a
 * busy event loop) land in every latency it times, and it sends what fell due in each pause in one burst,
 * which lets a server read many requests per wake-up, cheaper than clients arriving on their own would
 * (measured: README, Performance). This loop sleeps on a timerfd and epoll, allocates nothing after
 * start, and costs a few µs per request. Built by test/bench/open-loop.ts with the machine's C compiler.
 *
 * Usage: open-loop <port> <requests per second> <seconds> <connections> < request
 * The request (its whole head, CRLFs included) comes on stdin; the server is at 127.0.0.1:<port>.
 * Prints one JSON object: answered (2xx), non2xx, errors, sendingSeconds, and per request answered with
 * a 2xx its latency, and per request sent its dispatch lag (how late it left), both in µs.
 * Only answers with a Content-Length are read (the hit's); another framing counts as an error.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define HEAD_MAX 16384
/* How long answers still in flight are waited for once every request has been sent. */
#define DRAIN_NS 30000000000LL

typedef struct {
  int fd;
  uint32_t generation; /* which socket of this slot an epoll event is about */
  int connecting;
  long request;      /* the request in flight, -1 when idle */
  size_t written;    /* bytes of the request written */
  char head[HEAD_MAX];
  size_t head_len;
  long body_left;    /* -1 while the head is still arriving */
  int close_after;   /* the answer said Connection: close */
  int status;
} conn_t;

static struct sockaddr_in server;
static char *request_bytes;
static size_t request_len;
static conn_t *conns;
static int conn_count;
static int *idle;
static int idle_count;
static int epoll_fd;
static int64_t start_ns;
static int64_t *due_offset_ns;
static long total, next_request, finished;
static long answered, non2xx, errors;
static uint32_t *latency_us, *lag_us;

static int64_t now_ns (void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int64_t due_ns (long index) {
  return start_ns + due_offset_ns[index];
}

static void die (const char *what) {
  perror(what);
  exit(2);
}

static void watch (conn_t *c, int op, uint32_t events) {
  struct epoll_event event = { .events = events, .data.u64 = (uint64_t)c->generation << 32 | (uint32_t)(c - conns) };
  if (epoll_ctl(epoll_fd, op, c->fd, &event) != 0) die("epoll_ctl");
}

/* Opens the slot's socket; 0 when a non-blocking connect failed at once (nothing listens). */
static int open_connection (conn_t *c, int blocking) {
  c->fd = socket(AF_INET, SOCK_STREAM | (blocking ? 0 : SOCK_NONBLOCK), 0);
  if (c->fd < 0) die("socket");
  int one = 1;
  setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  c->connecting = 0;
  if (connect(c->fd, (struct sockaddr *)&server, sizeof server) != 0) {
    if (blocking) die("connect");
    if (errno != EINPROGRESS) { close(c->fd); c->fd = -1; return 0; }
    c->connecting = 1;
  }
  if (blocking && fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK) != 0) die("fcntl");
  c->generation++;
  watch(c, EPOLL_CTL_ADD, EPOLLIN | (c->connecting ? EPOLLOUT : 0));
  return 1;
}

static void close_connection (conn_t *c) {
  if (c->fd >= 0) close(c->fd);
  c->fd = -1;
  c->connecting = 0;
}

static void reset_answer (conn_t *c) {
  c->head_len = 0;
  c->body_left = -1;
  c->close_after = 0;
  c->status = 0;
}

static void finish (conn_t *c, int ok) {
  if (ok && c->status >= 200 && c->status <= 299) latency_us[answered++] = (uint32_t)((now_ns() - due_ns(c->request)) / 1000);
  else if (ok) non2xx++;
  else errors++;
  finished++;
  c->request = -1;
  if (!ok || c->close_after) close_connection(c);
  reset_answer(c);
  idle[idle_count++] = (int)(c - conns);
}

/* Writes what is left of the request; on a full socket, waits to be writable. */
static void write_request (conn_t *c) {
  while (c->written < request_len) {
    ssize_t n = write(c->fd, request_bytes + c->written, request_len - c->written);
    if (n > 0) { c->written += (size_t)n; continue; }
    if (n < 0 && errno == EAGAIN) { watch(c, EPOLL_CTL_MOD, EPOLLIN | EPOLLOUT); return; }
    finish(c, 0);
    return;
  }
  watch(c, EPOLL_CTL_MOD, EPOLLIN);
}

static void send_due (void) {
  int64_t now = now_ns();
  while (next_request < total && idle_count > 0 && due_ns(next_request) <= now) {
    conn_t *c = &conns[idle[--idle_count]];
    lag_us[next_request] = (uint32_t)((now - due_ns(next_request)) / 1000);
    c->request = next_request++;
    c->written = 0;
    if (c->fd < 0 && !open_connection(c, 0)) finish(c, 0);
    else if (!c->connecting) write_request(c);
  }
}

/* The head is complete: its status, its Content-Length (required) and whether it closes the connection. */
static int parse_head (conn_t *c, size_t head_end) {
  c->head[head_end] = '\0';
  if (sscanf(c->head, "HTTP/1.%*d %d", &c->status) != 1) return 0;
  long length = -1;
  for (char *line = strstr(c->head, "\r\n"); line != NULL && line[2] != '\0'; line = strstr(line + 2, "\r\n")) {
    char *field = line + 2;
    if (strncasecmp(field, "content-length:", 15) == 0) length = strtol(field + 15, NULL, 10);
    else if (strncasecmp(field, "connection:", 11) == 0 && strcasestr(field, "close") != NULL) c->close_after = 1;
  }
  if (length < 0) return 0;
  c->body_left = length;
  return 1;
}

static void take_bytes (conn_t *c, const char *bytes, size_t n) {
  if (c->body_left < 0) {
    size_t room = HEAD_MAX - 1 - c->head_len;
    size_t taken = n < room ? n : room;
    memcpy(c->head + c->head_len, bytes, taken);
    size_t scanned_from = c->head_len >= 3 ? c->head_len - 3 : 0;
    c->head_len += taken;
    c->head[c->head_len] = '\0';
    char *end = strstr(c->head + scanned_from, "\r\n\r\n");
    if (end == NULL) {
      if (c->head_len == HEAD_MAX - 1) finish(c, 0);
      return;
    }
    size_t head_end = (size_t)(end - c->head) + 4;
    size_t body_bytes = c->head_len - head_end + (n - taken);
    if (!parse_head(c, head_end)) { finish(c, 0); return; }
    c->body_left -= (long)body_bytes;
  } else {
    c->body_left -= (long)n;
  }
  /* Bytes past the answer: this loop never pipelines, so the server sent something else. */
  if (c->body_left < 0) finish(c, 0);
  else if (c->body_left == 0) finish(c, 1);
}

static void on_readable (conn_t *c) {
  char bytes[65536];
  for (;;) {
    ssize_t n = read(c->fd, bytes, sizeof bytes);
    if (n > 0) {
      if (c->request < 0) { close_connection(c); return; }  /* an answer nobody asked for */
      take_bytes(c, bytes, (size_t)n);
      if (c->request < 0 || c->fd < 0) return;
      continue;
    }
    if (n < 0 && errno == EAGAIN) return;
    /* Closed or reset: an idle connection is opened again when next used; a request in flight failed. */
    if (c->request >= 0) finish(c, 0);
    else close_connection(c);
    return;
  }
}

static void on_writable (conn_t *c) {
  if (c->connecting) {
    int error = 0;
    socklen_t size = sizeof error;
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &error, &size);
    c->connecting = 0;
    if (error != 0) { if (c->request >= 0) finish(c, 0); else close_connection(c); return; }
  }
  if (c->request >= 0 && c->written < request_len) write_request(c);
  else watch(c, EPOLL_CTL_MOD, EPOLLIN);
}

static void arm (int timer_fd, int64_t at_ns) {
  struct itimerspec when = { 0 };
  if (at_ns > 0) {
    when.it_value.tv_sec = at_ns / 1000000000LL;
    when.it_value.tv_nsec = at_ns % 1000000000LL;
  }
  if (timerfd_settime(timer_fd, TFD_TIMER_ABSTIME, &when, NULL) != 0) die("timerfd_settime");
}

/* When each request is due, from the start: after gaps drawn from the exponential distribution of mean 1 / rate. */
static void schedule (double rate) {
  uint64_t state = 0x9E3779B97F4A7C15ULL;
  double at = 0;
  for (long i = 0; i < total; i++) {
    due_offset_ns[i] = (int64_t)at;
    /* xorshift64*, a uniform draw in (0, 1) */
    state ^= state >> 12; state ^= state << 25; state ^= state >> 27;
    double uniform = (double)((state * 0x2545F4914F6CDD1DULL) >> 11 | 1) / 9007199254740992.0;
    at += -log(uniform) * 1e9 / rate;
  }
}

static char *read_stdin (size_t *length) {
  size_t capacity = 4096, used = 0;
  char *bytes = malloc(capacity);
  for (ssize_t n; (n = read(0, bytes + used, capacity - used)) > 0;) {
    used += (size_t)n;
    if (used == capacity) bytes = realloc(bytes, capacity *= 2);
  }
  *length = used;
  return bytes;
}

static void print_values (const char *name, const uint32_t *values, long count) {
  printf("\"%s\":[", name);
  for (long i = 0; i < count; i++) printf(i == 0 ? "%u" : ",%u", values[i]);
  printf("]");
}

int main (int argc, char **argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: open-loop <port> <requests per second> <seconds> <connections> < request\n");
    return 2;
  }
  double rate = atof(argv[2]), seconds = atof(argv[3]);
  conn_count = atoi(argv[4]);
  total = (long)(rate * seconds + 0.5);
  if (rate <= 0 || total < 1 || conn_count < 1) { fprintf(stderr, "open-loop: bad arguments\n"); return 2; }
  request_bytes = read_stdin(&request_len);
  if (request_len == 0) { fprintf(stderr, "open-loop: no request on stdin\n"); return 2; }
  server.sin_family = AF_INET;
  server.sin_port = htons((uint16_t)atoi(argv[1]));
  server.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  /* The kernel may wake a sleeper up to 50 µs late by default: a tenth of the gap between requests. */
  prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);

  latency_us = calloc((size_t)total, sizeof *latency_us);
  lag_us = calloc((size_t)total, sizeof *lag_us);
  due_offset_ns = calloc((size_t)total, sizeof *due_offset_ns);
  if (!due_offset_ns) die("calloc");
  schedule(rate);
  conns = calloc((size_t)conn_count, sizeof *conns);
  idle = calloc((size_t)conn_count, sizeof *idle);
  epoll_fd = epoll_create1(0);
  int timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
  if (!latency_us || !lag_us || !conns || !idle || epoll_fd < 0 || timer_fd < 0) die("setup");
  struct epoll_event timer_event = { .events = EPOLLIN, .data.u64 = UINT32_MAX };
  if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, timer_fd, &timer_event) != 0) die("epoll_ctl");
  /* Connected before the clock starts, as a warmed-up client's pool would be. */
  for (int i = 0; i < conn_count; i++) {
    conns[i].request = -1;
    reset_answer(&conns[i]);
    open_connection(&conns[i], 1);
    idle[idle_count++] = i;
  }

  start_ns = now_ns();
  int64_t sent_all_ns = 0;
  struct epoll_event events[64];
  while (finished < total) {
    send_due();
    if (next_request == total && sent_all_ns == 0) sent_all_ns = now_ns();
    if (sent_all_ns != 0 && now_ns() - sent_all_ns > DRAIN_NS) break;
    /* Woken by the next due time while a connection is free; otherwise an answer frees one. */
    arm(timer_fd, next_request < total && idle_count > 0 ? due_ns(next_request) : 0);
    int ready = epoll_wait(epoll_fd, events, 64, sent_all_ns == 0 ? -1 : 1000);
    if (ready < 0 && errno != EINTR) die("epoll_wait");
    for (int i = 0; i < ready; i++) {
      if (events[i].data.u64 == UINT32_MAX) {
        uint64_t expirations;
        (void)!read(timer_fd, &expirations, sizeof expirations);
        continue;
      }
      conn_t *c = &conns[(uint32_t)events[i].data.u64];
      /* An event of a socket closed earlier in this batch is not one of the slot's new socket. */
      if (c->fd < 0 || events[i].data.u64 >> 32 != c->generation) continue;
      if (events[i].events & (EPOLLOUT | EPOLLERR)) on_writable(c);
      if (c->fd >= 0 && events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) on_readable(c);
    }
  }
  errors += total - finished;
  if (sent_all_ns == 0) sent_all_ns = now_ns();

  printf("{\"answered\":%ld,\"non2xx\":%ld,\"errors\":%ld,\"sendingSeconds\":%.6f,", answered, non2xx, errors,
    (double)(sent_all_ns - start_ns) / 1e9);
  print_values("latencyMicros", latency_us, answered);
  printf(",");
  print_values("lagMicros", lag_us, next_request);
  printf("}\n");
  return 0;
}
