/* Shared helpers of the libFuzzer drivers: a failed property aborts (so libFuzzer saves the
 * input as a crash), and every document is parsed as keeld parses request bodies. */
#ifndef KEEL_FUZZ_FUZZ_H
#define KEEL_FUZZ_FUZZ_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The libFuzzer entry point, declared here because -Wmissing-prototypes wants a prototype. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A property every input must keep. Unlike assert() it stays on under NDEBUG (the fuzz build
 * is RelWithDebInfo), and it names the property before aborting. */
#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: property violated: %s\n", __FILE__, __LINE__, #cond);          \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* The flags of http_body_json() (src/http/server.c): what a request body goes through before a
 * handler sees it. */
#define FUZZ_JSON_BODY_FLAGS (JSON_DECODE_ANY | JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL)

/* A NUL-terminated copy of data[0..size) (the caller frees it). Embedded NULs stay, so C
 * string functions see only the part before the first one, as they would with a header or a
 * URL that libmicrohttpd or libcurl handed over. */
static inline char *fuzz_strndup(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        abort();
    for (size_t i = 0; i < size; i++)
        s[i] = (char)data[i];
    s[size] = '\0';
    return s;
}

/* The value at RFC 6901 pointer ptr in doc (borrowed), or NULL when there is none. */
static inline const json_t *fuzz_pointer_get(const json_t *doc, const char *ptr)
{
    if (ptr[0] == '\0')
        return doc;
    if (ptr[0] != '/')
        return NULL;
    const json_t *cur = doc;
    const char *p = ptr + 1;
    for (;;) {
        const char *end = strchr(p, '/');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        char *tok = malloc(n + 1);
        if (!tok)
            abort();
        size_t j = 0;
        for (size_t i = 0; i < n; i++) {
            if (p[i] != '~') {
                tok[j++] = p[i];
            } else if (i + 1 < n && (p[i + 1] == '0' || p[i + 1] == '1')) {
                tok[j++] = p[i + 1] == '0' ? '~' : '/';
                i++;
            } else {
                free(tok);
                return NULL; /* a '~' that is not an escape */
            }
        }
        tok[j] = '\0';
        if (json_is_object(cur)) {
            cur = json_object_getn(cur, tok, j);
        } else if (json_is_array(cur)) {
            /* Decimal without leading zeros, as RFC 6901 spells array indexes. */
            size_t idx = 0;
            bool ok = j > 0 && j < 10 && (tok[0] != '0' || j == 1);
            for (size_t i = 0; ok && i < j; i++) {
                ok = tok[i] >= '0' && tok[i] <= '9';
                idx = idx * 10 + (size_t)(tok[i] - '0');
            }
            cur = ok ? json_array_get(cur, idx) : NULL;
        } else {
            cur = NULL;
        }
        free(tok);
        if (!cur || !end)
            return cur;
        p = end + 1;
    }
}

#endif
