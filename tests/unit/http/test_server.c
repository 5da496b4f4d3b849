/* The HTTP server end to end in-process: real libmicrohttpd, real sockets, libcurl client. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "http/server.h"
#include "util/alloc.h"
#include "util/buf.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
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

static void h_query_unknown(struct http_request *req)
{
    static const char *const allowed[] = {"status", "limit", NULL};
    const char *bad = http_query_unknown(req, allowed);
    http_reply_json(req, 200, json_pack("{s:s?}", "unknown", bad));
}

static void *resume_later(void *arg)
{
    struct http_request *req = arg;
    usleep(100 * 1000);
    http_reply_json(req, 200, json_pack("{s:b}", "resumed", 1));
    http_resume(req);
    return NULL;
}

static void *resume_much_later(void *arg)
{
    struct http_request *req = arg;
    usleep(3000 * 1000);
    http_reply_json(req, 200, json_pack("{s:b}", "resumed", 1));
    http_resume(req);
    return NULL;
}

static void h_suspend_long(struct http_request *req)
{
    pthread_t t;
    http_suspend(req);
    pthread_create(&t, NULL, resume_much_later, req);
    pthread_detach(t);
}

static void h_ok(struct http_request *req)
{
    http_reply_json(req, 200, json_pack("{s:s}", "path", http_path(req)));
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
    {"POST", "/echo", h_echo},
    {"GET", "/noreply", h_noreply},
    {"GET", "/items/{id}", h_param},
    {"GET", "/v1/secure", h_param},
    {"GET", "/suspend", h_suspend},
    {"GET", "/suspend-fast", h_suspend_fast},
    {"GET", "/query-unknown", h_query_unknown},
    {"GET", "/suspend-long", h_suspend_long},
    {"GET", "/healthz", h_ok},
    {"GET", "/readyz", h_ok},
    {"GET", "/", h_ok},
    {"GET", "/ui/{path*}", h_ok},
    {"GET", "/metrics", h_ok},
    {"POST", "/v1/tasks/{token}/complete", h_ok},
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

static struct http_server_config base_config(void)
{
    struct http_server_config cfg = {
        .listen = "127.0.0.1:0",
        .threads = 2,
        .max_body_bytes = 1024,
        .routes = routes,
        .n_routes = sizeof routes / sizeof routes[0],
    };
    return cfg;
}

static struct http_server *start(const struct http_server_config *cfg)
{
    char *why = NULL;
    struct http_server *s = http_server_start(cfg, &why);
    if (!s)
        fail_msg("cannot start: %s", why);
    return s;
}

static int setup(void **state)
{
    (void)state;
    struct http_server_config cfg = base_config();
    server = start(&cfg);
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

/* ---- raw sockets, for what curl will not send ------------------------------------------- */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A blocking TCP connection to 127.0.0.1:p from source address src (NULL: any). */
static int connect_from(const char *src, uint16_t p)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    if (src) {
        struct sockaddr_in a = {.sin_family = AF_INET};
        inet_pton(AF_INET, src, &a.sin_addr);
        assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    }
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(p)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    return fd;
}

/* Writes all of data; false when the peer closed or reset the connection meanwhile. */
static bool send_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        p += n;
        len -= (size_t)n;
    }
    return true;
}

/* Reads until the peer closes or 30 s pass; the bytes, NUL-terminated, in *out. False on a
 * reset (ECONNRESET) before anything complete was read. */
static bool read_until_close(int fd, struct buf *out)
{
    int64_t deadline = now_ms() + 30000;
    char chunk[4096];
    for (;;) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int left = (int)(deadline - now_ms());
        if (left <= 0 || poll(&pfd, 1, left) <= 0)
            return out->len > 0;
        ssize_t n = recv(fd, chunk, sizeof chunk, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return false;
        if (n == 0)
            return true;
        buf_append(out, chunk, (size_t)n);
        /* One reply is enough: stop at the end of a Content-Length body. */
        const char *end = out->data ? strstr(out->data, "\r\n\r\n") : NULL;
        const char *cl = out->data ? strcasestr(out->data, "\r\nContent-Length: ") : NULL;
        if (end && cl && cl < end &&
            out->len >= (size_t)(end + 4 - out->data) + strtoul(cl + 18, NULL, 10))
            return true;
    }
}

