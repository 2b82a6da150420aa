// warren: the file the container runtime executes for every CNI call (README, "The resident
// fast path"). It hands the call to the node's resident CNI server (`warren cni-server`) over
// a unix socket and prints the server's answer. When the server is absent, refuses, stops
// answering or goes away, it execs the standalone plugin beside it (`warren-cni`, the Node
// executable) with the same environment and stdin: a pod start never depends on the server.
//
// Why C and not TypeScript: every CNI call starts this program, and a Node start alone (an
// empty single executable, 19-42 ms here) is as long as the Go reference plugin's whole ADD.
// This program only moves bytes; every decision about the node stays in TypeScript, in the
// server and in the standalone plugin, which run the same dispatch. The contract (messages,
// bounds) is lib/cni-resident.ts; the constants below must match it (a unit test reads both).
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "../buf.h"

extern char **environ;

// lib/cni-resident.ts: RESIDENT_BOUNDS, DEFAULT_RESIDENT_SOCKET, MAX_REQUEST_BYTES, and the
// environment variables the standalone plugin reads after a fallback.
#define CONNECT_MS 25
#define SILENCE_MS 3000
#define TOTAL_MS 60000
#define MAX_REQUEST_BYTES (16 << 20)
#define DEFAULT_SOCKET "/run/warren/cni.sock"
#define FALLBACK_ENV "WARREN_CNI_FALLBACK"
#define CLEAR_FIRST_ENV "WARREN_CNI_CLEAR_FIRST"
#define STANDALONE "warren-cni"

static void puts_(buf_t *b, const char *s) { put(b, s, strlen(s)); }

static void putf(buf_t *b, const char *fmt, ...) {
  char tmp[64];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  put(b, tmp, (size_t)n);
}

// A JSON string. Bytes >= 0x80 pass through: the server decodes the line as UTF-8, as the
// standalone plugin decodes its stdin.
static void put_json_string(buf_t *b, const char *s, size_t n) {
  puts_(b, "\"");
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\') {
      char esc[2] = {'\\', (char)c};
      put(b, esc, 2);
    } else if (c < 0x20) {
      putf(b, "\\u%04x", c);
    } else {
      put(b, (const char *)&c, 1);
    }
  }
  puts_(b, "\"");
}

