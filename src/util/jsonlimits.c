/* Depth, size and NUL checks on JSON values, each stopping at its bound. */
#include "util/jsonlimits.h"

#include <stdio.h>
#include <string.h>

/* ---- depth ------------------------------------------------------------------------------- */

/* True when v nests deeper than left more levels. */
static bool deeper_than(const json_t *v, size_t left)
{
    if (!json_is_array(v) && !json_is_object(v))
        return false;
    if (left == 0)
        return true;
    if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++)
            if (deeper_than(json_array_get(v, i), left - 1))
                return true;
        return false;
    }
    const char *key;
    json_t *child;
    json_object_foreach((json_t *)v, key, child)
    {
        if (deeper_than(child, left - 1))
            return true;
    }
    return false;
}

bool json_depth_exceeds(const json_t *v, size_t max_depth)
{
    return v && deeper_than(v, max_depth);
}

/* ---- size -------------------------------------------------------------------------------- */

/* The length of s (len bytes) as a JSON string, quotes included, as jansson writes it: '"' and
 * '\\' and \b \f \n \r \t take 2 bytes, other control characters 6 ("\u001f"); DEL and
 * non-ASCII bytes are written as they are. */
static size_t string_size(const char *s, size_t len)
{
    size_t n = 2;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\' || c == '\b' || c == '\f' || c == '\n' || c == '\r' || c == '\t')
            n += 2;
        else if (c < 0x20)
            n += 6;
        else
            n += 1;
    }
    return n;
}

/* Adds v's size to *total; false as soon as *total exceeds limit. */
static bool add_size(const json_t *v, size_t limit, size_t *total)
{
    switch (json_typeof(v)) {
    case JSON_STRING:
        *total += string_size(json_string_value(v), json_string_length(v));
        break;
    case JSON_INTEGER: {
        char text[32];
        int n = snprintf(text, sizeof text, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        *total += n > 0 ? (size_t)n : 1;
        break;
    }
    case JSON_REAL:
        *total += 24;
        break;
    case JSON_TRUE:
        *total += 4;
        break;
    case JSON_FALSE:
        *total += 5;
        break;
    case JSON_NULL:
        *total += 4;
        break;
    case JSON_ARRAY: {
        size_t n = json_array_size(v);
        *total += 2 + (n ? n - 1 : 0);
        for (size_t i = 0; i < n && *total <= limit; i++)
            if (!add_size(json_array_get(v, i), limit, total))
                return false;
        break;
    }
    case JSON_OBJECT: {
        size_t n = json_object_size(v);
        *total += 2 + (n ? n - 1 : 0);
        const char *key;
        size_t key_len;
        json_t *child;
        json_object_keylen_foreach((json_t *)v, key, key_len, child)
        {
            *total += string_size(key, key_len) + 1;
            if (*total > limit || !add_size(child, limit, total))
                return false;
        }
        break;
    }
    }
    return *total <= limit;
}

size_t json_encoded_size(const json_t *v, size_t limit)
{
    if (!v)
        return 0;
    size_t total = 0;
    add_size(v, limit, &total);
    return total;
}

/* ---- NUL characters ---------------------------------------------------------------------- */

struct nul_search {
    char *pointer;
    size_t size;
    size_t len;
};

/* Appends "/token" (escaped per RFC 6901) to the pointer being built, cutting at its size. */
static void push_token(struct nul_search *s, const char *token, size_t token_len)
{
    if (!s->pointer)
        return;
    char piece[8];
    for (size_t i = 0; i <= token_len; i++) {
        size_t n;
        if (i == 0) {
            piece[0] = '/';
            n = 1;
        } else if (token[i - 1] == '~') {
            memcpy(piece, "~0", 2);
            n = 2;
        } else if (token[i - 1] == '/') {
            memcpy(piece, "~1", 2);
            n = 2;
        } else if (token[i - 1] == '\0') {
            memcpy(piece, "\\u0000", 6);
            n = 6;
        } else {
            piece[0] = token[i - 1];
            n = 1;
        }
        if (s->len + n >= s->size)
            return;
        memcpy(s->pointer + s->len, piece, n);
        s->len += n;
        s->pointer[s->len] = '\0';
    }
}

static bool find_nul(const json_t *v, struct nul_search *s)
{
    size_t mark = s->len;
    if (json_is_string(v))
        return memchr(json_string_value(v), '\0', json_string_length(v)) != NULL;
    if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++) {
            char index[24];
            int n = snprintf(index, sizeof index, "%zu", i);
            push_token(s, index, (size_t)n);
            if (find_nul(json_array_get(v, i), s))
                return true;
            s->len = mark;
            if (s->pointer)
                s->pointer[mark] = '\0';
        }
        return false;
    }
    if (json_is_object(v)) {
        const char *key;
        size_t key_len;
        json_t *child;
        json_object_keylen_foreach((json_t *)v, key, key_len, child)
        {
            push_token(s, key, key_len);
            if (memchr(key, '\0', key_len) || find_nul(child, s))
                return true;
            s->len = mark;
            if (s->pointer)
                s->pointer[mark] = '\0';
        }
    }
    return false;
}

bool json_find_nul(const json_t *v, char *pointer, size_t pointer_size)
{
    struct nul_search s = {pointer_size ? pointer : NULL, pointer_size, 0};
    if (s.pointer)
        s.pointer[0] = '\0';
    return v && find_nul(v, &s);
}
