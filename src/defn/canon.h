/* Canonical JSON text of definitions, and their SHA-256 digest. */
#ifndef KEEL_DEFN_CANON_H
#define KEEL_DEFN_CANON_H

#include "util/buf.h"

#include <jansson.h>
#include <stdbool.h>

/* The canonical form of a definition document: json_text_append with sorted keys. Two
 * documents that differ only in key order or whitespace give the same text, and the text parses
 * back to a document with the same canonical form. Numbers are not unified: 2 and 2.0 stay
 * different. Returns a new string the caller frees with free(), or NULL when doc is NULL. */
char *defn_canonical_json(const json_t *doc) __attribute__((warn_unused_result));

/* Writes the lowercase hex SHA-256 of the NUL-terminated canonical text into out (64 digits and
 * a NUL). */
void defn_digest_hex(const char *canonical, char out[65]);

#endif
