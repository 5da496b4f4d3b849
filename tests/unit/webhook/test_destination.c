/* Activity destinations: URL syntax, the allow list (hosts, ports, CIDRs, IPv4 and IPv6), the
 * refused link-local and metadata addresses in their odd spellings, and keeld's own address. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "webhook/destination.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct wh_dest_policy *policy(const char *allow, const char *listen)
{
    struct wh_dest_policy *p = NULL;
    char *why = NULL;
    if (wh_dest_policy_new(allow, listen, &p, &why) < 0)
        fail_msg("policy \"%s\": %s", allow ? allow : "(null)", why);
    return p;
}

static enum wh_dest_verdict url_verdict(const struct wh_dest_policy *p, const char *url)
{
    char *why = NULL;
    enum wh_dest_verdict v = wh_dest_check_url(p, url, NULL, &why);
    if (v == WH_DEST_OK)
        assert_null(why);
    else
        assert_non_null(why);
    free(why);
    return v;
}

struct url_case {
    const char *url;
    enum wh_dest_verdict want;
};

static void check_urls(const struct wh_dest_policy *p, const struct url_case *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        enum wh_dest_verdict got = url_verdict(p, cases[i].url);
        if (got != cases[i].want)
            fail_msg("%s: got %d, want %d", cases[i].url, got, cases[i].want);
    }
}

#define CHECK_URLS(p, cases) check_urls(p, cases, sizeof cases / sizeof cases[0])

static void test_syntax(void **state)
{
    (void)state;
    static const struct url_case cases[] = {
        {"http://example.com/x", WH_DEST_OK},
        {"https://example.com:8443/x?y=1#z", WH_DEST_OK},
        {"HTTP://Example.COM./", WH_DEST_OK},
        {"http://user:pw@example.com/", WH_DEST_OK},
        {"http://[2001:db8::1]:8080/", WH_DEST_OK},
        {"http://a_b.internal/", WH_DEST_OK},
        {"http://@/", WH_DEST_INVALID},
        {"http://example.com:99999/", WH_DEST_INVALID},
        {"http://example.com:0/", WH_DEST_INVALID},
        {"http://example.com:/", WH_DEST_INVALID},
        {"http://example.com:-1/", WH_DEST_INVALID},
        {"http://example.com:80x/", WH_DEST_INVALID},
        {"ftp://example.com/", WH_DEST_INVALID},
        {"file:///etc/passwd", WH_DEST_INVALID},
        {"gopher://example.com/", WH_DEST_INVALID},
        {"http:///x", WH_DEST_INVALID},
        {"http://", WH_DEST_INVALID},
        {"http://exa mple.com/", WH_DEST_INVALID},
        {"http://example..com/", WH_DEST_INVALID},
        {"http://[::1/", WH_DEST_INVALID},
        {"http://[not-v6]/", WH_DEST_INVALID},
        {"http://exa%6dple.com/", WH_DEST_INVALID},
        {"http://a\\b/", WH_DEST_INVALID},
        {"example.com", WH_DEST_INVALID},
    };
    CHECK_URLS(NULL, cases);
}

/* No allow list: everything but link-local and metadata addresses, in any spelling. */
static void test_default_refusals(void **state)
{
    (void)state;
    static const struct url_case cases[] = {
        {"http://127.0.0.1:8080/", WH_DEST_OK},
        {"http://localhost/", WH_DEST_OK},
        {"http://10.1.2.3/", WH_DEST_OK},
        {"http://[::1]/", WH_DEST_OK},
        {"http://169.254.169.254/latest/meta-data/", WH_DEST_REFUSED},
        {"http://169.254.0.1/", WH_DEST_REFUSED},
        {"http://169.254.255.255:8080/", WH_DEST_REFUSED},
        {"http://169.253.255.255/", WH_DEST_OK},
        {"http://169.255.0.0/", WH_DEST_OK},
        {"http://2852039166/", WH_DEST_REFUSED},          /* 169.254.169.254 as one number */
        {"http://0xa9.0xfe.0xa9.0xfe/", WH_DEST_REFUSED}, /* in hex */
        {"http://0xa9fea9fe/", WH_DEST_REFUSED},          /* one hex number */
        {"http://0251.0376.0251.0376/", WH_DEST_REFUSED}, /* in octal */
        {"http://169.254.43518/", WH_DEST_REFUSED},       /* a.b.c16 */
        {"http://[::ffff:169.254.169.254]/", WH_DEST_REFUSED},
        {"http://[::ffff:a9fe:a9fe]/", WH_DEST_REFUSED},
        {"http://[fe80::1]/", WH_DEST_REFUSED},
        {"http://[fe80::1%25eth0]/", WH_DEST_REFUSED},
        {"http://[febf::1]/", WH_DEST_REFUSED},
        {"http://[fec0::1]/", WH_DEST_OK},
        {"http://[fd00:ec2::254]/", WH_DEST_REFUSED},
        {"http://100.100.100.200/", WH_DEST_REFUSED},
        {"http://0x7f.1/", WH_DEST_OK},
        {"http://2130706433/", WH_DEST_OK},
        {"http://metadata.google.internal/", WH_DEST_OK}, /* a name: checked once resolved */
    };
    CHECK_URLS(NULL, cases);
    struct wh_dest_policy *p = policy(NULL, NULL);
    CHECK_URLS(p, cases);
    wh_dest_policy_free(p);
    p = policy("  ", NULL);
    CHECK_URLS(p, cases);
    wh_dest_policy_free(p);
}

