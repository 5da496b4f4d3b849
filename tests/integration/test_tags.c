/* Tags (issue 12) against a real keeld and PostgreSQL: tags given at start are returned with
 * the execution and take part in "the same start again"; bad tags are 422 naming the member and
 * write nothing; GET /v1/executions?tag=k:v finds exactly the executions holding every tag given,
 * newest first, page by page, combined with the other filters; a bad ?tag= is 400. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct proc keeld;
static char *db;

static int setup(void **state)
{
    (void)state;
    db = harness_create_db("keel_it_tags");
    keeld_start(&keeld, db, NULL, NULL);
    http_post_expect(keeld.base_url, "/v1/workflows",
                     "{\"name\": \"napper\", \"steps\": [{\"id\": \"nap\", \"sleep\": \"1h\"}]}",
                     201, NULL);
    http_post_expect(keeld.base_url, "/v1/workflows",
                     "{\"name\": \"quick\", \"steps\": [{\"id\": \"nap\", \"sleep\": \"1ms\"}]}",
                     201, NULL);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    keeld_stop(&keeld);
    free(db);
    return 0;
}

static void start(const char *workflow, const char *id, const char *tags, long want)
{
    char body[512];
    snprintf(body, sizeof body, "{\"id\": \"%s\"%s%s}", id, tags ? ", \"tags\": " : "",
             tags ? tags : "");
    char path[128];
    snprintf(path, sizeof path, "/v1/workflows/%s/executions", workflow);
    http_post_expect(keeld.base_url, path, body, want, NULL);
}

/* The ids of GET path's executions, joined by ",", following every next_cursor with limit. */
static char *list_ids(const char *query, int limit)
{
    char *ids = calloc(1, 1);
    char cursor[512] = "";
    for (int page = 0; page < 100; page++) {
        char path[1024];
        snprintf(path, sizeof path, "/v1/executions?%s&limit=%d%s%s", query, limit,
                 cursor[0] ? "&cursor=" : "", cursor);
        struct hreply r;
        http_get(keeld.base_url, path, &r);
        if (r.status != 200)
            fail_msg("GET %s: %ld %s", path, r.status, r.body);
        json_t *items = json_object_get(r.json, "executions");
        assert_true((int)json_array_size(items) <= limit);
        size_t i;
        json_t *e;
        json_array_foreach(items, i, e)
        {
            char *more = NULL;
            assert_true(asprintf(&more, "%s%s%s", ids, ids[0] ? "," : "", json_str(e, "id")) > 0);
            free(ids);
            ids = more;
        }
        const char *next = json_str(r.json, "next_cursor");
        if (!next) {
            hreply_free(&r);
            return ids;
        }
        snprintf(cursor, sizeof cursor, "%s", next);
        hreply_free(&r);
    }
    fail_msg("more than 100 pages");
    return ids;
}

static void assert_list(const char *query, const char *want)
{
    for (int limit = 1; limit <= 50; limit += 49) {
        char *ids = list_ids(query, limit);
        if (strcmp(ids, want) != 0)
            fail_msg("?%s (limit %d): got [%s], want [%s]", query, limit, ids, want);
        free(ids);
    }
}

static void test_start_and_read(void **state)
{
    (void)state;
    start("napper", "t-1", "{\"customer\": \"42\", \"region\": \"eu-west/1\"}", 201);
    struct hreply r;
    http_get(keeld.base_url, "/v1/executions/t-1", &r);
    assert_int_equal(r.status, 200);
    json_t *tags = json_object_get(r.json, "tags");
    assert_int_equal(json_object_size(tags), 2);
    assert_string_equal(json_str(tags, "customer"), "42");
    assert_string_equal(json_str(tags, "region"), "eu-west/1");
    hreply_free(&r);
    /* The same start again (members in another order) is the same execution; other tags or
     * none are another start. */
    start("napper", "t-1", "{\"region\": \"eu-west/1\", \"customer\": \"42\"}", 200);
    start("napper", "t-1", "{\"customer\": \"43\", \"region\": \"eu-west/1\"}", 409);
    start("napper", "t-1", NULL, 409);
    /* No tags and {} are one and the same: none, shown as {}. */
    start("napper", "t-none", NULL, 201);
    start("napper", "t-none", "{}", 200);
    http_get(keeld.base_url, "/v1/executions/t-none", &r);
    assert_int_equal(json_object_size(json_object_get(r.json, "tags")), 0);
    assert_true(json_is_object(json_object_get(r.json, "tags")));
    hreply_free(&r);
    assert_sql(db, "t", "SELECT tags IS NULL FROM executions WHERE id = 't-none'");
    assert_sql(db, "customer=42,region=eu-west/1",
               "SELECT string_agg(key || '=' || value, ',' ORDER BY key) FROM execution_tags "
               "WHERE execution_id = 't-1'");
    /* A code execution takes tags too. */
    http_post_expect(keeld.base_url, "/v1/executions",
                     "{\"id\": \"t-code\", \"name\": \"prog\", \"tags\": {\"customer\": \"42\"}}",
                     201, NULL);
    http_post_expect(keeld.base_url, "/v1/executions",
                     "{\"id\": \"t-code\", \"name\": \"prog\", \"tags\": {\"customer\": \"42\"}}",
                     200, NULL);
    http_post_expect(keeld.base_url, "/v1/executions",
                     "{\"id\": \"t-code\", \"name\": \"prog\", \"tags\": {\"customer\": \"7\"}}",
                     409, NULL);
    assert_list("tag=customer:42", "t-code,t-1");
}

