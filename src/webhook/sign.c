/* Standard Webhooks signing and verification with OpenSSL's HMAC-SHA256. */
#include "webhook/sign.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "util/alloc.h"
#include "util/buf.h"
#include "util/ids.h"

#define SECRET_PREFIX "whsec_"
#define SHA256_LEN    32
/* Base64 of 32 bytes: 44 characters and a NUL. */
#define SIG_B64_SIZE 45

struct wh_key {
    unsigned char *bytes;
    size_t len;
};

struct wh_secrets {
    size_t count;
    struct wh_key *keys;
};

/* ---- base64 ------------------------------------------------------------------------------ */

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* Decodes standard base64 (padding optional). Returns 0 and a new buffer in *out, or -1 with a
 * static reason in *reason and, for a bad character, its offset in *bad_at. */
static int b64_decode(const char *s, size_t n, unsigned char **out, size_t *out_len,
                      const char **reason, size_t *bad_at)
{
    size_t pad = 0;
    while (pad < n && s[n - 1 - pad] == '=')
        pad++;
    size_t data = n - pad;
    *bad_at = (size_t)-1;
    for (size_t i = 0; i < data; i++) {
        if (b64_value((unsigned char)s[i]) < 0) {
            *reason = "invalid base64 character";
            *bad_at = i;
            return -1;
        }
    }
    if (data == 0) {
        *reason = "empty key";
        return -1;
    }
    if (pad > 2 || (pad > 0 && n % 4 != 0) || data % 4 == 1) {
        *reason = "base64 of a wrong length";
        return -1;
    }
    size_t cap = data / 4 * 3 + 3;
    unsigned char *dst = xmalloc(cap);
    size_t len = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < data; i++) {
        acc = (acc << 6) | (uint32_t)b64_value((unsigned char)s[i]);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            dst[len++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    *out = dst;
    *out_len = len;
    return 0;
}

/* ---- HMAC -------------------------------------------------------------------------------- */

static EVP_MAC *hmac_alg;
static pthread_once_t hmac_once = PTHREAD_ONCE_INIT;

/* Fetching an algorithm takes locks and a lookup, so it is done once for the process. */
static void hmac_fetch(void)
{
    hmac_alg = EVP_MAC_fetch(NULL, OSSL_MAC_NAME_HMAC, NULL);
}

static bool hmac_sha256(const struct wh_key *key, const char *msg_id, const char *ts,
                        const char *body, size_t len, unsigned char out[SHA256_LEN])
{
    bool ok = false;
    EVP_MAC_CTX *ctx = NULL;
    size_t out_len = 0;
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
        OSSL_PARAM_construct_end(),
    };

    pthread_once(&hmac_once, hmac_fetch);
    if (!hmac_alg)
        goto Exit;
    ctx = EVP_MAC_CTX_new(hmac_alg);
    if (!ctx || !EVP_MAC_init(ctx, key->bytes, key->len, params))
        goto Exit;
    if (!EVP_MAC_update(ctx, (const unsigned char *)msg_id, strlen(msg_id)) ||
        !EVP_MAC_update(ctx, (const unsigned char *)".", 1) ||
        !EVP_MAC_update(ctx, (const unsigned char *)ts, strlen(ts)) ||
        !EVP_MAC_update(ctx, (const unsigned char *)".", 1) ||
        (len > 0 && !EVP_MAC_update(ctx, (const unsigned char *)body, len)))
        goto Exit;
    if (!EVP_MAC_final(ctx, out, &out_len, SHA256_LEN) || out_len != SHA256_LEN)
        goto Exit;
    ok = true;
Exit:
    EVP_MAC_CTX_free(ctx);
    return ok;
}

/* Writes the base64 signature of one key into out; false if OpenSSL failed. */
static bool sign_one(const struct wh_key *key, const char *msg_id, const char *ts, const char *body,
                     size_t len, char out[SIG_B64_SIZE])
{
    unsigned char mac[SHA256_LEN];
    if (!hmac_sha256(key, msg_id, ts, body, len, mac))
        return false;
    EVP_EncodeBlock((unsigned char *)out, mac, SHA256_LEN);
    return true;
}

/* ---- public ------------------------------------------------------------------------------ */

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

int wh_secrets_parse(const char *s, struct wh_secrets **out, char **why)
{
    struct wh_secrets *set = NULL;
    char *err = NULL;
    size_t cap = 0;

    if (!s || !out) {
        err = xstrdup("no secret given");
        goto Exit;
    }
    set = xcalloc(1, sizeof(*set));
    const char *p = s;
    for (;;) {
        while (is_space(*p))
            p++;
        if (!*p)
            break;
        const char *start = p;
        while (*p && !is_space(*p))
            p++;
        size_t n = (size_t)(p - start);
        size_t prefix = 0;
        if (n >= strlen(SECRET_PREFIX) && memcmp(start, SECRET_PREFIX, strlen(SECRET_PREFIX)) == 0)
            prefix = strlen(SECRET_PREFIX);
        struct wh_key key = {NULL, 0};
        const char *reason = NULL;
        size_t bad_at = 0;
        if (b64_decode(start + prefix, n - prefix, &key.bytes, &key.len, &reason, &bad_at) < 0) {
            if (bad_at != (size_t)-1)
                err = xasprintf("secret %zu: %s at offset %zu (expected whsec_ followed by "
                                "standard base64)",
                                set->count + 1, reason, bad_at + prefix);
            else
                err = xasprintf("secret %zu: %s (expected whsec_ followed by standard base64)",
                                set->count + 1, reason);
            goto Exit;
        }
        if (key.len < WH_SECRET_MIN_BYTES) {
            err = xasprintf("secret %zu: the key is %zu bytes; at least %d are required "
                            "(whsec_ followed by the base64 of %d or more random bytes, e.g. "
                            "\"whsec_$(head -c 32 /dev/urandom | base64 -w0)\")",
                            set->count + 1, key.len, WH_SECRET_MIN_BYTES, WH_SECRET_MIN_BYTES);
            OPENSSL_cleanse(key.bytes, key.len);
            free(key.bytes);
            goto Exit;
        }
        if (set->count == cap) {
            cap = cap ? cap * 2 : 2;
            set->keys = xrealloc(set->keys, cap * sizeof(*set->keys));
        }
        set->keys[set->count++] = key;
    }
    if (set->count == 0) {
        err = xstrdup("no secret given");
        goto Exit;
    }
    *out = set;
    set = NULL;
Exit:
    wh_secrets_free(set);
    if (err) {
        if (why)
            *why = err;
        else
            free(err);
        return -1;
    }
    return 0;
}

