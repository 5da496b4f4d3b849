/* The HTTP server end to end in-process: real libmicrohttpd, real sockets, libcurl client. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "http/server.h"
#include "util/alloc.h"
#include "util/buf.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void h_echo(struct http_request *req)
{
    json_t *doc = http_body_json(req, false);
    if (!doc)
        return;
    http_reply_json(req, 200, json_pack("{s:o}", "got", doc));
}

static void h_noreply(struct http_request *req)
{
    (void)req;
}

static void h_param(struct http_request *req)
{
    const char *q = http_query(req, "q");
    http_reply_json(req, 200, json_pack("{s:s?, s:s?}", "id", http_param(req, "id"), "q", q));
}

static void *resume_later(void *arg)
{
    struct http_request *req = arg;
    usleep(100 * 1000);
    http_reply_json(req, 200, json_pack("{s:b}", "resumed", 1));
    http_resume(req);
    return NULL;
}

static void h_suspend(struct http_request *req)
{
    pthread_t t;
    http_suspend(req);
    pthread_create(&t, NULL, resume_later, req);
    pthread_detach(t);
}

/* Resumes before the handler returns: the reply must still be delivered. */
static void h_suspend_fast(struct http_request *req)
{
    http_suspend(req);
    http_reply_json(req, 200, json_pack("{s:b}", "fast", 1));
    http_resume(req);
}

static const struct http_route routes[] = {
    {"POST", "/echo", h_echo},       {"GET", "/noreply", h_noreply},
    {"GET", "/items/{id}", h_param}, {"GET", "/v1/secure", h_param},
    {"GET", "/suspend", h_suspend},  {"GET", "/suspend-fast", h_suspend_fast},
};

struct reply {
    long status;
    struct buf body;
    struct buf headers;
    json_t *json;
};

static size_t collect(char *p, size_t size, size_t n, void *user)
{
    buf_append(user, p, size * n);
    return size * n;
}

static uint16_t port;

static void request(const char *method, const char *path, const char *content_type,
                    const char *body, size_t body_len, const char *auth, struct reply *r)
{
    memset(r, 0, sizeof *r);
    CURL *c = curl_easy_init();
    char url[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%u%s", port, path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    struct curl_slist *h = NULL;
    char line[256];
    if (content_type) {
        snprintf(line, sizeof line, "Content-Type: %s", content_type);
        h = curl_slist_append(h, line);
    }
    if (auth) {
        snprintf(line, sizeof line, "Authorization: %s", auth);
        h = curl_slist_append(h, line);
    }
    h = curl_slist_append(h, "Expect:");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    }
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r->body);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &r->headers);
    assert_int_equal(curl_easy_perform(c), CURLE_OK);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    if (r->body.len)
        r->json = json_loadb(r->body.data, r->body.len, 0, NULL);
}

static void reply_free(struct reply *r)
{
    buf_free(&r->body);
    buf_free(&r->headers);
    json_decref(r->json);
}

static void assert_problem(struct reply *r, long status, const char *slug)
{
    assert_int_equal(r->status, status);
    assert_non_null(strstr(r->headers.data, "Content-Type: application/problem+json"));
    assert_non_null(r->json);
    char type[128];
    snprintf(type, sizeof type, "urn:keel:problem:%s", slug);
    assert_string_equal(json_string_value(json_object_get(r->json, "type")), type);
    assert_int_equal(json_integer_value(json_object_get(r->json, "status")), status);
    assert_non_null(json_string_value(json_object_get(r->json, "title")));
}

static struct http_server *server;

static int setup(void **state)
{
    (void)state;
    struct http_server_config cfg = {
        .listen = "127.0.0.1:0",
        .threads = 2,
        .max_body_bytes = 1024,
        .api_tokens = "alpha, beta",
        .routes = routes,
        .n_routes = sizeof routes / sizeof routes[0],
    };
    char *why = NULL;
    server = http_server_start(&cfg, &why);
    assert_non_null(server);
    port = http_server_port(server);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    assert_int_equal(http_server_stop(server, 1000), 0);
    return 0;
}

