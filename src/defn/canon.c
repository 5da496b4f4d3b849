/* Compact and canonical JSON serialisation, and the definition digest. */
#include "defn/canon.h"

#include "util/alloc.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void append_string(struct buf *b, const char *s, size_t len)
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

static void append_object(struct buf *b, const json_t *obj, bool sort_keys)
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
    for (size_t k = 0; k < i; k++) {
        if (k)
            buf_putc(b, ',');
        append_string(b, m[k].key, m[k].key_len);
        buf_putc(b, ':');
        defn_json_append(b, m[k].value, sort_keys);
    }
    buf_putc(b, '}');
    free(m);
}

void defn_json_append(struct buf *b, const json_t *v, bool sort_keys)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        append_object(b, v, sort_keys);
        break;
    case JSON_ARRAY:
        buf_putc(b, '[');
        for (size_t i = 0; i < json_array_size(v); i++) {
            if (i)
                buf_putc(b, ',');
            defn_json_append(b, json_array_get(v, i), sort_keys);
        }
        buf_putc(b, ']');
        break;
    case JSON_STRING:
        append_string(b, json_string_value(v), json_string_length(v));
        break;
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
}

char *defn_canonical_json(const json_t *doc)
{
    if (!doc)
        return NULL;
    struct buf b = BUF_INIT;
    defn_json_append(&b, doc, true);
    return buf_steal(&b);
}

void defn_digest_hex(const char *canonical, char out[65])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    if (!canonical)
        canonical = "";
    if (EVP_Digest(canonical, strlen(canonical), md, &md_len, EVP_sha256(), NULL) != 1 ||
        md_len != 32) {
        /* Only a broken libcrypto gets here; a digest of zeros would silently merge versions. */
        fprintf(stderr, "{\"level\":\"fatal\",\"msg\":\"SHA-256 failed\"}\n");
        abort();
    }
    for (unsigned int i = 0; i < md_len; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 0xf];
    }
    out[64] = '\0';
}