static double now_ms(clockid_t clock) {
  struct timespec ts;
  clock_gettime(clock, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

// ---- The fallback: the standalone plugin, with this call's stdin and environment ----

static buf_t input;

static void standalone(const char *reason, int clear_first) {
  // The stdin this process consumed, handed on in a memory file: the plugin reads fd 0.
  int fd = memfd_create("cni-stdin", 0);
  if (fd >= 0) {
    size_t off = 0;
    while (off < input.n) {
      ssize_t w = write(fd, input.p + off, input.n - off);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) break;
      off += (size_t)w;
    }
    if (off == input.n && lseek(fd, 0, SEEK_SET) == 0 && dup2(fd, 0) == 0) close(fd);
  }
  if (reason) setenv(FALLBACK_ENV, reason, 1);
  else unsetenv(FALLBACK_ENV);
  if (clear_first) setenv(CLEAR_FIRST_ENV, "1", 1);
  else unsetenv(CLEAR_FIRST_ENV);

  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  char path[PATH_MAX + sizeof STANDALONE + 1];
  if (n > 0) {
    self[n] = 0;
    snprintf(path, sizeof path, "%s/%s", dirname(self), STANDALONE);
    char *argv[] = {STANDALONE, NULL};
    execve(path, argv, environ);
  }
  // Nothing beside this file to do the work: the spec's error, so the runtime says why.
  buf_t out = {0};
  puts_(&out, "{\"cniVersion\":\"1.0.0\",\"code\":100,\"msg\":");
  char msg[PATH_MAX + 128];
  snprintf(msg, sizeof msg, "cannot run the standalone plugin %s: %s", n > 0 ? path : "beside /proc/self/exe", strerror(errno));
  put_json_string(&out, msg, strlen(msg));
  puts_(&out, "}\n");
  if (write(1, out.p, out.n) < 0) _exit(1);
  _exit(1);
}

// ---- The server's messages: one JSON object per line, of the shapes in cni-resident.ts ----

typedef struct {
  char t[16];
  int has_exit;
  long exit_code;
  int started;
  buf_t stdout_;  // reply: the verb's stdout
  buf_t reason;   // refused
  buf_t paths;    // stat: the paths, each followed by a NUL
} message_t;

typedef struct {
  const char *s, *end;
} cursor_t;

static void ws(cursor_t *c) {
  while (c->s < c->end && (*c->s == ' ' || *c->s == '\t' || *c->s == '\r' || *c->s == '\n')) c->s++;
}

static int hex4(cursor_t *c, unsigned *v) {
  if (c->end - c->s < 4) return -1;
  *v = 0;
  for (int i = 0; i < 4; i++) {
    char h = c->s[i];
    *v <<= 4;
    if (h >= '0' && h <= '9') *v |= (unsigned)(h - '0');
    else if (h >= 'a' && h <= 'f') *v |= (unsigned)(h - 'a' + 10);
    else if (h >= 'A' && h <= 'F') *v |= (unsigned)(h - 'A' + 10);
    else return -1;
  }
  c->s += 4;
  return 0;
}

static void put_utf8(buf_t *b, unsigned cp) {
  char u[4];
  size_t n;
  if (cp < 0x80) { u[0] = (char)cp; n = 1; }
  else if (cp < 0x800) { u[0] = (char)(0xC0 | cp >> 6); u[1] = (char)(0x80 | (cp & 0x3F)); n = 2; }
  else if (cp < 0x10000) { u[0] = (char)(0xE0 | cp >> 12); u[1] = (char)(0x80 | ((cp >> 6) & 0x3F)); u[2] = (char)(0x80 | (cp & 0x3F)); n = 3; }
  else { u[0] = (char)(0xF0 | cp >> 18); u[1] = (char)(0x80 | ((cp >> 12) & 0x3F)); u[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); u[3] = (char)(0x80 | (cp & 0x3F)); n = 4; }
  put(b, u, n);
}

// A JSON string into `out` (NULL: skipped). -1 when malformed.
static int string_(cursor_t *c, buf_t *out) {
  if (c->s >= c->end || *c->s != '"') return -1;
  c->s++;
  while (c->s < c->end) {
    char ch = *c->s++;
    if (ch == '"') return 0;
    if (ch != '\\') {
      if (out) put(out, &ch, 1);
      continue;
    }
    if (c->s >= c->end) return -1;
    char e = *c->s++;
    const char *simple = strchr("\"\\/bfnrt", e);
    if (simple && e) {
      static const char to[] = "\"\\/\b\f\n\r\t";
      if (out) put(out, &to[simple - "\"\\/bfnrt"], 1);
      continue;
    }
    if (e != 'u') return -1;
    unsigned cp;
    if (hex4(c, &cp)) return -1;
    if (cp >= 0xD800 && cp < 0xDC00 && c->end - c->s >= 6 && c->s[0] == '\\' && c->s[1] == 'u') {
      cursor_t look = {c->s + 2, c->end};
      unsigned lo;
      if (!hex4(&look, &lo) && lo >= 0xDC00 && lo < 0xE000) {
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        c->s = look.s;
      }
    }
    if (out) put_utf8(out, cp);  // a lone surrogate as JavaScript's TextEncoder would not: never in our messages
  }
  return -1;
}

static int literal(cursor_t *c, const char *word) {
  size_t n = strlen(word);
  if ((size_t)(c->end - c->s) < n || memcmp(c->s, word, n) != 0) return -1;
  c->s += n;
  return 0;
}

// After an element of an object or array: 1 when `close` ends it, 0 when a comma leads to
// the next element, -1 when malformed.
static int next_or_close(cursor_t *c, char close) {
  ws(c);
  if (c->s >= c->end) return -1;
  char ch = *c->s++;
  if (ch == close) return 1;
  if (ch != ',') return -1;
  ws(c);
  return 0;
}

static int skip_value(cursor_t *c, int depth);

static int skip_container(cursor_t *c, char close, int depth) {
  c->s++;
  ws(c);
  if (c->s < c->end && *c->s == close) { c->s++; return 0; }
  for (;;) {
    if (close == '}') {
      if (string_(c, NULL)) return -1;
      ws(c);
      if (c->s >= c->end || *c->s++ != ':') return -1;
    }
    if (skip_value(c, depth + 1)) return -1;
    int r = next_or_close(c, close);
    if (r) return r < 0 ? -1 : 0;
  }
}

static int skip_value(cursor_t *c, int depth) {
  ws(c);
  if (c->s >= c->end || depth > 32) return -1;
  char ch = *c->s;
  if (ch == '"') return string_(c, NULL);
  if (ch == '{') return skip_container(c, '}', depth);
  if (ch == '[') return skip_container(c, ']', depth);
  if (ch == 't') return literal(c, "true");
  if (ch == 'f') return literal(c, "false");
  if (ch == 'n') return literal(c, "null");
  const char *start = c->s;
  while (c->s < c->end && strchr("+-0123456789.eE", *c->s)) c->s++;
  return c->s == start ? -1 : 0;
}

// Each member of a JSON object, its key decoded, handed to `on` with the cursor at its
// value, which `on` must consume. -1 when malformed, or when `on` says so.
typedef int (*member_fn)(const buf_t *key, cursor_t *c, void *ctx);

static int members(cursor_t *c, member_fn on, void *ctx) {
  ws(c);
  if (c->s >= c->end || *c->s++ != '{') return -1;
  ws(c);
  if (c->s < c->end && *c->s == '}') { c->s++; return 0; }
  for (;;) {
    buf_t key = {0};
    int rc = string_(c, &key);
    ws(c);
    if (!rc && (c->s >= c->end || *c->s++ != ':')) rc = -1;
    ws(c);
    if (!rc) rc = on(&key, c, ctx);
    free(key.p);
    if (rc) return -1;
    int r = next_or_close(c, '}');
    if (r) return r < 0 ? -1 : 0;
  }
}

#define KEY(k) (key->n == sizeof(k) - 1 && memcmp(key->p, k, key->n) == 0)

static int message_member(const buf_t *key, cursor_t *c, void *ctx) {
  message_t *m = ctx;
  if (KEY("t")) {
    buf_t t = {0};
    int rc = string_(c, &t);
    if (!rc && t.n < sizeof m->t) { memcpy(m->t, t.p, t.n); m->t[t.n] = 0; }
    free(t.p);
    return rc;
  }
  if (KEY("stdout")) return string_(c, &m->stdout_);
  if (KEY("reason")) return string_(c, &m->reason);
  if (KEY("exitCode")) {
    char *end;
    m->exit_code = strtol(c->s, &end, 10);
    m->has_exit = end != c->s;
    c->s = end;
    return m->has_exit ? 0 : -1;
  }
  if (KEY("started")) {
    if (!literal(c, "true")) { m->started = 1; return 0; }
    return literal(c, "false");
  }
  if (KEY("paths")) {
    if (c->s >= c->end || *c->s++ != '[') return -1;
    ws(c);
    if (c->s < c->end && *c->s == ']') { c->s++; return 0; }
    for (;;) {
      if (string_(c, &m->paths)) return -1;
      put(&m->paths, "", 1);
      int r = next_or_close(c, ']');
      if (r) return r < 0 ? -1 : 0;
    }
  }
  return skip_value(c, 0);
}

static int parse_message(const char *line, size_t n, message_t *m) {
  cursor_t c = {line, line + n};
  return members(&c, message_member, m);
}

// ---- lib/path-identity.ts: the device and inode of a path, or of its nearest existing parent ----

static void put_identity(buf_t *b, const char *path) {
  char p[PATH_MAX];
  snprintf(p, sizeof p, "%s", path);
  for (;;) {
    struct stat st;
    if (stat(p, &st) == 0) {
      char id[PATH_MAX + 64];
      if (strcmp(p, path) == 0) snprintf(id, sizeof id, "%lu:%lu", (unsigned long)st.st_dev, (unsigned long)st.st_ino);
      else snprintf(id, sizeof id, "%s %lu:%lu", p, (unsigned long)st.st_dev, (unsigned long)st.st_ino);
      put_json_string(b, id, strlen(id));
      return;
    }
    char *slash = strrchr(p, '/');
    if (!slash || (slash == p && p[1] == 0)) break;
    if (slash == p) p[1] = 0;
    else *slash = 0;
  }
  puts_(b, "\"\"");
}

// ---- The config's residentSocket ----

#define MAX_SOCKET_PATH 96  // lib/cni-resident.ts: room for the server's "PATH.PID" beside it

// The socket named by the config's top-level "residentSocket", else the default. NULL when
// the config is no JSON object or names an unusable socket: the standalone plugin then
// answers with the error the server would have given.
static int socket_member(const buf_t *key, cursor_t *c, void *ctx) {
  char *chosen = ctx;
  if (!KEY("residentSocket")) return skip_value(c, 0);
  buf_t v = {0};
  int bad = string_(c, &v) || v.n == 0 || v.n > MAX_SOCKET_PATH || v.p[0] != '/' || memchr(v.p, 0, v.n);
  if (!bad) { memcpy(chosen, v.p, v.n); chosen[v.n] = 0; }
  free(v.p);
  return bad ? -1 : 0;
}

static char *resident_socket(void) {
  static char chosen[MAX_SOCKET_PATH + 1];
  snprintf(chosen, sizeof chosen, "%s", DEFAULT_SOCKET);
  cursor_t c = {input.p, input.p + input.n};
  return members(&c, socket_member, chosen) ? NULL : chosen;
}

// ---- The exchange with the server ----

static int send_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

static void write_stdout(const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(1, p, n);
    if (w < 0 && (errno == EINTR || errno == EAGAIN)) {
      if (errno == EAGAIN) poll(&(struct pollfd){.fd = 1, .events = POLLOUT}, 1, 100);
      continue;
    }
    if (w <= 0) return;
    p += w;
    n -= (size_t)w;
  }
}

