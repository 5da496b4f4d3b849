/* Allocation wrappers that abort on out-of-memory. */
#include "util/alloc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void out_of_memory(size_t n)
{
    fprintf(stderr, "{\"level\":\"fatal\",\"msg\":\"out of memory\",\"bytes\":%zu}\n", n);
    abort();
}

void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        out_of_memory(n);
    return p;
}

void *xcalloc(size_t count, size_t size)
{
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p)
        out_of_memory(count * size);
    return p;
}

void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        out_of_memory(n);
    return q;
}

char *xstrdup(const char *s)
{
    return xstrndup(s, strlen(s));
}

char *xstrndup(const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *p = xmalloc(len + 1);
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

char *xasprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (n < 0)
        out_of_memory(0);
    return s;
}

void xthread_create(pthread_t *thread, void *(*start)(void *), void *arg, const char *what)
{
    int rc = pthread_create(thread, NULL, start, arg);
    if (rc != 0) {
        /* what is a fixed name chosen by the caller, never user input. */
        fprintf(stderr,
                "{\"level\":\"fatal\",\"msg\":\"cannot start a thread\",\"thread\":\"%s\","
                "\"error\":\"%s\"}\n",
                what, strerror(rc));
        abort();
    }
}

void xgrow_zeroed(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return;
    size_t n = *cap ? *cap : 8;
    while (n < need)
        n *= 2;
    char *a = xrealloc(*p, n * elem);
    memset(a + *cap * elem, 0, (n - *cap) * elem);
    *p = a;
    *cap = n;
}
