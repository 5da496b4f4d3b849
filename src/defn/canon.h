/* Canonical JSON text of definitions, and their SHA-256 digest. */
#ifndef KEEL_DEFN_CANON_H
#define KEEL_DEFN_CANON_H

#include "util/buf.h"

#include <jansson.h>
#include <stdbool.h>

/* Appends the compact JSON text of v (any type) to b: no whitespace; strings as UTF-8 with only
 * '"', '\\' and control characters escaped; integers in decimal; reals in the shortest form
 * that reads back as the same double, always with a '.' or an exponent so they stay reals when
 * parsed again. With sort_keys, object members are ordered by the bytes of their keys (that is,
 * by Unicode code point); otherwise they keep jansson's insertion order. */
void defn_json_append(struct buf *b, const json_t *v, bool sort_keys);

/* The canonical form of a definition document: defn_json_append with sorted keys. Two
 * documents that differ only in key order or whitespace give the same text, and the text parses
 * back to a document with the same canonical form. Numbers are not unified: 2 and 2.0 stay
 * different. Returns a new string the caller frees with free(), or NULL when doc is NULL. */
char *defn_canonical_json(const json_t *doc) __attribute__((warn_unused_result));

/* Writes the lowercase hex SHA-256 of the NUL-terminated canonical text into out (64 digits and
 * a NUL). */
void defn_digest_hex(const char *canonical, char out[65]);

#endif