/* Sends a raw request (whole, as given) on a new connection and parses the reply into r. */
static void raw_request(const char *text, size_t len, struct reply *r)
{
    memset(r, 0, sizeof *r);
    int fd = connect_from(NULL, port);
    assert_true(send_all(fd, text, len));
    struct buf in = BUF_INIT;
    assert_true(read_until_close(fd, &in));
    close(fd);
    assert_non_null(in.data);
    assert_int_equal(sscanf(in.data, "HTTP/1.1 %ld", &r->status), 1);
    const char *end = strstr(in.data, "\r\n\r\n");
    assert_non_null(end);
    buf_append(&r->headers, in.data, (size_t)(end + 2 - in.data));
    buf_puts(&r->body, end + 4);
    r->json = json_loads(end + 4, 0, NULL);
    buf_free(&in);
}

/* Points stderr (the log) at a file while a test runs, and reads it back. */
struct log_capture {
    int saved;
    FILE *file;
};

static void capture_start(struct log_capture *c)
{
    fflush(stderr);
    c->file = tmpfile();
    assert_non_null(c->file);
    c->saved = dup(2);
    dup2(fileno(c->file), 2);
}

static char *capture_end(struct log_capture *c)
{
    fflush(stderr);
    dup2(c->saved, 2);
    close(c->saved);
    struct buf b = BUF_INIT;
    char chunk[4096];
    rewind(c->file);
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, c->file)) > 0)
        buf_append(&b, chunk, n);
    fclose(c->file);
    if (!b.data)
        buf_puts(&b, "");
    return buf_steal(&b);
}

