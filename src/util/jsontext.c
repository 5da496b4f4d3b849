/* Compact JSON text: what keeld writes to PostgreSQL and to the wire. */
#include "util/jsontext.h"

#include "util/alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The length of the UTF-8 sequence at s (at most n bytes), or 0 when it is not one (overlong
 * forms, surrogates and code points past U+10FFFF included). */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t len;
    unsigned cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        len = 2, cp = c & 0x1f;
    else if (c >= 0xe0 && c <= 0xef)
        len = 3, cp = c & 0x0f;
    else if (c >= 0xf0 && c <= 0xf4)
        len = 4, cp = c & 0x07;
    else
        return 0;
    if (n < len)
        return 0;
    for (size_t k = 1; k < len; k++) {
        if ((s[k] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[k] & 0x3f);
    }
    if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    return len;
}

static bool append_string(struct buf *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    buf_putc(b, '"');
    size_t run = 0; /* bytes copied as they are, flushed in one append */
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *esc = NULL;
        char ubuf[7];
        switch (c) {
        case '"':
            esc = "\\\"";
            break;
        case '\\':
            esc = "\\\\";
            break;
        case '\b':
            esc = "\\b";
            break;
        case '\f':
            esc = "\\f";
            break;
        case '\n':
            esc = "\\n";
            break;
        case '\r':
            esc = "\\r";
            break;
        case '\t':
            esc = "\\t";
            break;
        default:
            if (c >= 0x80) {
                size_t n = utf8_seq((const unsigned char *)s + i, len - i);
                if (n == 0)
                    return false;
                run += n;
                i += n - 1;
                continue;
            }
            if (c < 0x20) {
                memcpy(ubuf, "\\u00", 4);
                ubuf[4] = hex[c >> 4];
                ubuf[5] = hex[c & 0xf];
                ubuf[6] = '\0';
                esc = ubuf;
            }
        }
        if (esc) {
            buf_append(b, s + i - run, run);
            run = 0;
            buf_puts(b, esc);
        } else {
            run++;
        }
    }
    buf_append(b, s + len - run, run);
    buf_putc(b, '"');
    return true;
}

/* The shortest %g text that strtod reads back as d (%.17g always does, so the loop ends).
 * Like JavaScript, numbers below 1e21 are written out in full: 100.0, not 1e+02. */
static void append_real(struct buf *b, double d)
{
    char text[400];
    int prec = 1;
    for (; prec < 17; prec++) {
        snprintf(text, sizeof text, "%.*g", prec, d);
        if (strtod(text, NULL) == d)
            break;
    }
    snprintf(text, sizeof text, "%.*g", prec, d);
    const char *e = strchr(text, 'e');
    if (e) {
        int exp10 = atoi(e + 1);
        if (exp10 >= 0 && exp10 < 21)
            snprintf(text, sizeof text, "%.*f", prec - 1 > exp10 ? prec - 1 - exp10 : 0, d);
    }
    buf_puts(b, text);
    if (!strpbrk(text, ".eEni")) /* "ni" catches inf/nan, which jansson never holds anyway */
        buf_puts(b, ".0");
}

struct member {
    const char *key;
    size_t key_len;
    json_t *value;
};

static int member_cmp(const void *a, const void *b)
{
    const struct member *x = a, *y = b;
    size_t n = x->key_len < y->key_len ? x->key_len : y->key_len;
    int c = memcmp(x->key, y->key, n);
    if (c != 0)
        return c;
    return (x->key_len > y->key_len) - (x->key_len < y->key_len);
}

static bool append_object(struct buf *b, const json_t *obj, bool sort_keys)
{
    size_t n = json_object_size(obj);
    struct member *m = xcalloc(n ? n : 1, sizeof *m);
    size_t i = 0;
    const char *key;
    size_t key_len;
    json_t *value;
    /* jansson's iteration macros take a non-const object but do not modify it. */
    json_object_keylen_foreach((json_t *)obj, key, key_len, value)
    {
        if (i < n)
            m[i++] = (struct member){key, key_len, value};
    }
    if (sort_keys)
        qsort(m, i, sizeof *m, member_cmp);
    buf_putc(b, '{');
    bool ok = true;
    for (size_t k = 0; k < i && ok; k++) {
        if (k)
            buf_putc(b, ',');
        ok = append_string(b, m[k].key, m[k].key_len);
        buf_putc(b, ':');
        ok = ok && json_text_append(b, m[k].value, sort_keys);
    }
    buf_putc(b, '}');
    free(m);
    return ok;
}

bool json_text_append(struct buf *b, const json_t *v, bool sort_keys)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return append_object(b, v, sort_keys);
    case JSON_ARRAY:
        buf_putc(b, '[');
        for (size_t i = 0; i < json_array_size(v); i++) {
            if (i)
                buf_putc(b, ',');
            if (!json_text_append(b, json_array_get(v, i), sort_keys))
                return false;
        }
        buf_putc(b, ']');
        break;
    case JSON_STRING:
        return append_string(b, json_string_value(v), json_string_length(v));
    case JSON_INTEGER:
        buf_printf(b, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        break;
    case JSON_REAL:
        append_real(b, json_real_value(v));
        break;
    case JSON_TRUE:
        buf_puts(b, "true");
        break;
    case JSON_FALSE:
        buf_puts(b, "false");
        break;
    case JSON_NULL:
        buf_puts(b, "null");
        break;
    }
    return true;
}

char *json_text(const json_t *v)
{
    if (!v)
        return NULL;
    struct buf b = BUF_INIT;
    if (!json_text_append(&b, v, false)) {
        buf_free(&b);
        return NULL;
    }
    char *out = buf_steal(&b);
    return out;
}
