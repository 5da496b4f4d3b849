/* Filters of bulk actions. */
#include "ops/batch_filter.h"

#include "api/common.h"
#include "api/tags.h"
#include "store/stmt.h"
#include "util/alloc.h"
#include "util/jsontext.h"
#include "util/timeutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const members[] = {"workflow", "name", "status", "since",
                                      "until",    "ids",  "tags",   NULL};
static const char *const statuses[] = {"running", "completed", "failed", "cancelled", "terminated"};
#define N_STATUSES (sizeof statuses / sizeof statuses[0])

bool batch_filter_member(const char *key)
{
    for (size_t i = 0; members[i]; i++) {
        if (!strcmp(key, members[i]))
            return true;
    }
    return false;
}

static int status_index(const char *s, size_t n)
{
    for (size_t i = 0; i < N_STATUSES; i++) {
        if (strlen(statuses[i]) == n && !strncmp(s, statuses[i], n))
            return (int)i;
    }
    return -1;
}

/* "failed", "running,failed" or ["running", "failed"] as a sorted list; NULL when bad. */
static json_t *read_status(const json_t *v)
{
    bool seen[N_STATUSES] = {false};
    size_t count = 0;
    if (json_is_string(v)) {
        const char *p = json_string_value(v);
        for (;;) {
            size_t n = strcspn(p, ",");
            int i = status_index(p, n);
            if (i < 0)
                return NULL;
            count += !seen[i];
            seen[i] = true;
            if (!p[n])
                break;
            p += n + 1;
        }
    } else if (json_is_array(v) && json_array_size(v) > 0) {
        size_t k;
        json_t *s;
        json_array_foreach(v, k, s)
        {
            const char *t = json_string_value(s);
            int i = t ? status_index(t, strlen(t)) : -1;
            if (i < 0)
                return NULL;
            count += !seen[i];
            seen[i] = true;
        }
    } else {
        return NULL;
    }
    json_t *list = json_array();
    for (size_t i = 0; i < N_STATUSES; i++) {
        if (seen[i])
            json_array_append_new(list, json_string(statuses[i]));
    }
    (void)count;
    return list;
}

json_t *batch_filter_read(const json_t *body, json_t *errors)
{
    json_t *filter = json_object();
    bool ok = true;
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)body, key, v)
    {
        if (!batch_filter_member(key))
            continue;
        char *ptr = xasprintf("/%s", key);
        const char *s = json_string_value(v);
        const char *why = NULL;
        int64_t t;
        if (!strcmp(key, "workflow") || !strcmp(key, "name")) {
            if (!s || !api_valid_name(s, 128, "_.-"))
                why = "must be a name: 1-128 characters of A-Z a-z 0-9 _ . -";
            else
                json_object_set(filter, key, v);
        } else if (!strcmp(key, "status")) {
            json_t *list = read_status(v);
            if (!list)
                why = "must be a status (running, completed, failed, cancelled, terminated) or "
                      "a non-empty list of them";
            else
                json_object_set_new(filter, key, list);
        } else if (!strcmp(key, "since") || !strcmp(key, "until")) {
            if (!s || !time_parse_rfc3339(s, &t))
                why = "must be an RFC 3339 time, e.g. 2026-01-02T03:04:05Z";
            else
                json_object_set(filter, key, v);
        } else if (!strcmp(key, "ids")) {
            size_t n = json_array_size(v), i;
            json_t *id;
            if (!json_is_array(v) || n == 0 || n > BATCH_FILTER_MAX_IDS)
                why = "must be a list of 1 to 1000 execution ids";
            json_array_foreach(v, i, id)
            {
                if (!why &&
                    (!json_is_string(id) || !api_valid_execution_id(json_string_value(id)))) {
                    char *p = xasprintf("/ids/%zu", i);
                    api_add_field_error(errors, p,
                                        "must be an execution id: 1-128 characters of A-Z a-z "
                                        "0-9 _ - : @");
                    free(p);
                    ok = false;
                }
            }
            if (!why)
                json_object_set(filter, key, v);
        } else if (!strcmp(key, "tags")) {
            if (!tags_check(errors, ptr, v))
                ok = false;
            else if (json_object_size(v) > 0)
                json_object_set(filter, key, v);
        }
        if (why) {
            api_add_field_error(errors, ptr, why);
            ok = false;
        }
        free(ptr);
    }
    if (!ok) {
        json_decref(filter);
        return NULL;
    }
    return filter;
}

void batch_filter_params(const json_t *filter, struct batch_filter_params *p)
{
    memset(p, 0, sizeof *p);
    p->status = (struct buf)BUF_INIT;
    p->ids = (struct buf)BUF_INIT;
    p->v[0] = json_string_value(json_object_get(filter, "workflow"));
    p->v[8] = json_string_value(json_object_get(filter, "name"));
    p->v[2] = json_string_value(json_object_get(filter, "since"));
    p->v[3] = json_string_value(json_object_get(filter, "until"));
    const json_t *list = json_object_get(filter, "status");
    if (list) {
        const char *items[N_STATUSES];
        size_t n = 0, i;
        json_t *s;
        json_array_foreach(list, i, s)
        {
            if (n < N_STATUSES)
                items[n++] = json_string_value(s);
        }
        store_text_array(&p->status, items, n);
        p->v[1] = p->status.data;
    }
    const json_t *ids = json_object_get(filter, "ids");
    if (ids) {
        size_t n = json_array_size(ids), i;
        const char **items = xcalloc(n ? n : 1, sizeof *items);
        json_t *id;
        json_array_foreach(ids, i, id) items[i] = json_string_value(id);
        store_text_array(&p->ids, items, n);
        free(items);
        p->v[10] = p->ids.data;
    }
    const json_t *tags = json_object_get(filter, "tags");
    if (tags) {
        p->tags = json_text(tags);
        p->v[9] = p->tags;
    }
}

void batch_filter_params_free(struct batch_filter_params *p)
{
    buf_free(&p->status);
    buf_free(&p->ids);
    free(p->tags);
}
