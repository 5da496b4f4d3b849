/* KEEL_HOST_LIMITS: the parser (tables of accepted and refused texts, with what the error says),
 * matching a host to its most specific entry, the file form, and each keeld's share. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/alloc.h"
#include "webhook/host_limits.h"

/* ---- accepted ---------------------------------------------------------------------------- */

struct good {
    const char *text;
    size_t n;
    /* The first entry as read back. */
    const char *name;
    int port;
    bool wildcard;
    int concurrency;
    long rate, period_ms;
    const char *limit_text;
};

static const struct good goods[] = {
    {"payments.internal=20,50/s", 1, "payments.internal", 0, false, 20, 50, 1000, "20,50/s"},
    {"payments.internal=50/s,20", 1, "payments.internal", 0, false, 20, 50, 1000, "20,50/s"},
    {"Payments.Internal.=3", 1, "payments.internal", 0, false, 3, 0, 0, "3"},
    {"api.example.com:8443=5/s", 1, "api.example.com:8443", 8443, false, 0, 5, 1000, "5/s"},
    {"*.example.com=10,300/m", 1, "*.example.com", 0, true, 10, 300, 60000, "10,300/m"},
    {"*.Example.com:443=1000/h", 1, "*.example.com:443", 443, true, 0, 1000, 3600000, "1000/h"},
    {"127.0.0.1=3", 1, "127.0.0.1", 0, false, 3, 0, 0, "3"},
    {"[::1]:8080=2", 1, "[::1]:8080", 8080, false, 2, 0, 0, "2"},
    {"[0:0::1]=2", 1, "[::1]", 0, false, 2, 0, 0, "2"},
    {"my_host-1=100000,1000000/s", 1, "my_host-1", 0, false, 100000, 1000000, 1000,
     "100000,1000000/s"},
    /* Several entries, any white space between them, comments in the file form. */
    {"  a=1 \t b=2/s\n\n# a comment = not an entry\nc=3,4/m # after an entry\n", 3, "a", 0, false,
     1, 0, 0, "1"},
    {"a=1 a:80=2 *.a=3 *.a:80=4", 4, "a", 0, false, 1, 0, 0, "1"},
};

static void test_accepted(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof goods / sizeof goods[0]; i++) {
        const struct good *g = &goods[i];
        struct wh_host_limits *l = NULL;
        char *why = NULL;
        if (wh_host_limits_parse(g->text, "KEEL_HOST_LIMITS", &l, &why) != 0)
            fail_msg("\"%s\" refused: %s", g->text, why);
        assert_null(why);
        if (l->n != g->n)
            fail_msg("\"%s\": %zu entries, not %zu", g->text, l->n, g->n);
        const struct wh_host_limit *e = &l->v[0];
        assert_string_equal(e->name, g->name);
        assert_int_equal(e->port, g->port);
        assert_int_equal(e->wildcard, g->wildcard);
        assert_int_equal(e->concurrency, g->concurrency);
        assert_int_equal(e->rate, g->rate);
        assert_int_equal(e->rate_period_ms, g->period_ms);
        assert_string_equal(e->limit_text, g->limit_text);
        wh_host_limits_free(l);
    }
}

static void test_empty(void **state)
{
    (void)state;
    const char *empties[] = {NULL, "", "   ", "\n# only a comment\n"};
    for (size_t i = 0; i < sizeof empties / sizeof empties[0]; i++) {
        struct wh_host_limits *l = NULL;
        char *why = NULL;
        assert_int_equal(wh_host_limits_parse(empties[i], NULL, &l, &why), 0);
        assert_int_equal(l->n, 0);
        assert_null(wh_host_limits_match(l, "a", 80));
        wh_host_limits_free(l);
        assert_int_equal(wh_host_limits_load(empties[i], &l, &why), 0);
        assert_int_equal(l->n, 0);
        wh_host_limits_free(l);
    }
}

/* ---- refused ----------------------------------------------------------------------------- */

struct bad {
    const char *text;
    const char *says; /* the whole message */
};