static void test_allow_list(void **state)
{
    (void)state;
    struct wh_dest_policy *p =
        policy("payments.internal, api.example.com:8443, 10.0.0.0/8 ,192.168.1.7:9000,"
               "[2001:db8::5]:443, fd00::/8",
               NULL);
    static const struct url_case cases[] = {
        {"http://payments.internal/charge", WH_DEST_OK},
        {"http://PAYMENTS.internal./charge", WH_DEST_OK},
        {"http://payments.internal:9999/", WH_DEST_OK},
        {"https://api.example.com:8443/", WH_DEST_OK},
        {"http://10.200.3.4/", WH_DEST_OK},
        {"http://11.0.0.1/", WH_DEST_REFUSED},
        {"http://192.168.1.7:9000/", WH_DEST_OK},
        {"http://192.168.1.7:9001/", WH_DEST_REFUSED},
        {"https://[2001:db8::5]/", WH_DEST_OK},
        {"http://[2001:db8::5]/", WH_DEST_REFUSED},
        {"http://[fd12::1]/", WH_DEST_OK},
        {"http://[fe80::1]/", WH_DEST_REFUSED},
        {"http://127.0.0.1/", WH_DEST_REFUSED},
        {"http://0x7f.1/", WH_DEST_REFUSED},
        {"http://169.254.169.254/", WH_DEST_REFUSED},
        /* A name not listed may still resolve into a listed CIDR: decided when connecting. */
        {"http://other.internal/", WH_DEST_OK},
    };
    CHECK_URLS(p, cases);
    wh_dest_policy_free(p);

    /* Names only: an unlisted name is refused at once. */
    p = policy("payments.internal, api.example.com:8443", NULL);
    assert_int_equal(url_verdict(p, "http://other.internal/"), WH_DEST_REFUSED);
    assert_int_equal(url_verdict(p, "https://api.example.com/"), WH_DEST_REFUSED);
    assert_int_equal(url_verdict(p, "https://api.example.com:8443/"), WH_DEST_OK);
    assert_int_equal(url_verdict(p, "http://payments.internal/"), WH_DEST_OK);
    wh_dest_policy_free(p);

    /* Link-local is allowed only when an address entry covers it. */
    p = policy("169.254.169.254", NULL);
    assert_int_equal(url_verdict(p, "http://169.254.169.254/"), WH_DEST_OK);
    assert_int_equal(url_verdict(p, "http://2852039166/"), WH_DEST_OK);
    assert_int_equal(url_verdict(p, "http://169.254.169.253/"), WH_DEST_REFUSED);
    wh_dest_policy_free(p);
    p = policy("::ffff:169.254.0.0/112", NULL);
    assert_int_equal(url_verdict(p, "http://169.254.1.2/"), WH_DEST_OK);
    wh_dest_policy_free(p);
}

