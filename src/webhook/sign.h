/* Standard Webhooks signing: HMAC-SHA256 over "{msg_id}.{timestamp}.{body}", one signature per
 * secret so that a secret can be rotated without a moment where receivers reject requests. */
#ifndef KEEL_WEBHOOK_SIGN_H
#define KEEL_WEBHOOK_SIGN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One or more decoded signing keys. Immutable once parsed, so one set may be shared by any
 * number of threads (the dispatcher signs with it, a receiver verifies with it). */
struct wh_secrets;

/* The shortest signing key accepted, in bytes (decoded): shorter keys are too easy to guess. */
#define WH_SECRET_MIN_BYTES 24

/* Parses s: one or more secrets separated by whitespace, each "whsec_<base64>" or plain
 * "<base64>" (standard alphabet; the '=' padding may be left out) of a key of at least
 * WH_SECRET_MIN_BYTES bytes. On success returns 0 and
 * sets *out to a new set the caller frees with wh_secrets_free(). On failure returns -1 and,
 * when why is not NULL, sets *why to a message the caller frees (it names the secret by its
 * position and never quotes secret material). */
int wh_secrets_parse(const char *s, struct wh_secrets **out, char **why)
    __attribute__((warn_unused_result));
/* Frees a set from wh_secrets_parse(); NULL is ignored. */
void wh_secrets_free(struct wh_secrets *secrets);
/* The number of keys in the set (at least 1); 0 for NULL. */
size_t wh_secrets_count(const struct wh_secrets *secrets);

/* The value of the webhook-signature header: "v1,<base64>" per secret, space-separated, in the
 * order the secrets were given. Returns a new string the caller frees, or NULL when secrets or
 * msg_id is NULL (no signing configured) or OpenSSL fails. */
char *wh_sign(const struct wh_secrets *secrets, const char *msg_id, int64_t timestamp_s,
              const char *body, size_t len);

/* Checks a request as a Standard Webhooks receiver does: timestamp is the webhook-timestamp
 * header (decimal Unix seconds), signature the webhook-signature header (space-separated
 * "v1,<base64>" entries; other versions are ignored). True when any v1 entry matches the
 * signature of any secret (compared in constant time) and, when tolerance_s > 0, the timestamp
 * is within tolerance_s of now_s. False for any NULL or malformed argument. */
bool wh_verify(const struct wh_secrets *secrets, const char *msg_id, const char *timestamp,
               const char *body, size_t len, const char *signature, int64_t now_s,
               int64_t tolerance_s);

/* ---- task tokens ----
 * A task token is the whole credential of /v1/tasks/{token}/...: 128 random bits, sent to the
 * receiver once and stored only as its SHA-256, so a copy of the database completes nothing. */
#define WH_TASK_TOKEN_LEN      32 /* hex digits */
#define WH_TASK_TOKEN_HASH_LEN 64 /* hex digits of SHA-256 */

/* Writes a new token (32 lowercase hex digits of cryptographically random bytes, plus NUL) into
 * token and its hash (as wh_task_token_hash) into hash. */
void wh_task_token_new(char token[WH_TASK_TOKEN_LEN + 1], char hash[WH_TASK_TOKEN_HASH_LEN + 1]);
/* Writes the SHA-256 of the bytes of token as 64 lowercase hex digits plus NUL into hash: the
 * form in which tokens are stored and looked up. */
void wh_task_token_hash(const char *token, char hash[WH_TASK_TOKEN_HASH_LEN + 1]);

#endif