static const struct bad bads[] = {
    {"payments.internal", "KEEL_HOST_LIMITS: entry \"payments.internal\": no \"=\" (entries are "
                          "HOST=LIMIT separated by spaces, as in payments.internal=20,50/s)"},
    {"a=1 payments.internal = 20", "KEEL_HOST_LIMITS: entry \"payments.internal\": no \"=\" "
                                   "(entries are HOST=LIMIT separated by spaces, as in "
                                   "payments.internal=20,50/s)"},
    {"a=1,b=2", "KEEL_HOST_LIMITS: entry \"a=1,b=2\": \"b=2\" is not a concurrency (a whole "
                "number, as in 20) or a rate (as in 50/s)"},
    {"=3", "KEEL_HOST_LIMITS: entry \"=3\": no host before \"=\""},
    {"a=", "KEEL_HOST_LIMITS: entry \"a=\": no limit after \"=\" (write CONCURRENCY, RATE/s or "
           "CONCURRENCY,RATE/s, as in 20,50/s)"},
    {"a=0", "KEEL_HOST_LIMITS: entry \"a=0\": a concurrency of 0 would never let a request go "
            "(leave the host out for no limit)"},
    {"a=0/s", "KEEL_HOST_LIMITS: entry \"a=0/s\": a rate of 0 would never let a request go "
              "(leave the host out for no limit)"},
    {"a=-1", "KEEL_HOST_LIMITS: entry \"a=-1\": \"-1\" is not a concurrency (a whole number, as "
             "in 20) or a rate (as in 50/s)"},
    {"a=+1", "KEEL_HOST_LIMITS: entry \"a=+1\": \"+1\" is not a concurrency (a whole number, as "
             "in 20) or a rate (as in 50/s)"},
    {"a=0.5/s", "KEEL_HOST_LIMITS: entry \"a=0.5/s\": \"0.5\" is not a whole number (for less "
                "than one a second, write N/m or N/h)"},
    {"a=5/d", "KEEL_HOST_LIMITS: entry \"a=5/d\": \"d\" is not a unit of a rate (s, m or h, as "
              "in 50/s)"},
    {"a=5/sec", "KEEL_HOST_LIMITS: entry \"a=5/sec\": \"sec\" is not a unit of a rate (s, m or "
                "h, as in 50/s)"},
    {"a=5/", "KEEL_HOST_LIMITS: entry \"a=5/\": \"\" is not a unit of a rate (s, m or h, as in "
             "50/s)"},
    {"a=/s", "KEEL_HOST_LIMITS: entry \"a=/s\": \"/s\" is not a rate (a whole number per s, m "
             "or h, as in 50/s)"},
    {"a=100001", "KEEL_HOST_LIMITS: entry \"a=100001\": 100001 is more than 100000"},
    {"a=99999999999999999999/s",
     "KEEL_HOST_LIMITS: entry \"a=99999999999999999999/s\": 99999999999999999999 is more than "
     "1000000"},
    {"a=1,2", "KEEL_HOST_LIMITS: entry \"a=1,2\": two concurrencies (1 and 2)"},
    {"a=1/s,2/m", "KEEL_HOST_LIMITS: entry \"a=1/s,2/m\": two rates"},
    {"a=1,2/s,3", "KEEL_HOST_LIMITS: entry \"a=1,2/s,3\": more than two parts in the limit (at "
                  "most a concurrency and a rate, as in 20,50/s)"},
    {"a=1,", "KEEL_HOST_LIMITS: entry \"a=1,\": an empty part in the limit (write CONCURRENCY, "
             "RATE/s or CONCURRENCY,RATE/s, as in 20,50/s)"},
    {"a=1 b=2 A.=3", "KEEL_HOST_LIMITS: entry \"A.=3\": a is limited twice (also by a=1)"},
    {"a:80=1 a:80=2/s", "KEEL_HOST_LIMITS: entry \"a:80=2/s\": a:80 is limited twice (also by "
                        "a:80=1)"},
    {"a:0=1", "KEEL_HOST_LIMITS: entry \"a:0=1\": \"0\" is not a port (1-65535)"},
    {"a:65536=1", "KEEL_HOST_LIMITS: entry \"a:65536=1\": \"65536\" is not a port (1-65535)"},
    {"a:=1", "KEEL_HOST_LIMITS: entry \"a:=1\": \"\" is not a port (1-65535)"},
    {"a:http=1", "KEEL_HOST_LIMITS: entry \"a:http=1\": \"http\" is not a port (1-65535)"},
    {"::1=1", "KEEL_HOST_LIMITS: entry \"::1=1\": an IPv6 address goes in brackets: [::1]"},
    {"[::1=1", "KEEL_HOST_LIMITS: entry \"[::1=1\": \"[\" without \"]\" (an IPv6 address is "
               "written [2001:db8::1])"},
    {"[::g]=1", "KEEL_HOST_LIMITS: entry \"[::g]=1\": \"::g\" is not an IPv6 address"},
    {"[::1]x=1", "KEEL_HOST_LIMITS: entry \"[::1]x=1\": unexpected \"x\" after the IPv6 address "
                 "(a port is written [2001:db8::1]:8443)"},
    {"1.2.3=1", "KEEL_HOST_LIMITS: entry \"1.2.3=1\": \"1.2.3\" is not an IPv4 address (four "
                "numbers 0-255, as in 10.0.0.7)"},
    {"256.1.1.1=1", "KEEL_HOST_LIMITS: entry \"256.1.1.1=1\": \"256.1.1.1\" is not an IPv4 "
                    "address (four numbers 0-255, as in 10.0.0.7)"},
    {"*=1", "KEEL_HOST_LIMITS: entry \"*=1\": a wildcard is \"*.\" followed by a domain name, as "
            "in *.example.com"},
    {"*example.com=1", "KEEL_HOST_LIMITS: entry \"*example.com=1\": a wildcard is \"*.\" "
                       "followed by a domain name, as in *.example.com"},
    {"a.*.com=1", "KEEL_HOST_LIMITS: entry \"a.*.com=1\": \"a.*.com\" is not a host name "
                  "(letters, digits, \"-\" and \"_\" in dot-separated labels of at most 63, 253 "
                  "in all)"},
    {"a..b=1", "KEEL_HOST_LIMITS: entry \"a..b=1\": \"a..b\" is not a host name (letters, "
               "digits, \"-\" and \"_\" in dot-separated labels of at most 63, 253 in all)"},
    {"http://a=1", "KEEL_HOST_LIMITS: entry \"http://a=1\": \"//a\" is not a port (1-65535)"},
    {"a=1\xc3\xa9", "KEEL_HOST_LIMITS: entry \"a=1\\xc3\\xa9\": a byte that is not printable "
                    "ASCII (0xc3)"},
    {"a=1\n b=2\n c=x", "KEEL_HOST_LIMITS: entry \"c=x\" on line 3: \"x\" is not a concurrency "
                        "(a whole number, as in 20) or a rate (as in 50/s)"},
    {"a=1 b=2 #c=3\nd", "KEEL_HOST_LIMITS: entry \"d\" on line 2: no \"=\" (entries are "
                        "HOST=LIMIT separated by spaces, as in payments.internal=20,50/s)"},
};