static void expect_bad(const char *tags, const char *pointer)
{
    char body[4096];
    snprintf(body, sizeof body, "{\"id\": \"bad\", \"tags\": %s}", tags);
    struct hreply r = http_post_want(keeld.base_url, "/v1/workflows/napper/executions", body, 422);
    assert_problem(&r, 422, "validation");
    json_t *errors = json_object_get(r.json, "errors");
    bool found = false;
    size_t i;
    json_t *e;
    json_array_foreach(errors, i, e) found = found || !strcmp(json_str(e, "pointer"), pointer);
    if (!found)
        fail_msg("tags %s: no error at %s in %s", tags, pointer, r.body);
    hreply_free(&r);
}

static void test_bad_tags(void **state)
{
    (void)state;
    char *before = harness_sql_value(db, "SELECT count(*) FROM execution_tags");
    expect_bad("[\"a\"]", "/tags");
    expect_bad("\"customer:42\"", "/tags");
    expect_bad("{\"customer\": 42}", "/tags/customer");
    expect_bad("{\"customer\": null}", "/tags/customer");
    expect_bad("{\"customer\": \"\"}", "/tags/customer");
    expect_bad("{\"customer\": \"a\\nb\"}", "/tags/customer");
    expect_bad("{\"cust:omer\": \"1\"}", "/tags/cust:omer");
    expect_bad("{\"keel.schedule\": \"nightly\"}", "/tags/keel.schedule");
    expect_bad("{\"\": \"1\"}", "/tags/");
    expect_bad("{\"a~b/c d\": \"1\"}", "/tags/a~0b~1c d");
    char big[1024];
    snprintf(big, sizeof big, "{\"k\": \"%0257d\"}", 0);
    expect_bad(big, "/tags/k");
    snprintf(big, sizeof big, "{\"%065d\": \"v\"}", 0);
    char ptr[80];
    snprintf(ptr, sizeof ptr, "/tags/%065d", 0);
    expect_bad(big, ptr);
    strcpy(big, "{");
    for (int i = 0; i < 17; i++)
        snprintf(big + strlen(big), sizeof big - strlen(big), "%s\"k%d\": \"v\"", i ? ", " : "", i);
    strcat(big, "}");
    expect_bad(big, "/tags");
    /* 256 bytes, 64 characters and 16 tags are allowed. */
    snprintf(big, sizeof big, "{\"%064d\": \"%0256d\"}", 0, 0);
    start("napper", "t-long", big, 201);
    assert_sql(db, "0", "SELECT count(*) FROM executions WHERE id = 'bad'");
    char *after = harness_sql_value(db, "SELECT count(*) FROM execution_tags");
    assert_int_equal(atoi(after), atoi(before) + 1);
    free(before);
    free(after);
}

static void test_filters(void **state)
{
    (void)state;
    /* Twelve executions, created in order: customer 1 to 3 in turn, tier gold on the even
     * ones; the quick ones complete. */
    for (int i = 0; i < 12; i++) {
        char id[32], tags[128];
        snprintf(id, sizeof id, "f-%02d", i);
        snprintf(tags, sizeof tags, "{\"customer\": \"%d\"%s}", i % 3 + 1,
                 i % 2 == 0 ? ", \"tier\": \"gold\"" : "");
        start(i < 6 ? "napper" : "quick", id, tags, 201);
    }
    for (int i = 6; i < 12; i++) {
        char id[32];
        snprintf(id, sizeof id, "f-%02d", i);
        json_decref(wait_result(keeld.base_url, id));
    }
    assert_list("tag=customer:1", "f-09,f-06,f-03,f-00");
    assert_list("tag=customer:2&tag=tier:gold", "f-10,f-04");
    assert_list("tag=tier:gold&tag=customer:2", "f-10,f-04");
    assert_list("tag=tier:gold", "f-10,f-08,f-06,f-04,f-02,f-00");
    assert_list("tag=tier:gold&status=running", "f-04,f-02,f-00");
    assert_list("tag=tier:gold&workflow=quick", "f-10,f-08,f-06");
    assert_list("tag=tier:gold&tag=tier:gold", "f-10,f-08,f-06,f-04,f-02,f-00");
    assert_list("tag=customer:4", "");
    assert_list("tag=nobody:1", "");
    /* since/until bound the tag's rows too. */
    char *at = harness_sql_value(
        db, "SELECT to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') "
            "FROM executions WHERE id = 'f-04'");
    char q[256];
    snprintf(q, sizeof q, "tag=tier:gold&since=%s", at);
    assert_list(q, "f-10,f-08,f-06,f-04");
    snprintf(q, sizeof q, "tag=tier:gold&until=%s", at);
    assert_list(q, "f-02,f-00");
    free(at);
}

static void expect_bad_query(const char *query)
{
    char path[2048];
    snprintf(path, sizeof path, "/v1/executions?%s", query);
    struct hreply r;
    http_get(keeld.base_url, path, &r);
    assert_problem(&r, 400, "invalid-parameter");
    if (!strstr(r.body, "tag"))
        fail_msg("?%s: %s does not name the parameter", query, r.body);
    hreply_free(&r);
}

static void test_bad_filters(void **state)
{
    (void)state;
    expect_bad_query("tag=customer");
    expect_bad_query("tag=");
    expect_bad_query("tag");
    expect_bad_query("tag=:42");
    expect_bad_query("tag=cust%20omer:42");
    expect_bad_query("tag=customer:");
    expect_bad_query("tag=customer:1&tag=customer:2");
    char q[2048] = "";
    for (int i = 0; i < 17; i++)
        snprintf(q + strlen(q), sizeof q - strlen(q), "%stag=k%d:v", i ? "&" : "", i);
    expect_bad_query(q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_start_and_read),
        cmocka_unit_test(test_bad_tags),
        cmocka_unit_test(test_filters),
        cmocka_unit_test(test_bad_filters),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
