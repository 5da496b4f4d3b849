/* Allocation wrappers: out-of-memory is decided once, here, by aborting with a log line. */
#ifndef KEEL_UTIL_ALLOC_H
#define KEEL_UTIL_ALLOC_H

#include <pthread.h>
#include <stddef.h>

/* Each never returns NULL: on failure it prints to stderr and aborts. */
void *xmalloc(size_t n);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* pthread_create that never fails: a thread that cannot be started is resource exhaustion,
 * decided like out-of-memory (a line on stderr naming what, then abort). */
void xthread_create(pthread_t *thread, void *(*start)(void *), void *arg, const char *what);
/* Grows the array *p of *cap elements of elem bytes to hold at least need of them (doubling,
 * from 8), the new ones zeroed; *cap becomes the new length. Does nothing when it is long
 * enough. */
void xgrow_zeroed(void **p, size_t *cap, size_t need, size_t elem);
/* printf into a new string; caller frees. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