static size_t count_of(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

/* ---- who may call what ------------------------------------------------------------------ */

static long status_of(const char *method, const char *path, const char *auth)
{
    struct reply r;
    request(method, path, method[0] == 'P' ? "application/json" : NULL,
            method[0] == 'P' ? "{}" : NULL, method[0] == 'P' ? 2 : 0, auth, &r);
    long st = r.status;
    reply_free(&r);
    return st;
}

static void test_bearer_tokens(void **state)
{
    (void)state;
    uint16_t saved = port;
    struct http_server_config cfg = base_config();
    cfg.api_tokens = "alpha, beta";
    struct http_server *s = start(&cfg);
    port = http_server_port(s);
    struct reply r;
    request("GET", "/v1/secure", NULL, NULL, 0, NULL, &r);
    assert_problem(&r, 401, "unauthorized");
    assert_non_null(strstr(r.headers.data, "WWW-Authenticate: Bearer"));
    reply_free(&r);
    assert_int_equal(status_of("GET", "/v1/secure", "Bearer alph"), 401);
    assert_int_equal(status_of("GET", "/v1/secure", "Bearer beta"), 200);
    /* Open: health checks, the UI, and task routes (the task token is the credential). */
    assert_int_equal(status_of("GET", "/healthz", NULL), 200);
    assert_int_equal(status_of("GET", "/readyz", NULL), 200);
    assert_int_equal(status_of("GET", "/", NULL), 200);
    assert_int_equal(status_of("GET", "/ui/app.js", NULL), 200);
    assert_int_equal(status_of("POST", "/v1/tasks/abc.def/complete", NULL), 200);
    /* Closed: /metrics, any other route, and paths no route matches. */
    assert_int_equal(status_of("GET", "/metrics", NULL), 401);
    assert_int_equal(status_of("GET", "/metrics", "Bearer alpha"), 200);
    assert_int_equal(status_of("GET", "/items/1", NULL), 401);
    assert_int_equal(status_of("GET", "/v1/tasks", NULL), 401);
    assert_int_equal(status_of("GET", "/v1/tasks/abc/complete/x", NULL), 401);
    assert_int_equal(status_of("GET", "/nowhere", NULL), 401);
    assert_int_equal(http_server_stop(s, 1000), 0);

    /* KEEL_METRICS_PUBLIC opens /metrics, and nothing else. */
    cfg.metrics_public = true;
    s = start(&cfg);
    port = http_server_port(s);
    assert_int_equal(status_of("GET", "/metrics", NULL), 200);
    assert_int_equal(status_of("GET", "/v1/secure", NULL), 401);
    assert_int_equal(http_server_stop(s, 1000), 0);
    port = saved;
}

static void test_listen_in_use_says_what_to_do(void **state)
{
    (void)state;
    struct http_server_config cfg = base_config();
    char listen[64];
    snprintf(listen, sizeof listen, "127.0.0.1:%u", port);
    cfg.listen = listen;
    char *why = NULL;
    assert_null(http_server_start(&cfg, &why));
    assert_non_null(why);
    char want[128];
    snprintf(want, sizeof want, "cannot listen on 127.0.0.1:%u: Address already in use", port);
    assert_non_null(strstr(why, want));
    assert_non_null(strstr(why, "KEEL_LISTEN or --listen"));
    free(why);
    cfg.listen = "nonsense";
    why = NULL;
    assert_null(http_server_start(&cfg, &why));
    assert_non_null(strstr(why, "KEEL_LISTEN"));
    assert_null(strstr(why, "addr "));
    free(why);
}

/* ---- bytes that are not text ------------------------------------------------------------ */

/* Sends GET raw_target and checks for a problem of that status and slug whose detail has
 * word. Returns NULL when it is so, else what went wrong (caller frees); asserts nothing, as
 * it runs while the log is captured. */
static char *check_bad(const char *raw_target, long status, const char *slug, const char *word)
{
    char text[512];
    int n = snprintf(text, sizeof text, "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                     raw_target);
    int fd = connect_from(NULL, port);
    struct buf in = BUF_INIT;
    bool ok = send_all(fd, text, (size_t)n) && read_until_close(fd, &in);
    close(fd);
    char *why = NULL;
    char type[128];
    snprintf(type, sizeof type, "\"type\":\"urn:keel:problem:%s\"", slug);
    long got = 0;
    if (!ok || !in.data || sscanf(in.data, "HTTP/1.1 %ld", &got) != 1)
        why = xasprintf("%s: no reply", raw_target);
    else if (got != status || !strstr(in.data, type) || (word && !strstr(in.data, word)))
        why = xasprintf("%s: want %ld %s mentioning %s, got: %s", raw_target, status, slug,
                        word ? word : "-", in.data);
    buf_free(&in);
    return why;
}

static void test_paths_and_queries_must_be_text(void **state)
{
    (void)state;
    static const struct {
        const char *target, *slug, *word;
    } cases[] = {
        {"/items/%FF", "bad-path", "UTF-8"},          {"/items/\xff\xfe", "bad-path", "UTF-8"},
        {"/it\xc3ms/1", "bad-path", "UTF-8"},         {"/items/a%00b", "bad-path", "NUL"},
        {"/items/a%01b", "bad-path", "control"},      {"/items/a%zz", "bad-path", "hex"},
        {"/items/1?q=%FF", "bad-query", "\\\"q\\\""}, {"/items/1?q=a%00b", "bad-query", "NUL"},
        {"/items/1?q=a%0Ab", "bad-query", "control"}, {"/items/1?%FF=1", "bad-query", "name"},
    };
    enum { N_CASES = sizeof cases / sizeof cases[0] };
    char *why[N_CASES];
    struct log_capture cap;
    capture_start(&cap);
    for (size_t i = 0; i < N_CASES; i++)
        why[i] = check_bad(cases[i].target, 400, cases[i].slug, cases[i].word);
    char *log = capture_end(&cap);
    for (size_t i = 0; i < N_CASES; i++)
        if (why[i])
            fail_msg("%s", why[i]);
    for (const unsigned char *p = (const unsigned char *)log; *p; p++)
        if (*p >= 0x80 || (*p < 0x20 && *p != '\n'))
            fail_msg("raw byte 0x%02x in the log: %s", *p, log);
    free(log);

    /* Decoded once: %252F is the text "%2F", %2F is "/", and UTF-8 passes. */
    struct reply r;
    request("GET", "/items/a%252Fb?q=x%252Fy", NULL, NULL, 0, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(json_string_value(json_object_get(r.json, "id")), "a%2Fb");
    assert_string_equal(json_string_value(json_object_get(r.json, "q")), "x%2Fy");
    reply_free(&r);
    request("GET", "/items/a%2Fb%C3%A9", NULL, NULL, 0, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(json_string_value(json_object_get(r.json, "id")), "a/b\xc3\xa9");
    reply_free(&r);
}

static void test_header_values_must_be_text(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "X-Thing: a\x01"
        "b\r\n",
        "Idempotency-Key: \xff\xfe\r\n",
        "Idempotency-Key: a\x7f\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[512];
        int n = snprintf(text, sizeof text,
                         "GET /items/1 HTTP/1.1\r\nHost: x\r\n%sConnection: close\r\n\r\n", bad[i]);
        struct reply r;
        raw_request(text, (size_t)n, &r);
        if (r.status == 200)
            fail_msg("header %zu reached the handler", i);
        assert_int_equal(r.status, 400);
        reply_free(&r);
    }
    /* A tab is allowed in a value. */
    const char *ok =
        "GET /items/1 HTTP/1.1\r\nHost: x\r\nX-Thing: a\tb\r\nConnection: close\r\n\r\n";
    struct reply r;
    raw_request(ok, strlen(ok), &r);
    assert_int_equal(r.status, 200);
    reply_free(&r);
}

static void test_nul_in_json_is_refused(void **state)
{
    (void)state;
    struct reply r;
    const char *body = "{\"id\": \"nul\\u0000y\"}";
    request("POST", "/echo", "application/json", body, strlen(body), NULL, &r);
    assert_problem(&r, 400, "malformed-json");
    const char *detail = json_string_value(json_object_get(r.json, "detail"));
    assert_non_null(strstr(detail, "\\u0000 is not allowed in strings"));
    assert_int_equal(json_integer_value(json_object_get(r.json, "line")), 1);
    assert_true(json_integer_value(json_object_get(r.json, "column")) >= 8);
    reply_free(&r);
}

/* ---- oversized bodies ------------------------------------------------------------------- */

/* A client that sends the whole oversized body without waiting (no Expect: 100-continue, as
 * Python's urllib and Node do) and only then reads must read the 413, not a reset. */
static void test_oversized_body_is_drained_then_413(void **state)
{
    (void)state;
    /* Larger than what the socket buffers absorb, so the client is still writing when a
     * server that does not drain closes; smaller than the drain bound. */
    enum { BODY = 6 * 1024 * 1024 };
    char head[256];
    int n = snprintf(head, sizeof head,
                     "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     "Content-Length: %d\r\n\r\n",
                     BODY);
    char *body = xmalloc(BODY);
    memset(body, ' ', BODY);
    int fd = connect_from(NULL, port);
    int small = 32 * 1024;
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    assert_true(send_all(fd, head, (size_t)n));
    bool sent = send_all(fd, body, BODY);
    struct buf in = BUF_INIT;
    bool read_ok = read_until_close(fd, &in);
    close(fd);
    free(body);
    if (!sent || !read_ok)
        fail_msg("the client got a reset (sent all: %d, read: %d)", sent, read_ok);
    assert_non_null(in.data);
    assert_non_null(strstr(in.data, "HTTP/1.1 413"));
    assert_non_null(strstr(in.data, "urn:keel:problem:payload-too-large"));
    buf_free(&in);
}

/* ---- slowloris -------------------------------------------------------------------------- */

/* The status of GET path, or -1 when there is no answer; asserts nothing. */
static long try_get(const char *path)
{
    CURL *c = curl_easy_init();
    char url[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%u%s", port, path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    struct buf sink = BUF_INIT;
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &sink);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
    long status = -1;
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    buf_free(&sink);
    return status;
}

/* Counts the sockets in fds[0..n) the server has closed (EOF or reset); closes those. */
static int count_closed(int *fds, int n)
{
    int closed = 0;
    for (int i = 0; i < n; i++) {
        if (fds[i] < 0) {
            closed++;
            continue;
        }
        struct pollfd pfd = {.fd = fds[i], .events = POLLIN};
        if (poll(&pfd, 1, 0) == 1) {
            char c;
            ssize_t r = recv(fds[i], &c, 1, MSG_DONTWAIT);
            if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
                close(fds[i]);
                fds[i] = -1;
                closed++;
            }
        }
    }
    return closed;
}

static int wait_closed(int *fds, int n, int want)
{
    int64_t deadline = now_ms() + 30000;
    int closed;
    while ((closed = count_closed(fds, n)) < want && now_ms() < deadline)
        usleep(20 * 1000);
    return closed;
}

/* Many half-open connections from one address (127.0.0.2) take only that address's share:
 * /healthz from another still answers, the silent ones are closed after the request timeout,
 * a long poll longer than that timeout still gets its answer, and the log is not flooded. */
static void test_slowloris(void **state)
{
    (void)state;
    enum { ATTACK = 60, PER_IP = 8 };
    uint16_t saved = port;
    struct http_server_config cfg = base_config();
    cfg.max_connections = 40;
    cfg.max_connections_per_ip = PER_IP;
    cfg.request_timeout_s = 1;
    struct log_capture cap;
    capture_start(&cap);
    struct http_server *s = start(&cfg);
    port = http_server_port(s);

    int fds[ATTACK];
    for (int i = 0; i < ATTACK; i++) {
        fds[i] = connect_from("127.0.0.2", port);
        const char *half = "GET /healthz HTTP/1.1\r\nHost: x\r\n";
        send_all(fds[i], half, strlen(half));
    }
    /* The server refuses all but PER_IP of them at once. */
    int closed = wait_closed(fds, ATTACK, ATTACK - PER_IP);
    long healthz = try_get("/healthz");
    /* The rest are closed by the request timeout, long before the old 120 s. */
    int closed_later = wait_closed(fds, ATTACK, ATTACK);
    for (int i = 0; i < ATTACK; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    /* A suspended long poll is not cut by that timeout (it answers after 3 s). */
    long long_poll = try_get("/suspend-long");
    int cut = http_server_stop(s, 1000);
    char *log = capture_end(&cap);
    port = saved;
    printf("slowloris: %d closed at once, healthz %ld, %d closed in all, long poll %ld, log:\n%s",
           closed, healthz, closed_later, long_poll, log);
    assert_int_equal(cut, 0);

    assert_true(closed >= ATTACK - PER_IP);
    assert_int_equal(healthz, 200);
    assert_int_equal(closed_later, ATTACK);
    assert_int_equal(long_poll, 200);
    size_t lines = count_of(log, "\"http server\"");
    if (lines > 4)
        fail_msg("%zu log lines from the server for %d connections:\n%s", lines, ATTACK, log);
    free(log);
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

static void expect_unknown(const char *path, const char *want)
{
    struct reply r;
    request("GET", path, NULL, NULL, 0, NULL, &r);
    assert_int_equal(r.status, 200);
    json_t *got = json_object_get(r.json, "unknown");
    if (want)
        assert_string_equal(json_string_value(got), want);
    else
        assert_true(json_is_null(got));
    reply_free(&r);
}

static void test_query_unknown(void **state)
{
    (void)state;
    expect_unknown("/query-unknown", NULL);
    expect_unknown("/query-unknown?status=failed&limit=5", NULL);
    expect_unknown("/query-unknown?stauts=failed", "stauts");
    expect_unknown("/query-unknown?status=failed&x=1&y=2", "x");
    expect_unknown("/query-unknown?Status=1", "Status");
    expect_unknown("/query-unknown?limit", NULL);
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
        cmocka_unit_test(test_listen_in_use_says_what_to_do),
        cmocka_unit_test(test_paths_and_queries_must_be_text),
        cmocka_unit_test(test_header_values_must_be_text),
        cmocka_unit_test(test_nul_in_json_is_refused),
        cmocka_unit_test(test_oversized_body_is_drained_then_413),
        cmocka_unit_test(test_slowloris),
        cmocka_unit_test(test_query_unknown),
        cmocka_unit_test(test_suspend_resume),
        cmocka_unit_test(test_many_suspended),
    };
    int rc = cmocka_run_group_tests(tests, setup, teardown);
    curl_global_cleanup();
    return rc;
}
