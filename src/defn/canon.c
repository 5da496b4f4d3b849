/* Compact and canonical JSON serialisation, and the definition digest. */
#include "defn/canon.h"

#include "util/alloc.h"
#include "util/jsontext.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *defn_canonical_json(const json_t *doc)
{
    if (!doc)
        return NULL;
    struct buf b = BUF_INIT;
    if (!json_text_append(&b, doc, true)) {
        /* Only a string made without jansson's check gets here: no parsed document. */
        buf_free(&b);
        return NULL;
    }
    return buf_steal(&b);
}

void defn_digest_hex(const char *canonical, char out[65])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    if (!canonical)
        canonical = "";
    if (EVP_Digest(canonical, strlen(canonical), md, &md_len, EVP_sha256(), NULL) != 1 ||
        md_len != 32) {
        /* Only a broken libcrypto gets here; a digest of zeros would silently merge versions. */
        fprintf(stderr, "{\"level\":\"fatal\",\"msg\":\"SHA-256 failed\"}\n");
        abort();
    }
    for (unsigned int i = 0; i < md_len; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 0xf];
    }
    out[64] = '\0';
}
