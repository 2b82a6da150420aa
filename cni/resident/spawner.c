// warren-spawner: starts the resident CNI server's programs (host-local, ip, nft) for it.
//
// Why: Node starts a child with fork() from its own thread and waits there until the child
// has exec'd. From a 40-100 MiB server that blocked the server for 1.5-5 ms per program,
// three programs per ADD, so a burst of 50 ADDs spent most of its time queued behind forks
// (README, "The resident fast path"). This process is small: posix_spawn (vfork) costs it
// a fraction of that, and it runs beside the server instead of inside its event loop.
//
// It decides nothing: every program, argument, environment and input comes from the server,
// and every outcome goes back to it. Requests run at once, side by side, each answered when
// its program has exited and closed its output. It dies with the server (PR_SET_PDEATHSIG)
// or when its stdin closes, killing what it started: an IPAM call must not outlive the
// server that would report it (cni/resident/serve.ts, requestRunner).
//
// Frames on stdin and stdout, integers little-endian u32 (cni/resident/spawner.ts):
//   request:  len id timeoutMs argc envc  argv[0]\0 ... env[0]\0 ...  input
//   response: len id kind value outLen  out  err
// `len` counts what follows it. kind: 0 exited (value: the code), 1 killed (value: the
// signal), 2 not started (value: errno). A request past its timeoutMs is killed (SIGKILL).
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../buf.h"

#define MAX_FRAME (64u << 20)
#define MAX_CHILDREN 1024

static void put_u32(buf_t *b, uint32_t v) {
  unsigned char le[4] = {v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff, (v >> 24) & 0xff};
  put(b, le, 4);
}

static uint32_t get_u32(const char *p) {
  const unsigned char *u = (const unsigned char *)p;
  return (uint32_t)u[0] | (uint32_t)u[1] << 8 | (uint32_t)u[2] << 16 | (uint32_t)u[3] << 24;
}

typedef struct {
  pid_t pid;  // 0: free slot
  uint32_t id;
  int in, out, err;  // -1 once closed
  buf_t input;
  size_t written;
  buf_t stdout_, stderr_;
  int exited, status, timed_out;
  double deadline;  // 0: none
} child_t;

static child_t children[MAX_CHILDREN];
static buf_t replies;  // frames waiting for stdout

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void reply(uint32_t id, uint32_t kind, uint32_t value, const buf_t *out, const buf_t *err) {
  size_t on = out ? out->n : 0, en = err ? err->n : 0;
  put_u32(&replies, (uint32_t)(16 + on + en));
  put_u32(&replies, id);
  put_u32(&replies, kind);
  put_u32(&replies, value);
  put_u32(&replies, (uint32_t)on);
  if (on) put(&replies, out->p, on);
  if (en) put(&replies, err->p, en);
}

static void close_fd(int *fd) {
  if (*fd >= 0) close(*fd);
  *fd = -1;
}

// The program as execvpe would find it, but on the request's PATH, not this process's.
static int resolve(const char *file, char *const env[], char *out, size_t cap) {
  if (strchr(file, '/')) {
    snprintf(out, cap, "%s", file);
    return 0;
  }
  const char *path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  for (char *const *e = env; *e; e++)
    if (strncmp(*e, "PATH=", 5) == 0) path = *e + 5;
  int found_err = ENOENT;
  for (const char *d = path;; d = strchr(d, ':') + 1) {
    size_t len = strchrnul(d, ':') - d;
    snprintf(out, cap, "%.*s%s%s", (int)len, d, len ? "/" : "", file);
    if (access(out, X_OK) == 0) return 0;
    if (errno == EACCES) found_err = EACCES;
    if (!d[len]) break;
  }
  return found_err;
}