static void test_bad_entries(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "10.0.0.0/33", "10.0.0.0/", "fd00::/129", "host:0", "host:65536",  "host:x",
        "[::1",        "[::1]x",    "bad host",   "a..b",   "10.0.0.0/8x", "nothost/8",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct wh_dest_policy *p = NULL;
        char *why = NULL;
        if (wh_dest_policy_new(bad[i], NULL, &p, &why) == 0)
            fail_msg("\"%s\" was accepted", bad[i]);
        assert_null(p);
        assert_non_null(strstr(why, "KEEL_ACTIVITY_ALLOW"));
        free(why);
    }
}

static struct sockaddr_storage sa4(const char *ip, int port)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *in = (struct sockaddr_in *)&ss;
    in->sin_family = AF_INET;
    in->sin_port = htons((uint16_t)port);
    assert_int_equal(inet_pton(AF_INET, ip, &in->sin_addr), 1);
    return ss;
}

static struct sockaddr_storage sa6(const char *ip, int port)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in6 *in = (struct sockaddr_in6 *)&ss;
    in->sin6_family = AF_INET6;
    in->sin6_port = htons((uint16_t)port);
    assert_int_equal(inet_pton(AF_INET6, ip, &in->sin6_addr), 1);
    return ss;
}

static enum wh_dest_verdict addr_verdict(const struct wh_dest_policy *p,
                                         const struct sockaddr_storage *ss,
                                         const struct wh_dest_target *t)
{
    char *why = NULL;
    enum wh_dest_verdict v = wh_dest_check_addr(p, (const struct sockaddr *)ss, t, &why);
    free(why);
    return v;
}

/* What a name resolves to is checked when the connection is opened (DNS rebinding). */
static void test_resolved_addresses(void **state)
{
    (void)state;
    struct sockaddr_storage meta = sa4("169.254.169.254", 80);
    struct sockaddr_storage meta_mapped = sa6("::ffff:169.254.169.254", 80);
    struct sockaddr_storage lo = sa4("127.0.0.1", 80);
    struct sockaddr_storage ten = sa4("10.1.1.1", 80);
    assert_int_equal(addr_verdict(NULL, &meta, NULL), WH_DEST_REFUSED);
    assert_int_equal(addr_verdict(NULL, &meta_mapped, NULL), WH_DEST_REFUSED);
    assert_int_equal(addr_verdict(NULL, &lo, NULL), WH_DEST_OK);

    struct wh_dest_policy *p = policy("payments.internal,10.0.0.0/8", NULL);
    struct wh_dest_target listed = {.name_listed = true};
    struct wh_dest_target unlisted = {0};
    assert_int_equal(addr_verdict(p, &ten, &unlisted), WH_DEST_OK);
    assert_int_equal(addr_verdict(p, &lo, &unlisted), WH_DEST_REFUSED);
    assert_int_equal(addr_verdict(p, &lo, &listed), WH_DEST_OK);
    /* A listed name that resolves to a metadata address is still refused. */
    assert_int_equal(addr_verdict(p, &meta, &listed), WH_DEST_REFUSED);
    assert_int_equal(addr_verdict(p, &meta_mapped, &listed), WH_DEST_REFUSED);
    wh_dest_policy_free(p);

    /* "localhost" by name is not 127.0.0.1 by address. */
    p = policy("192.0.2.1", NULL);
    struct wh_dest_target t;
    char *why = NULL;
    assert_int_equal(wh_dest_check_url(p, "http://localhost:9/", &t, &why), WH_DEST_OK);
    assert_false(t.name_listed);
    assert_int_equal(addr_verdict(p, &lo, &t), WH_DEST_REFUSED);
    struct sockaddr_storage lo6 = sa6("::1", 9);
    assert_int_equal(addr_verdict(p, &lo6, &t), WH_DEST_REFUSED);
    wh_dest_policy_free(p);
}

