/* Base64url codec. */
#include "util/b64.h"

#include "util/alloc.h"

#include <stdlib.h>
#include <string.h>

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

char *b64url_encode(const void *data, size_t len)
{
    const unsigned char *p = data;
    char *out = xmalloc(len / 3 * 4 + 5);
    size_t j = 0;
    size_t i = 0;
    for (; i + 2 < len; i += 3) {
        unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8 | p[i + 2];
        out[j++] = alphabet[v >> 18 & 63];
        out[j++] = alphabet[v >> 12 & 63];
        out[j++] = alphabet[v >> 6 & 63];
        out[j++] = alphabet[v & 63];
    }
    if (len - i == 1) {
        unsigned v = (unsigned)p[i] << 16;
        out[j++] = alphabet[v >> 18 & 63];
        out[j++] = alphabet[v >> 12 & 63];
    } else if (len - i == 2) {
        unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8;
        out[j++] = alphabet[v >> 18 & 63];
        out[j++] = alphabet[v >> 12 & 63];
        out[j++] = alphabet[v >> 6 & 63];
    }
    out[j] = '\0';
    return out;
}

static int value_of(char c)
{
    const char *p = c ? strchr(alphabet, c) : NULL;
    return p ? (int)(p - alphabet) : -1;
}

char *b64url_decode(const char *s, size_t *len)
{
    size_t n = strlen(s);
    if (n % 4 == 1)
        return NULL;
    char *out = xmalloc(n / 4 * 3 + 3);
    size_t j = 0;
    unsigned acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = value_of(s[i]);
        if (v < 0) {
            free(out);
            return NULL;
        }
        acc = acc << 6 | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[j++] = (char)(acc >> bits & 0xff);
        }
    }
    out[j] = '\0';
    *len = j;
    return out;
}