static void test_refused(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bads / sizeof bads[0]; i++) {
        struct wh_host_limits *l = (struct wh_host_limits *)1;
        char *why = NULL;
        if (wh_host_limits_parse(bads[i].text, "KEEL_HOST_LIMITS", &l, &why) == 0)
            fail_msg("\"%s\" accepted", bads[i].text);
        assert_null(l);
        assert_non_null(why);
        if (strcmp(why, bads[i].says) != 0)
            fail_msg("\"%s\":\n  said %s\n  want %s", bads[i].text, why, bads[i].says);
        free(why);
    }
}

/* A long entry is shown cut, and never read past its end. */
static void test_long_entry(void **state)
{
    (void)state;
    char text[2000];
    memset(text, 'a', sizeof text - 1);
    text[sizeof text - 1] = '\0';
    struct wh_host_limits *l = NULL;
    char *why = NULL;
    assert_int_equal(wh_host_limits_parse(text, "X", &l, &why), -1);
    assert_non_null(strstr(why, "aaaa...\": too long to be HOST=LIMIT"));
    assert_true(strlen(why) < 200);
    free(why);
    /* A 64-byte label. */
    memset(text, 'a', 64);
    strcpy(text + 64, ".example=1");
    assert_int_equal(wh_host_limits_parse(text, "X", &l, &why), -1);
    assert_non_null(strstr(why, "is not a host name"));
    free(why);
}

/* ---- matching ---------------------------------------------------------------------------- */

