/* Base64url without padding (RFC 4648 section 5), for opaque cursors. */
#ifndef KEEL_UTIL_B64_H
#define KEEL_UTIL_B64_H

#include <stddef.h>

/* Encodes len bytes; returns a new NUL-terminated string (caller frees). */
char *b64url_encode(const void *data, size_t len);
/* Decodes s; returns a new NUL-terminated buffer (caller frees) and its length in *len, or NULL
 * when s is not base64url. */
char *b64url_decode(const char *s, size_t *len);

#endif