static void test_json_echo(void **state)
{
    (void)state;
    struct reply r;
    request("POST", "/echo", "application/json; charset=utf-8", "{\"a\":[1,2]}", 11, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(
        json_integer_value(json_array_get(json_object_get(json_object_get(r.json, "got"), "a"), 1)),
        2);
    reply_free(&r);
}

static void test_malformed_json_has_position(void **state)
{
    (void)state;
    struct reply r;
    request("POST", "/echo", "application/json", "{\"a\": tru}", 10, NULL, &r);
    assert_problem(&r, 400, "malformed-json");
    assert_int_equal(json_integer_value(json_object_get(r.json, "line")), 1);
    assert_true(json_integer_value(json_object_get(r.json, "column")) >= 7);
    assert_non_null(strstr(json_string_value(json_object_get(r.json, "detail")), "line 1"));
    reply_free(&r);
}

static void test_duplicate_keys_rejected(void **state)
{
    (void)state;
    struct reply r;
    request("POST", "/echo", "application/json", "{\"a\":1,\"a\":2}", 13, NULL, &r);
    assert_problem(&r, 400, "malformed-json");
    reply_free(&r);
}

static void test_wrong_content_type(void **state)
{
    (void)state;
    struct reply r;
    request("POST", "/echo", "text/plain", "{}", 2, NULL, &r);
    assert_problem(&r, 415, "unsupported-media-type");
    reply_free(&r);
    request("POST", "/echo", NULL, "{}", 2, NULL, &r);
    assert_problem(&r, 415, "unsupported-media-type");
    reply_free(&r);
}

static void test_empty_body_required(void **state)
{
    (void)state;
    struct reply r;
    request("POST", "/echo", "application/json", "", 0, NULL, &r);
    assert_problem(&r, 400, "empty-body");
    reply_free(&r);
}

static void test_body_too_large(void **state)
{
    (void)state;
    char *big = xmalloc(5000);
    memset(big, ' ', 5000);
    struct reply r;
    request("POST", "/echo", "application/json", big, 5000, NULL, &r);
    assert_problem(&r, 413, "payload-too-large");
    reply_free(&r);
    free(big);
}

static void test_not_found_and_method(void **state)
{
    (void)state;
    struct reply r;
    request("GET", "/nowhere", NULL, NULL, 0, NULL, &r);
    assert_problem(&r, 404, "not-found");
    reply_free(&r);
    request("DELETE", "/echo", NULL, NULL, 0, NULL, &r);
    assert_problem(&r, 405, "method-not-allowed");
    assert_non_null(strstr(r.headers.data, "Allow: POST"));
    reply_free(&r);
}

static void test_no_reply_is_500_without_details(void **state)
{
    (void)state;
    struct reply r;
    request("GET", "/noreply", NULL, NULL, 0, NULL, &r);
    assert_problem(&r, 500, "internal");
    assert_null(json_object_get(r.json, "detail"));
    reply_free(&r);
}

static void test_params_and_query(void **state)
{
    (void)state;
    struct reply r;
    request("GET", "/items/a%20b?q=x%26y", NULL, NULL, 0, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(json_string_value(json_object_get(r.json, "id")), "a b");
    assert_string_equal(json_string_value(json_object_get(r.json, "q")), "x&y");
    reply_free(&r);
}

static void test_bearer_tokens(void **state)
{
    (void)state;
    struct reply r;
    request("GET", "/v1/secure", NULL, NULL, 0, NULL, &r);
    assert_problem(&r, 401, "unauthorized");
    assert_non_null(strstr(r.headers.data, "WWW-Authenticate: Bearer"));
    reply_free(&r);
    request("GET", "/v1/secure", NULL, NULL, 0, "Bearer alph", &r);
    assert_int_equal(r.status, 401);
    reply_free(&r);
    request("GET", "/v1/secure", NULL, NULL, 0, "Bearer beta", &r);
    assert_int_equal(r.status, 200);
    reply_free(&r);
    /* Outside /v1 no token is needed (health checks, the UI's files). */
    request("GET", "/items/1", NULL, NULL, 0, NULL, &r);
    assert_int_equal(r.status, 200);
    reply_free(&r);
}

static void test_suspend_resume(void **state)
{
    (void)state;
    struct reply r;
    request("GET", "/suspend", NULL, NULL, 0, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_true(json_is_true(json_object_get(r.json, "resumed")));
    reply_free(&r);
    request("GET", "/suspend-fast", NULL, NULL, 0, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_true(json_is_true(json_object_get(r.json, "fast")));
    reply_free(&r);
}

struct bg {
    struct reply r;
};

static void *suspend_in_bg(void *arg)
{
    struct bg *b = arg;
    request("GET", "/suspend", NULL, NULL, 0, NULL, &b->r);
    return NULL;
}

/* Many suspended requests at once hold no thread: with 2 server threads, 20 in flight. */
static void test_many_suspended(void **state)
{
    (void)state;
    enum { N = 20 };
    pthread_t t[N];
    struct bg b[N];
    for (int i = 0; i < N; i++)
        pthread_create(&t[i], NULL, suspend_in_bg, &b[i]);
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(b[i].r.status, 200);
        reply_free(&b[i].r);
    }
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_ALL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_echo),
        cmocka_unit_test(test_malformed_json_has_position),
        cmocka_unit_test(test_duplicate_keys_rejected),
        cmocka_unit_test(test_wrong_content_type),
        cmocka_unit_test(test_empty_body_required),
        cmocka_unit_test(test_body_too_large),
        cmocka_unit_test(test_not_found_and_method),
        cmocka_unit_test(test_no_reply_is_500_without_details),
        cmocka_unit_test(test_params_and_query),
        cmocka_unit_test(test_bearer_tokens),
        cmocka_unit_test(test_suspend_resume),
        cmocka_unit_test(test_many_suspended),
    };
    int rc = cmocka_run_group_tests(tests, setup, teardown);
    curl_global_cleanup();
    return rc;
}
