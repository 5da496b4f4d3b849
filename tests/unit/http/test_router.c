/* Router: literal and {param} segments, rest parameters, 404/405 and percent-decoding. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <string.h>

#include "http/router.h"

static void h_list(struct http_request *r)
{
    (void)r;
}
static void h_create(struct http_request *r)
{
    (void)r;
}
static void h_version(struct http_request *r)
{
    (void)r;
}
static void h_static(struct http_request *r)
{
    (void)r;
}

static const struct http_route routes[] = {
    {"GET", "/v1/workflows", h_list},
    {"POST", "/v1/workflows", h_create},
    {"GET", "/v1/workflows/{name}/versions/{version}", h_version},
    {"GET", "/ui/{path*}", h_static},
};
#define N (sizeof routes / sizeof routes[0])

static void test_literal(void **state)
{
    (void)state;
    struct router_match m;
    assert_int_equal(router_find(routes, N, "GET", "/v1/workflows", &m), ROUTER_FOUND);
    assert_ptr_equal(m.route->handler, h_list);
    router_match_free(&m);
    assert_int_equal(router_find(routes, N, "POST", "/v1/workflows", &m), ROUTER_FOUND);
    assert_ptr_equal(m.route->handler, h_create);
    router_match_free(&m);
}

static void test_params_decoded(void **state)
{
    (void)state;
    struct router_match m;
    assert_int_equal(router_find(routes, N, "GET", "/v1/workflows/order%2Dflow/versions/3", &m),
                     ROUTER_FOUND);
    assert_string_equal(router_param(&m, "name"), "order-flow");
    assert_string_equal(router_param(&m, "version"), "3");
    assert_null(router_param(&m, "nope"));
    router_match_free(&m);
}

static void test_rest_param(void **state)
{
    (void)state;
    struct router_match m;
    assert_int_equal(router_find(routes, N, "GET", "/ui/executions/abc/x", &m), ROUTER_FOUND);
    assert_string_equal(router_param(&m, "path"), "executions/abc/x");
    router_match_free(&m);
}

static void test_head_is_get(void **state)
{
    (void)state;
    struct router_match m;
    assert_int_equal(router_find(routes, N, "HEAD", "/v1/workflows", &m), ROUTER_FOUND);
    router_match_free(&m);
}

static void test_not_found(void **state)
{
    (void)state;
    struct router_match m;
    const char *paths[] = {"/",
                           "/v1",
                           "/v1/workflows/",
                           "/v1/workflows/x",
                           "/v1/workflowsx",
                           "/v1/workflows/x/versions",
                           "/v1/workflows/x/versions/1/extra",
                           "/v1/workflows//versions/1"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++)
        assert_int_equal(router_find(routes, N, "GET", paths[i], &m), ROUTER_NOT_FOUND);
}

static void test_wrong_method_lists_allow(void **state)
{
    (void)state;
    struct router_match m;
    assert_int_equal(router_find(routes, N, "DELETE", "/v1/workflows", &m), ROUTER_WRONG_METHOD);
    assert_string_equal(m.allow, "GET, POST");
    assert_int_equal(router_find(routes, N, "POST", "/v1/workflows/a/versions/1", &m),
                     ROUTER_WRONG_METHOD);
    assert_string_equal(m.allow, "GET");
}

static void test_bad_percent_encoding(void **state)
{
    (void)state;
    struct router_match m;
    assert_int_equal(router_find(routes, N, "GET", "/v1/workflows/a%zz/versions/1", &m),
                     ROUTER_BAD_PATH);
    assert_int_equal(router_find(routes, N, "GET", "/v1/workflows/a%0/versions/1", &m),
                     ROUTER_BAD_PATH);
    assert_int_equal(router_find(routes, N, "GET", "/v1/workflows/a%00/versions/1", &m),
                     ROUTER_BAD_PATH);
}

/* Not text: each is refused before any route is tried, with the reason and where it starts. */
static void test_bad_paths_table(void **state)
{
    (void)state;
    static const struct {
        const char *path;
        const char *reason; /* a word of the reason */
        size_t at;
    } cases[] = {
        {"/v1/workflows/%FF/versions/1", "UTF-8", 14},
        {"/v1/workflows/\xff/versions/1", "UTF-8", 14},
        {"/v1/workflows/a%C3/versions/1", "UTF-8", 15},         /* truncated sequence */
        {"/v1/workflows/%C3%28/versions/1", "UTF-8", 14},       /* bad continuation */
        {"/v1/workflows/%C0%AF/versions/1", "UTF-8", 14},       /* overlong '/' */
        {"/v1/workflows/%ED%A0%80/versions/1", "UTF-8", 14},    /* surrogate */
        {"/v1/workflows/%F4%90%80%80/versions/1", "UTF-8", 14}, /* above U+10FFFF */
        {"/v1/workflows/ab%E2%82", "UTF-8", 16},                /* ends mid-character */
        {"/v1/work\xc3"
         "flows",
         "UTF-8", 8}, /* in a literal segment */
        {"/v1/workflows/a%00b/versions/1", "NUL", 15},
        {"/v1/%00", "NUL", 4},
        {"/v1/workflows/a%01/versions/1", "control", 15},
        {"/v1/workflows/a\x7f/versions/1", "control", 15},
        {"/v1/workflows/a%7F/versions/1", "control", 15},
        {"/v1/workflows/a\tb", "control", 15},
        {"/v1/workflows/a%zz/versions/1", "hex", 15},
        {"/v1/workflows/a%4", "hex", 15},
        {"/v1/nowhere%", "hex", 11},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct router_match m;
        assert_int_equal(router_find(routes, N, "GET", cases[i].path, &m), ROUTER_BAD_PATH);
        assert_non_null(m.bad_reason);
        if (!strstr(m.bad_reason, cases[i].reason) || m.bad_at != cases[i].at)
            fail_msg("case %zu (%s): got \"%s\" at %zu", i, cases[i].path, m.bad_reason, m.bad_at);
        router_match_free(&m);
    }
}