static int connect_bounded(const char *path) {
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof addr.sun_path) return -1;
  strcpy(addr.sun_path, path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return -1;
  double until = now_ms(CLOCK_MONOTONIC) + CONNECT_MS;
  // A unix socket connects at once or says why; EAGAIN is a full backlog: a server busy
  // accepting, worth the bound's wait.
  while (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
    if (errno != EAGAIN && errno != EINTR) { close(fd); return -1; }
    if (now_ms(CLOCK_MONOTONIC) >= until) { close(fd); errno = ETIMEDOUT; return -1; }
    poll(NULL, 0, 1);
  }
  return fd;
}

static void read_stdin(void) {
  for (;;) {
    grow(&input, 65536);
    ssize_t n = read(0, input.p + input.n, input.cap - input.n);
    if (n > 0) { input.n += (size_t)n; continue; }
    if (n == 0) return;
    if (errno == EINTR) continue;
    // A runtime may hand over a non-blocking pipe whose data has not arrived yet.
    if (errno == EAGAIN) { poll(&(struct pollfd){.fd = 0, .events = POLLIN}, 1, -1); continue; }
    return;  // no stdin at all (EBADF): VERSION by hand
  }
}

static int forwarded_verb(const char *v) {
  static const char *verbs[] = {"ADD", "DEL", "CHECK", "GC", "STATUS"};
  for (size_t i = 0; v && i < sizeof verbs / sizeof *verbs; i++)
    if (strcmp(v, verbs[i]) == 0) return 1;
  return 0;
}

