/* Tags: validation of a start's tags and of the ?tag= filters. */
#include "api/tags.h"

#include "api/common.h"
#include "util/alloc.h"
#include "util/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool valid_key(const char *k, size_t len)
{
    if (len == 0 || len > TAGS_KEY_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = k[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '.' || c == '-' || c == '/';
        if (!ok)
            return false;
    }
    return true;
}

/* NULL when value is a tag value, else why not. */
static const char *value_problem(const char *value, size_t len)
{
    if (len == 0)
        return "must not be empty";
    if (len > TAGS_VALUE_MAX)
        return "must be at most 256 bytes";
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)value[i];
        if (c < 0x20 || c == 0x7f)
            return "must not contain control characters";
    }
    return NULL;
}

static const char key_rule[] = "a tag key must be 1-64 characters of A-Z a-z 0-9 _ . - /";

bool tags_check(json_t *errors, const char *pointer, const json_t *v)
{
    if (!json_is_object(v)) {
        api_add_field_error(errors, pointer,
                            "must be an object of string values, e.g. {\"customer\": \"42\"}");
        return false;
    }
    if (json_object_size(v) > TAGS_MAX_COUNT) {
        char msg[64];
        snprintf(msg, sizeof msg, "has %zu tags; at most %d are allowed", json_object_size(v),
                 TAGS_MAX_COUNT);
        api_add_field_error(errors, pointer, msg);
        return false;
    }
    bool ok = true;
    const char *key;
    const json_t *value;
    json_object_foreach((json_t *)v, key, value)
    {
        /* JSON Pointer escapes: ~ and / in a key. */
        struct buf ptr = BUF_INIT;
        buf_printf(&ptr, "%s/", pointer);
        for (const char *k = key; *k; k++) {
            if (*k == '~')
                buf_puts(&ptr, "~0");
            else if (*k == '/')
                buf_puts(&ptr, "~1");
            else
                buf_putc(&ptr, *k);
        }
        const char *why = NULL;
        if (!valid_key(key, strlen(key)))
            why = key_rule;
        else if (!strncmp(key, TAGS_RESERVED_PREFIX, strlen(TAGS_RESERVED_PREFIX)))
            why = "tag keys starting with \"keel.\" are Keel's own (keel.schedule names the "
                  "schedule that started an execution)";
        else if (!json_is_string(value))
            why = "must be a string";
        else
            why = value_problem(json_string_value(value), json_string_length(value));
        if (why) {
            api_add_field_error(errors, ptr.data, why);
            ok = false;
        }
        buf_free(&ptr);
    }
    return ok;
}

struct tag_scan {
    json_t *filter;
    char *error; /* the first problem, with the value */
};

static bool scan_tag(void *user, const char *value)
{
    struct tag_scan *scan = user;
    const char *v = value ? value : "";
    const char *colon = strchr(v, ':');
    size_t klen = colon ? (size_t)(colon - v) : strlen(v);
    const char *why = NULL;
    if (!colon)
        why = "must be key:value, e.g. customer:42";
    else if (!valid_key(v, klen))
        why = key_rule;
    else
        why = value_problem(colon + 1, strlen(colon + 1));
    if (!why && json_object_size(scan->filter) >= TAGS_MAX_COUNT)
        why = "at most 16 tag filters are allowed";
    char *k = colon ? xstrndup(v, klen) : NULL;
    const json_t *had = k ? json_object_get(scan->filter, k) : NULL;
    if (!why && had && strcmp(json_string_value(had), colon + 1) != 0)
        why = "two values for one tag key can never both match";
    if (why) {
        scan->error = xasprintf("\"%.80s\": %s", v, why);
        free(k);
        return false;
    }
    json_object_set_new(scan->filter, k, json_string(colon + 1));
    free(k);
    return true;
}

bool tags_query_filter(struct http_request *req, json_t **filter)
{
    struct tag_scan scan = {.filter = json_object(), .error = NULL};
    http_query_each(req, "tag", scan_tag, &scan);
    if (scan.error) {
        api_bad_parameter(req, "tag", scan.error);
        free(scan.error);
        json_decref(scan.filter);
        return false;
    }
    if (json_object_size(scan.filter) == 0) {
        json_decref(scan.filter);
        scan.filter = NULL;
    }
    *filter = scan.filter;
    return true;
}