void wh_secrets_free(struct wh_secrets *secrets)
{
    if (!secrets)
        return;
    for (size_t i = 0; i < secrets->count; i++) {
        OPENSSL_cleanse(secrets->keys[i].bytes, secrets->keys[i].len);
        free(secrets->keys[i].bytes);
    }
    free(secrets->keys);
    free(secrets);
}

size_t wh_secrets_count(const struct wh_secrets *secrets)
{
    return secrets ? secrets->count : 0;
}

char *wh_sign(const struct wh_secrets *secrets, const char *msg_id, int64_t timestamp_s,
              const char *body, size_t len)
{
    if (!secrets || !msg_id || (!body && len > 0))
        return NULL;
    char ts[24];
    snprintf(ts, sizeof(ts), "%" PRId64, timestamp_s);
    struct buf out = BUF_INIT;
    for (size_t i = 0; i < secrets->count; i++) {
        char sig[SIG_B64_SIZE];
        if (!sign_one(&secrets->keys[i], msg_id, ts, body, len, sig)) {
            buf_free(&out);
            return NULL;
        }
        buf_printf(&out, "%sv1,%s", i ? " " : "", sig);
    }
    return buf_steal(&out);
}

/* Standard Webhooks timestamps are positive decimal integers without sign or spaces. */
static bool parse_timestamp(const char *s, int64_t *out)
{
    int64_t v = 0;
    size_t n = 0;
    for (; s[n]; n++) {
        if (s[n] < '0' || s[n] > '9' || n >= 18)
            return false;
        v = v * 10 + (s[n] - '0');
    }
    if (n == 0)
        return false;
    *out = v;
    return true;
}

bool wh_verify(const struct wh_secrets *secrets, const char *msg_id, const char *timestamp,
               const char *body, size_t len, const char *signature, int64_t now_s,
               int64_t tolerance_s)
{
    int64_t ts = 0;
    if (!secrets || !msg_id || !timestamp || !signature || (!body && len > 0))
        return false;
    if (!parse_timestamp(timestamp, &ts))
        return false;
    if (tolerance_s > 0 && (ts > now_s + tolerance_s || ts < now_s - tolerance_s))
        return false;

    /* Sign with the canonical form of the timestamp, as the reference libraries do. */
    char canon[24];
    snprintf(canon, sizeof(canon), "%" PRId64, ts);
    bool match = false;
    for (size_t i = 0; i < secrets->count && !match; i++) {
        char expected[SIG_B64_SIZE];
        if (!sign_one(&secrets->keys[i], msg_id, canon, body, len, expected))
            return false;
        size_t expected_len = strlen(expected);
        const char *p = signature;
        while (*p && !match) {
            while (*p == ' ')
                p++;
            const char *tok = p;
            while (*p && *p != ' ')
                p++;
            size_t n = (size_t)(p - tok);
            if (n == 3 + expected_len && memcmp(tok, "v1,", 3) == 0 &&
                CRYPTO_memcmp(tok + 3, expected, expected_len) == 0)
                match = true;
        }
    }
    return match;
}

/* ---- task tokens ------------------------------------------------------------------------- */

void wh_task_token_hash(const char *token, char hash[WH_TASK_TOKEN_HASH_LEN + 1])
{
    static const char digits[] = "0123456789abcdef";
    unsigned char md[SHA256_LEN];
    unsigned int md_len = 0;
    if (EVP_Digest(token, strlen(token), md, &md_len, EVP_sha256(), NULL) != 1 ||
        md_len != SHA256_LEN) {
        /* Only a broken libcrypto fails here; a wrong hash would silently refuse every token. */
        fputs("keeld: SHA-256 failed\n", stderr);
        abort();
    }
    for (size_t i = 0; i < SHA256_LEN; i++) {
        hash[2 * i] = digits[md[i] >> 4];
        hash[2 * i + 1] = digits[md[i] & 15];
    }
    hash[WH_TASK_TOKEN_HASH_LEN] = '\0';
}

void wh_task_token_new(char token[WH_TASK_TOKEN_LEN + 1], char hash[WH_TASK_TOKEN_HASH_LEN + 1])
{
    ids_random_hex(WH_TASK_TOKEN_LEN / 2, token);
    wh_task_token_hash(token, hash);
}