int main(void) {
  if (!isatty(0)) read_stdin();
  const char *verb = getenv("CNI_COMMAND");
  // VERSION needs nobody; a request the server would refuse for its size is not sent.
  if (!forwarded_verb(verb) || input.n > MAX_REQUEST_BYTES) standalone(NULL, 0);
  const char *socket_path = resident_socket();
  if (!socket_path) standalone(NULL, 0);
  int is_add = strcmp(verb, "ADD") == 0;

  int fd = connect_bounded(socket_path);
  if (fd < 0) {
    char why[160];
    snprintf(why, sizeof why, "no resident server at %s: %s", socket_path, errno == ETIMEDOUT ? "no connection within 25 ms" : strerror(errno));
    standalone(why, 0);
  }

  buf_t req = {0};
  char mntns[128] = "";
  ssize_t ml = readlink("/proc/self/ns/mnt", mntns, sizeof mntns - 1);
  mntns[ml > 0 ? ml : 0] = 0;
  puts_(&req, "{\"env\":{");
  for (char **e = environ; *e; e++) {
    char *eq = strchr(*e, '=');
    if (!eq) continue;
    if (e != environ) puts_(&req, ",");
    put_json_string(&req, *e, (size_t)(eq - *e));
    puts_(&req, ":");
    put_json_string(&req, eq + 1, strlen(eq + 1));
  }
  puts_(&req, "},\"stdin\":");
  put_json_string(&req, input.p ? input.p : "", input.n);
  putf(&req, ",\"sentAt\":%.0f,\"mntns\":", now_ms(CLOCK_REALTIME));
  put_json_string(&req, mntns, strlen(mntns));
  puts_(&req, "}\n");

  // The socket blocks from here, each write bounded by the silence bound.
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  struct timeval tv = {.tv_sec = SILENCE_MS / 1000, .tv_usec = (SILENCE_MS % 1000) * 1000};
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  // A server that took the request may have begun it, even if the send failed half way.
  if (send_all(fd, req.p, req.n) != 0) {
    char why[160];
    snprintf(why, sizeof why, "sending the request: %s", strerror(errno));
    standalone(why, is_add);
  }

  double begun = now_ms(CLOCK_MONOTONIC), heard = begun;
  buf_t in = {0};
  for (;;) {
    double t = now_ms(CLOCK_MONOTONIC);
    double wait = heard + SILENCE_MS - t;
    if (begun + TOTAL_MS - t < wait) wait = begun + TOTAL_MS - t;
    if (wait <= 0) {
      standalone(t - heard >= SILENCE_MS ? "the resident server said nothing for 3000 ms" : "no answer from the resident server within 60000 ms", is_add);
    }
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int r = poll(&p, 1, (int)wait + 1);
    if (r < 0 && errno == EINTR) continue;
    if (r == 0) continue;
    grow(&in, 65536);
    ssize_t n = recv(fd, in.p + in.n, in.cap - in.n, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) standalone(n == 0 ? "the resident server closed without an answer" : strerror(errno), is_add);
    heard = now_ms(CLOCK_MONOTONIC);
    in.n += (size_t)n;
    if (in.n > MAX_REQUEST_BYTES) standalone("the resident server sent a line over 16 MiB", is_add);
    char *line = in.p, *nl;
    while ((nl = memchr(line, '\n', (size_t)(in.p + in.n - line)))) {
      message_t m = {0};
      if (nl > line && parse_message(line, (size_t)(nl - line), &m) != 0) standalone("an unreadable message from the resident server", is_add);
      if (strcmp(m.t, "reply") == 0 && m.has_exit) {
        write_stdout(m.stdout_.p ? m.stdout_.p : "", m.stdout_.n);
        return (int)m.exit_code;
      }
      if (strcmp(m.t, "refused") == 0) {
        char why[512];
        snprintf(why, sizeof why, "refused by the resident server: %.*s", (int)m.reason.n, m.reason.p ? m.reason.p : "");
        standalone(why, is_add && m.started);
      }
      if (strcmp(m.t, "stat") == 0) {
        // The server runs in another mount namespace: what these paths are here.
        buf_t v = {0};
        puts_(&v, "{\"t\":\"views\",\"views\":{");
        for (size_t off = 0; off < m.paths.n; off += strlen(m.paths.p + off) + 1) {
          if (off) puts_(&v, ",");
          put_json_string(&v, m.paths.p + off, strlen(m.paths.p + off));
          puts_(&v, ":");
          put_identity(&v, m.paths.p + off);
        }
        puts_(&v, "}}\n");
        if (send_all(fd, v.p, v.n) != 0) standalone("sending the views: the server went away", 0);
        free(v.p);
      }
      free(m.stdout_.p);
      free(m.reason.p);
      free(m.paths.p);
      line = nl + 1;
    }
    memmove(in.p, line, (size_t)(in.p + in.n - line));
    in.n = (size_t)(in.p + in.n - line);
  }
}
