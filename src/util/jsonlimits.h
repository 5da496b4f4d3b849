/* Bounds on JSON values that Keel stores and serves: how deep they nest, how large their compact
 * text is, and whether they hold a NUL character (which PostgreSQL's jsonb refuses). Each check
 * stops as soon as it knows the answer, so a huge or deep value costs no more than the bound. */
#ifndef KEEL_UTIL_JSONLIMITS_H
#define KEEL_UTIL_JSONLIMITS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* The deepest nesting Keel accepts in a value it journals (a receiver's output, a task
 * completion's output, an execution's input). A scalar has depth 0, [] and {} depth 1, [[1]]
 * depth 2. Far below jansson's own parser limit (2048), so that a value wrapped in the API's
 * envelopes ({"steps": [{"output": ...}]}) or in an event still reads back. */
#define JSON_LIMIT_MAX_DEPTH 64

/* True when v nests deeper than max_depth levels (see JSON_LIMIT_MAX_DEPTH). NULL is depth 0.
 * Never recurses more than max_depth + 1 levels. */
bool json_depth_exceeds(const json_t *v, size_t max_depth);

/* The length of v's compact JSON text (json_text, or jansson's json_dumps), or any
 * value greater than limit as soon as it is known to exceed limit. Strings count with their
 * escapes; reals count at most 24 bytes (an upper bound of jansson's "%.17g" output). */
size_t json_encoded_size(const json_t *v, size_t limit);

/* True when a string value or an object key anywhere in v holds a NUL character ("\u0000").
 * When pointer is not NULL, the RFC 6901 pointer of the first such value (relative to v, ""
 * for v itself) is written there, NUL-terminated and cut to pointer_size. */
bool json_find_nul(const json_t *v, char *pointer, size_t pointer_size);

#endif
