/* Identifiers: UUIDv7 execution ids, unguessable tokens, trace ids. */
#ifndef KEEL_UTIL_IDS_H
#define KEEL_UTIL_IDS_H

#include <stddef.h>
#include <stdint.h>

/* Writes a UUIDv7 (RFC 9562: 48-bit millisecond time, then random bits) as 36 characters + NUL;
 * ids made later sort later. */
void ids_uuid7(int64_t now_ms, char out[37]);
/* Writes 2 * nbytes lowercase hex characters of cryptographically random bytes, plus NUL. */
void ids_random_hex(size_t nbytes, char *out);
/* A W3C traceparent for one attempt: the trace id is derived from the execution id (so every
 * attempt of an execution shares one trace) and the span id from the step and attempt. */
void ids_traceparent(const char *execution_id, const char *step_id, int attempt, char out[56]);

#endif
