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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
