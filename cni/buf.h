// A growable byte buffer for Warren's two C programs (shim/shim.c, resident/spawner.c).
// Allocation failure ends the process: neither has an answer to give without memory.
#ifndef WARREN_BUF_H
#define WARREN_BUF_H
#include <stdlib.h>
#include <string.h>

typedef struct {
  char *p;
  size_t n, cap;
} buf_t;

static void grow(buf_t *b, size_t more) {
  if (b->n + more <= b->cap) return;
  size_t cap = b->cap ? b->cap : 4096;
  while (cap < b->n + more) cap *= 2;
  char *p = realloc(b->p, cap);
  if (!p) abort();
  b->p = p;
  b->cap = cap;
}

static void put(buf_t *b, const void *s, size_t n) {
  grow(b, n);
  memcpy(b->p + b->n, s, n);
  b->n += n;
}

#endif
