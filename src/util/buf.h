/* A growable byte buffer, always NUL-terminated so it can be used as a C string. */
#ifndef KEEL_UTIL_BUF_H
#define KEEL_UTIL_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct buf {
    char *data; /* NULL until the first append; then NUL-terminated */
    size_t len;
    size_t cap;
};

#define BUF_INIT                                                                                   \
    {                                                                                              \
        NULL, 0, 0                                                                                 \
    }

void buf_append(struct buf *b, const void *data, size_t len);
void buf_puts(struct buf *b, const char *s);
void buf_putc(struct buf *b, char c);
void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_vprintf(struct buf *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* Appends s as the inside of a JSON string (escaped, without the quotes). */
void buf_json_escape(struct buf *b, const char *s);
void buf_reset(struct buf *b);
/* Hands the contents to the caller (who frees them) and empties b. Never NULL. */
char *buf_steal(struct buf *b);
void buf_free(struct buf *b);

#endif