static void start(const char *frame, size_t n) {
  if (n < 16) _exit(65);
  uint32_t id = get_u32(frame), timeout = get_u32(frame + 4), argc = get_u32(frame + 8), envc = get_u32(frame + 12);
  const char *p = frame + 16, *end = frame + n;
  if (argc == 0 || argc > 65536 || envc > 65536) _exit(65);
  char **argv = calloc(argc + 1, sizeof *argv), **envp = calloc(envc + 1, sizeof *envp);
  if (!argv || !envp) _exit(70);
  for (uint32_t i = 0; i < argc + envc; i++) {
    const char *z = memchr(p, 0, (size_t)(end - p));
    if (!z) _exit(65);
    if (i < argc) argv[i] = (char *)p;
    else envp[i - argc] = (char *)p;
    p = z + 1;
  }
  child_t *c = NULL;
  for (int i = 0; i < MAX_CHILDREN && !c; i++)
    if (!children[i].pid) c = &children[i];
  char path[4096];
  int pin[2] = {-1, -1}, pout[2] = {-1, -1}, perr[2] = {-1, -1};
  int e = !c ? EAGAIN : resolve(argv[0], envp, path, sizeof path);
  if (!e && (pipe2(pin, O_CLOEXEC) || pipe2(pout, O_CLOEXEC) || pipe2(perr, O_CLOEXEC))) e = errno;
  pid_t pid = 0;
  if (!e) {
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    sigset_t none, dflt;
    sigemptyset(&none);
    sigemptyset(&dflt);
    sigaddset(&dflt, SIGPIPE);
    sigaddset(&dflt, SIGCHLD);
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, pin[0], 0);
    posix_spawn_file_actions_adddup2(&fa, pout[1], 1);
    posix_spawn_file_actions_adddup2(&fa, perr[1], 2);
    posix_spawnattr_init(&attr);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_USEVFORK);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &dflt);
    e = posix_spawn(&pid, path, &fa, &attr, argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
  }
  close_fd(&pin[0]);
  close_fd(&pout[1]);
  close_fd(&perr[1]);
  if (e) {
    close_fd(&pin[1]);
    close_fd(&pout[0]);
    close_fd(&perr[0]);
    buf_t msg = {0};
    char text[4200];
    int len = snprintf(text, sizeof text, "%s: %s", argv[0], strerror(e));
    put(&msg, text, (size_t)len);
    reply(id, 2, (uint32_t)e, NULL, &msg);
    free(msg.p);
  } else {
    memset(c, 0, sizeof *c);
    c->pid = pid;
    c->id = id;
    c->in = pin[1];
    c->out = pout[0];
    c->err = perr[0];
    // Never blocks on one program: the others, and the server, are served meanwhile.
    fcntl(c->in, F_SETFL, O_NONBLOCK);
    fcntl(c->out, F_SETFL, O_NONBLOCK);
    fcntl(c->err, F_SETFL, O_NONBLOCK);
    put(&c->input, p, (size_t)(end - p));
    if (c->input.n == 0) close_fd(&c->in);
    c->deadline = timeout ? now_ms() + timeout : 0;
  }
  free(argv);
  free(envp);
}

static void finish_if_done(child_t *c) {
  if (!c->pid || !c->exited || c->out >= 0 || c->err >= 0) return;
  close_fd(&c->in);
  if (c->timed_out) {
    char text[96];
    int len = snprintf(text, sizeof text, "timed out: killed by SIGKILL");
    c->stderr_.n = 0;
    put(&c->stderr_, text, (size_t)len);
    reply(c->id, 1, SIGKILL, &c->stdout_, &c->stderr_);
  } else if (WIFSIGNALED(c->status)) {
    reply(c->id, 1, (uint32_t)WTERMSIG(c->status), &c->stdout_, &c->stderr_);
  } else {
    reply(c->id, 0, (uint32_t)WEXITSTATUS(c->status), &c->stdout_, &c->stderr_);
  }
  free(c->input.p);
  free(c->stdout_.p);
  free(c->stderr_.p);
  memset(c, 0, sizeof *c);
}

static void reap(void) {
  int status;
  pid_t pid;
  while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
    for (int i = 0; i < MAX_CHILDREN; i++) {
      if (children[i].pid != pid) continue;
      children[i].exited = 1;
      children[i].status = status;
      finish_if_done(&children[i]);
    }
  }
}

static void drain(int *fd, buf_t *into) {
  for (;;) {
    grow(into, 65536);
    ssize_t r = read(*fd, into->p + into->n, into->cap - into->n);
    if (r > 0) {
      into->n += (size_t)r;
      continue;
    }
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && errno == EAGAIN) return;
    close_fd(fd);  // EOF, or an error that ends the stream alike
    return;
  }
}

static void kill_all_and_exit(int code) {
  for (int i = 0; i < MAX_CHILDREN; i++)
    if (children[i].pid) kill(children[i].pid, SIGKILL);
  _exit(code);
}

