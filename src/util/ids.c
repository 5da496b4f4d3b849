/* Identifiers from the kernel's random source and SHA-256. */
#include "util/ids.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

static void random_bytes(unsigned char *p, size_t n)
{
    while (n > 0) {
        ssize_t got = getrandom(p, n, 0);
        if (got < 0) {
            /* getrandom only fails before the pool is seeded or on a bad pointer; neither can
             * be recovered from, and a predictable token would be worse than stopping. */
            perror("getrandom");
            abort();
        }
        p += got;
        n -= (size_t)got;
    }
}

static void hex(const unsigned char *p, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * n] = '\0';
}

void ids_uuid7(int64_t now_ms, char out[37])
{
    unsigned char b[16];
    random_bytes(b, sizeof b);
    uint64_t ms = (uint64_t)now_ms;
    for (int i = 0; i < 6; i++)
        b[i] = (unsigned char)(ms >> (40 - 8 * i));
    b[6] = (unsigned char)(0x70 | (b[6] & 0x0f)); /* version 7 */
    b[8] = (unsigned char)(0x80 | (b[8] & 0x3f)); /* variant 10 */
    char h[33];
    hex(b, 16, h);
    snprintf(out, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", h, h + 8, h + 12, h + 16, h + 20);
}

void ids_random_hex(size_t nbytes, char *out)
{
    unsigned char b[64];
    while (nbytes > 0) {
        size_t n = nbytes < sizeof b ? nbytes : sizeof b;
        random_bytes(b, n);
        hex(b, n, out);
        out += 2 * n;
        nbytes -= n;
    }
}

static void sha256(const char *a, const char *b, int n, unsigned char out[32])
{
    char tail[16];
    snprintf(tail, sizeof tail, "/%d", n);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    EVP_DigestUpdate(ctx, a, strlen(a));
    if (b) {
        EVP_DigestUpdate(ctx, "/", 1);
        EVP_DigestUpdate(ctx, b, strlen(b));
        EVP_DigestUpdate(ctx, tail, strlen(tail));
    }
    EVP_DigestFinal_ex(ctx, out, NULL);
    EVP_MD_CTX_free(ctx);
}

void ids_traceparent(const char *execution_id, const char *step_id, int attempt, char out[56])
{
    unsigned char trace[32], span[32];
    sha256(execution_id, NULL, 0, trace);
    sha256(execution_id, step_id, attempt, span);
    char t[33], s[17];
    hex(trace, 16, t);
    hex(span, 8, s);
    snprintf(out, 56, "00-%s-%s-01", t, s);
}