/* Text that is fine: raw and encoded UTF-8, and params decoded exactly once. */
static void test_good_paths_decoded_once(void **state)
{
    (void)state;
    struct router_match m;
    assert_int_equal(router_find(routes, N, "GET", "/v1/workflows/a%252Fb/versions/1", &m),
                     ROUTER_FOUND);
    assert_string_equal(router_param(&m, "name"), "a%2Fb");
    router_match_free(&m);
    assert_int_equal(router_find(routes, N, "GET", "/v1/workflows/a%2Fb/versions/1", &m),
                     ROUTER_FOUND);
    assert_string_equal(router_param(&m, "name"), "a/b");
    router_match_free(&m);
    assert_int_equal(router_find(routes, N, "GET", "/v1/workflows/%C3%A9t%C3%A9/versions/1", &m),
                     ROUTER_FOUND);
    assert_string_equal(router_param(&m, "name"), "\xc3\xa9t\xc3\xa9");
    router_match_free(&m);
    assert_int_equal(router_find(routes, N, "GET", "/v1/workflows/\xf0\x9f\x98\x80/versions/1", &m),
                     ROUTER_FOUND);
    assert_string_equal(router_param(&m, "name"), "\xf0\x9f\x98\x80");
    router_match_free(&m);
    size_t at = 99;
    assert_null(router_check_path("/a%20b/%E2%82%AC", 16, &at));
    assert_int_equal(at, 99);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_literal),
        cmocka_unit_test(test_params_decoded),
        cmocka_unit_test(test_rest_param),
        cmocka_unit_test(test_head_is_get),
        cmocka_unit_test(test_not_found),
        cmocka_unit_test(test_wrong_method_lists_allow),
        cmocka_unit_test(test_bad_percent_encoding),
        cmocka_unit_test(test_bad_paths_table),
        cmocka_unit_test(test_good_paths_decoded_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