static void test_match(void **state)
{
    (void)state;
    struct wh_host_limits *l = NULL;
    char *why = NULL;
    assert_int_equal(wh_host_limits_parse("pay.example.com=1 pay.example.com:8443=2 "
                                          "*.example.com=3 *.example.com:8443=4 "
                                          "*.eu.example.com=5 127.0.0.1=6 [::1]:9000=7",
                                          NULL, &l, &why),
                     0);
    struct {
        const char *host;
        int port;
        const char *want; /* the entry's name, or NULL */
    } cases[] = {
        {"pay.example.com", 443, "pay.example.com"},
        {"PAY.Example.COM.", 80, "pay.example.com"},
        {"pay.example.com", 8443, "pay.example.com:8443"},
        {"other.example.com", 443, "*.example.com"},
        {"other.example.com", 8443, "*.example.com:8443"},
        {"a.eu.example.com", 443, "*.eu.example.com"},
        /* An exact name wins over a wildcard with the port; a port over none; a longer suffix
         * over a shorter when both or neither name the port. */
        {"a.eu.example.com", 8443, "*.example.com:8443"},
        {"example.com", 443, NULL},
        {"badexample.com", 443, NULL},
        {"pay.example.org", 443, NULL},
        {"127.0.0.1", 18080, "127.0.0.1"},
        {"127.0.0.2", 18080, NULL},
        {"[::1]", 9000, "[::1]:9000"},
        {"[0:0:0::1]", 9000, "[::1]:9000"},
        {"[::1]", 9001, NULL},
        {"", 80, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct wh_host_limit *e = wh_host_limits_match(l, cases[i].host, cases[i].port);
        const char *got = e ? e->name : NULL;
        if ((got == NULL) != (cases[i].want == NULL) || (got && strcmp(got, cases[i].want) != 0))
            fail_msg("%s:%d matched %s, want %s", cases[i].host, cases[i].port,
                     got ? got : "nothing", cases[i].want ? cases[i].want : "nothing");
    }
    struct {
        const char *url;
        const char *want;
    } urls[] = {
        {"https://pay.example.com/charge", "pay.example.com"},
        {"https://pay.example.com:8443/charge", "pay.example.com:8443"},
        {"http://x.example.com:8443", "*.example.com:8443"},
        {"https://user:pw@Pay.Example.com/x?y#z", "pay.example.com"},
        {"http://127.0.0.1:18080/slow/100", "127.0.0.1"},
        {"http://[::1]:9000/", "[::1]:9000"},
        {"ftp://pay.example.com/", NULL},
        {"not a url", NULL},
        {"", NULL},
    };
    for (size_t i = 0; i < sizeof urls / sizeof urls[0]; i++) {
        const struct wh_host_limit *e = wh_host_limits_match_url(l, urls[i].url);
        const char *got = e ? e->name : NULL;
        if ((got == NULL) != (urls[i].want == NULL) || (got && strcmp(got, urls[i].want) != 0))
            fail_msg("%s matched %s, want %s", urls[i].url, got ? got : "nothing",
                     urls[i].want ? urls[i].want : "nothing");
    }
    assert_null(wh_host_limits_match_url(NULL, "http://a/"));
    wh_host_limits_free(l);
}

/* ---- the file form ----------------------------------------------------------------------- */

static void test_file(void **state)
{
    (void)state;
    char path[] = "/tmp/keel-host-limits-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *text = "# limits\npayments.internal=20,50/s\n*.example.com=5\n";
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    char *spec = xasprintf("@%s", path);
    assert_true(wh_host_limits_is_file(spec));
    assert_false(wh_host_limits_is_file("a=1"));
    struct wh_host_limits *l = NULL;
    char *why = NULL;
    assert_int_equal(wh_host_limits_load(spec, &l, &why), 0);
    assert_int_equal(l->n, 2);
    assert_string_equal(l->v[1].name, "*.example.com");
    wh_host_limits_free(l);

    /* A bad entry names the file and the line. */
    FILE *f = fopen(path, "w");
    fputs("a=1\nb=1/x\n", f);
    fclose(f);
    assert_int_equal(wh_host_limits_load(spec, &l, &why), -1);
    char *want = xasprintf("%s: entry \"b=1/x\" on line 2: \"x\" is not a unit of a rate (s, m "
                           "or h, as in 50/s)",
                           path);
    assert_string_equal(why, want);
    free(want);
    free(why);

    f = fopen(path, "w");
    fwrite("a=1\0b=2", 1, 7, f);
    fclose(f);
    assert_int_equal(wh_host_limits_load(spec, &l, &why), -1);
    assert_non_null(strstr(why, "holds a NUL byte"));
    free(why);

    unlink(path);
    assert_int_equal(wh_host_limits_load(spec, &l, &why), -1);
    want = xasprintf("KEEL_HOST_LIMITS: cannot read %s: No such file or directory", path);
    assert_string_equal(why, want);
    free(want);
    free(why);
    free(spec);

    assert_int_equal(wh_host_limits_load("@", &l, &why), -1);
    assert_non_null(strstr(why, "without a file name"));
    free(why);
    /* The environment's text is parsed as it is. */
    assert_int_equal(wh_host_limits_load("a=1 b", &l, &why), -1);
    assert_non_null(strstr(why, "KEEL_HOST_LIMITS: entry \"b\": no \"=\""));
    free(why);
}

/* ---- shares ------------------------------------------------------------------------------ */

static void test_concurrency_shares(void **state)
{
    (void)state;
    struct wh_host_limits *l = NULL;
    char *why = NULL;
    assert_int_equal(wh_host_limits_parse("a=1 b=7 c=20 d=100000 e=5/s", NULL, &l, &why), 0);
    for (size_t i = 0; i < 4; i++) {
        const struct wh_host_limit *e = &l->v[i];
        assert_int_equal(wh_host_limit_concurrency_share(e, 1, 0), e->concurrency);
        for (int k = 1; k <= 40; k++) {
            int sum = 0, lo = e->concurrency, hi = 0;
            for (int r = 0; r < k; r++) {
                int s = wh_host_limit_concurrency_share(e, k, r);
                assert_true(s >= 1);
                sum += s;
                lo = s < lo ? s : lo;
                hi = s > hi ? s : hi;
            }
            /* Exactly the limit when it is at least the number of keelds; one each below. */
            if (e->concurrency >= k)
                assert_int_equal(sum, e->concurrency);
            else
                assert_int_equal(sum, k);
            assert_true(hi - lo <= 1);
        }
    }
    /* The remainders do not all go to the same rank. */
    struct wh_host_limits *m = NULL;
    assert_int_equal(
        wh_host_limits_parse("h0=3 h1=3 h2=3 h3=3 h4=3 h5=3 h6=3 h7=3", NULL, &m, &why), 0);
    bool extra_elsewhere = false;
    for (size_t i = 0; i < m->n; i++)
        extra_elsewhere |= wh_host_limit_concurrency_share(&m->v[i], 2, 1) == 2;
    assert_true(extra_elsewhere);
    wh_host_limits_free(m);
    /* No concurrency: no share; odd arguments are taken sensibly. */
    assert_int_equal(wh_host_limit_concurrency_share(&l->v[4], 3, 0), 0);
    assert_int_equal(wh_host_limit_concurrency_share(&l->v[1], 0, 0), 7);
    assert_int_equal(wh_host_limit_concurrency_share(&l->v[1], 2, -1) +
                         wh_host_limit_concurrency_share(&l->v[1], 2, 2),
                     7);
    assert_int_equal(wh_host_limit_concurrency_share(NULL, 1, 0), 0);
    wh_host_limits_free(l);
}

static void test_rate_intervals(void **state)
{
    (void)state;
    struct wh_host_limits *l = NULL;
    char *why = NULL;
    assert_int_equal(
        wh_host_limits_parse("a=5/s b=3/s c=30/m d=1/h e=7 f=1000000/s", NULL, &l, &why), 0);
    assert_int_equal(wh_host_limit_interval_us(&l->v[0], 1), 200000);
    assert_int_equal(wh_host_limit_interval_us(&l->v[0], 2), 400000);
    /* Rounded up: three a second never lets a fourth in within a second. */
    assert_int_equal(wh_host_limit_interval_us(&l->v[1], 1), 333334);
    assert_int_equal(wh_host_limit_interval_us(&l->v[1], 3), 1000000);
    assert_int_equal(wh_host_limit_interval_us(&l->v[2], 1), 2000000);
    assert_int_equal(wh_host_limit_interval_us(&l->v[3], 1), 3600000000LL);
    assert_int_equal(wh_host_limit_interval_us(&l->v[3], 1000), 3600000000000LL);
    assert_int_equal(wh_host_limit_interval_us(&l->v[4], 1), 0);
    assert_int_equal(wh_host_limit_interval_us(&l->v[5], 1), 1);
    assert_int_equal(wh_host_limit_interval_us(&l->v[0], 0), 200000);
    wh_host_limits_free(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepted),
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_long_entry),
        cmocka_unit_test(test_match),
        cmocka_unit_test(test_file),
        cmocka_unit_test(test_concurrency_shares),
        cmocka_unit_test(test_rate_intervals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