static void test_own_listen_address(void **state)
{
    (void)state;
    struct wh_dest_policy *p = policy(NULL, "127.0.0.1:8080");
    static const struct url_case cases[] = {
        {"http://127.0.0.1:8080/v1/workflows", WH_DEST_REFUSED},
        {"http://127.0.0.2:8080/", WH_DEST_REFUSED},
        {"http://0x7f.1:8080/", WH_DEST_REFUSED},
        {"http://0.0.0.0:8080/", WH_DEST_REFUSED},
        {"http://[::1]:8080/", WH_DEST_REFUSED},
        {"http://[::ffff:127.0.0.1]:8080/", WH_DEST_REFUSED},
        {"http://127.0.0.1:8081/", WH_DEST_OK},
        {"http://10.0.0.1:8080/", WH_DEST_OK},
    };
    CHECK_URLS(p, cases);
    struct sockaddr_storage self = sa4("127.0.0.1", 8080);
    assert_int_equal(addr_verdict(p, &self, NULL), WH_DEST_REFUSED);
    wh_dest_policy_free(p);

    /* Port 0 at start: the real port is set once known. */
    p = policy(NULL, "127.0.0.1:0");
    assert_int_equal(url_verdict(p, "http://127.0.0.1:9123/"), WH_DEST_OK);
    wh_dest_policy_set_own_port(p, 9123);
    assert_int_equal(url_verdict(p, "http://127.0.0.1:9123/"), WH_DEST_REFUSED);
    wh_dest_policy_free(p);

    /* Listed with its port, it is allowed; a CIDR without the port is not enough. */
    p = policy("127.0.0.0/8", "127.0.0.1:8080");
    assert_int_equal(url_verdict(p, "http://127.0.0.1:8080/"), WH_DEST_REFUSED);
    assert_int_equal(url_verdict(p, "http://127.0.0.1:8081/"), WH_DEST_OK);
    wh_dest_policy_free(p);
    p = policy("127.0.0.1:8080", "127.0.0.1:8080");
    assert_int_equal(url_verdict(p, "http://127.0.0.1:8080/"), WH_DEST_OK);
    wh_dest_policy_free(p);
    p = policy("localhost:8080", "127.0.0.1:8080");
    struct wh_dest_target t;
    char *why = NULL;
    assert_int_equal(wh_dest_check_url(p, "http://localhost:8080/", &t, &why), WH_DEST_OK);
    assert_int_equal(addr_verdict(p, &self, &t), WH_DEST_OK);
    wh_dest_policy_free(p);

    /* Listening on every address: loopback on that port is keeld itself. */
    p = policy(NULL, "0.0.0.0:8080");
    assert_int_equal(url_verdict(p, "http://127.0.0.1:8080/"), WH_DEST_REFUSED);
    assert_int_equal(url_verdict(p, "http://[::1]:8080/"), WH_DEST_REFUSED);
    wh_dest_policy_free(p);
    p = policy(NULL, "[::]:8080");
    assert_int_equal(url_verdict(p, "http://[::1]:8080/"), WH_DEST_REFUSED);
    assert_int_equal(url_verdict(p, "http://127.0.0.1:8080/"), WH_DEST_REFUSED);
    wh_dest_policy_free(p);
    /* A routable listen address: that address and port only. */
    p = policy(NULL, "10.0.0.5:8080");
    assert_int_equal(url_verdict(p, "http://10.0.0.5:8080/"), WH_DEST_REFUSED);
    assert_int_equal(url_verdict(p, "http://10.0.0.6:8080/"), WH_DEST_OK);
    assert_int_equal(url_verdict(p, "http://127.0.0.1:8080/"), WH_DEST_OK);
    wh_dest_policy_free(p);
}

static void test_messages_name_the_reason(void **state)
{
    (void)state;
    char *why = NULL;
    assert_int_equal(wh_dest_check_url(NULL, "http://0xa9fea9fe/", NULL, &why), WH_DEST_REFUSED);
    assert_non_null(strstr(why, "169.254.169.254"));
    assert_non_null(strstr(why, "link-local"));
    free(why);
    why = NULL;
    assert_int_equal(wh_dest_check_url(NULL, "http://a:99999/", NULL, &why), WH_DEST_INVALID);
    assert_non_null(strstr(why, "1 to 65535"));
    free(why);
    why = NULL;
    assert_int_equal(wh_dest_check_url(NULL, "ftp://a/", NULL, &why), WH_DEST_INVALID);
    assert_non_null(strstr(why, "does not start with http:// or https://"));
    free(why);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_syntax),
        cmocka_unit_test(test_default_refusals),
        cmocka_unit_test(test_allow_list),
        cmocka_unit_test(test_bad_entries),
        cmocka_unit_test(test_resolved_addresses),
        cmocka_unit_test(test_own_listen_address),
        cmocka_unit_test(test_messages_name_the_reason),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
