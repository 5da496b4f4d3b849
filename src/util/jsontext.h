/* Compact JSON text of jansson values: what keeld writes to PostgreSQL and to the wire.
 * jansson's own json_dumps writes reals with 17 significant digits (0.1 as
 * 0.10000000000000001), which would change a user's numbers on their way through Keel. */
#ifndef KEEL_UTIL_JSONTEXT_H
#define KEEL_UTIL_JSONTEXT_H

#include "util/buf.h"

#include <jansson.h>
#include <stdbool.h>

/* Appends the compact JSON text of v (any type) to b: no whitespace; strings as UTF-8 with only
 * '"', '\\' and control characters escaped; integers in decimal; reals in the shortest form
 * that reads back as the same double (0.1 stays 0.1), always with a '.' or an exponent so they
 * stay reals when parsed again. With sort_keys, object members are ordered by the bytes of their
 * keys (that is, by Unicode code point); otherwise they keep jansson's insertion order. Returns
 * false when a string is not valid UTF-8 (b then holds a partial text). */
bool json_text_append(struct buf *b, const json_t *v, bool sort_keys)
    __attribute__((warn_unused_result));

/* The compact JSON text of v as a new NUL-terminated string (caller frees), or NULL when v is
 * NULL or holds a string that is not valid UTF-8. */
char *json_text(const json_t *v) __attribute__((warn_unused_result));

#endif