int main(int argc, char **argv) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  // The server's pid comes as the argument: it may itself be pid 1 (a container's first
  // process), so a parent of 1 does not mean it is gone, but a parent other than it does.
  if (argc != 2 || getppid() != (pid_t)strtol(argv[1], NULL, 10)) return 64;
  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  sigprocmask(SIG_BLOCK, &chld, NULL);
  signal(SIGPIPE, SIG_IGN);
  int sfd = signalfd(-1, &chld, SFD_NONBLOCK | SFD_CLOEXEC);
  if (sfd < 0) return 71;
  fcntl(0, F_SETFL, fcntl(0, F_GETFL) | O_NONBLOCK);
  fcntl(1, F_SETFL, fcntl(1, F_GETFL) | O_NONBLOCK);
  buf_t in = {0};
  size_t sent = 0;
  static struct pollfd fds[2 + 3 * MAX_CHILDREN];
  static child_t *owner[2 + 3 * MAX_CHILDREN];
  for (;;) {
    int nf = 0;
    fds[nf++] = (struct pollfd){.fd = 0, .events = POLLIN};
    fds[nf++] = (struct pollfd){.fd = replies.n > sent ? 1 : sfd, .events = replies.n > sent ? POLLOUT : POLLIN};
    double now = now_ms(), soonest = -1;
    for (int i = 0; i < MAX_CHILDREN; i++) {
      child_t *c = &children[i];
      if (!c->pid) continue;
      if (c->deadline && !c->exited && !c->timed_out) {
        if (now >= c->deadline) {
          c->timed_out = 1;
          kill(c->pid, SIGKILL);
        } else if (soonest < 0 || c->deadline - now < soonest) {
          soonest = c->deadline - now;
        }
      }
      if (c->in >= 0) owner[nf] = c, fds[nf++] = (struct pollfd){.fd = c->in, .events = POLLOUT};
      if (c->out >= 0) owner[nf] = c, fds[nf++] = (struct pollfd){.fd = c->out, .events = POLLIN};
      if (c->err >= 0) owner[nf] = c, fds[nf++] = (struct pollfd){.fd = c->err, .events = POLLIN};
    }
    // SIGCHLD is also read while replies wait: a child's exit must not wait for the server to read.
    if (replies.n > sent) fds[nf++] = (struct pollfd){.fd = sfd, .events = POLLIN};
    int r = poll(fds, (nfds_t)nf, soonest < 0 ? -1 : (int)soonest + 1);
    if (r < 0 && errno != EINTR) kill_all_and_exit(71);
    if (r <= 0) continue;
    for (int i = 0; i < nf; i++) {
      if (!fds[i].revents) continue;
      int fd = fds[i].fd;
      if (fd == sfd) {
        struct signalfd_siginfo si;
        while (read(sfd, &si, sizeof si) == sizeof si) {}
        reap();
      } else if (i == 0) {
        for (;;) {
          grow(&in, 65536);
          ssize_t n = read(0, in.p + in.n, in.cap - in.n);
          if (n == 0) kill_all_and_exit(0);  // the server closed us: it is gone or stopping
          if (n < 0 && errno == EINTR) continue;
          if (n < 0 && errno == EAGAIN) break;
          if (n < 0) kill_all_and_exit(71);
          in.n += (size_t)n;
        }
        size_t at = 0;
        while (in.n - at >= 4) {
          uint32_t len = get_u32(in.p + at);
          if (len > MAX_FRAME) kill_all_and_exit(65);
          if (in.n - at - 4 < len) break;
          start(in.p + at + 4, len);
          at += 4 + (size_t)len;
        }
        memmove(in.p, in.p + at, in.n - at);
        in.n -= at;
      } else if (fd == 1) {
        ssize_t n = write(1, replies.p + sent, replies.n - sent);
        if (n < 0 && errno != EAGAIN && errno != EINTR) kill_all_and_exit(0);
        if (n > 0) sent += (size_t)n;
        if (sent == replies.n) sent = replies.n = 0;
      } else {
        child_t *c = owner[i];
        if (!c->pid) continue;  // finished by an earlier fd of this round
        if (fd == c->in) {
          ssize_t n = write(c->in, c->input.p + c->written, c->input.n - c->written);
          if (n > 0) c->written += (size_t)n;
          // A program that exits without reading its input is no error of ours.
          if ((n < 0 && errno != EAGAIN && errno != EINTR) || c->written == c->input.n) close_fd(&c->in);
        } else {
          drain(fd == c->out ? &c->out : &c->err, fd == c->out ? &c->stdout_ : &c->stderr_);
        }
        finish_if_done(c);
      }
    }
  }
}
