/* Standard Webhooks signing: secret parsing, known vectors, rotation, verification. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "webhook/sign.h"

/* The Standard Webhooks specification's own example; the expected value was recomputed with
 *   python3 -c 'import hmac,hashlib,base64; k=base64.b64decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
 *     print(base64.b64encode(hmac.new(k, b"msg_p5jXN8AQM9LWM0D4loKWxJek.1614265330.{\"test\":
 *     2432232314}", hashlib.sha256).digest()).decode())'
 * (the body is exactly {"test": 2432232314}, with one space). */
#define SPEC_SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define SPEC_ID     "msg_p5jXN8AQM9LWM0D4loKWxJek"
#define SPEC_TS     1614265330
#define SPEC_BODY   "{\"test\": 2432232314}"
#define SPEC_SIG    "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

/* A Keel-shaped message signed with two secrets, computed with python3's hmac module:
 *   k1 = base64.b64decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
 *   k2 = base64.b64decode("a2VlbC1yb3RhdGVkLXNlY3JldC0wMDAx")   # b"keel-rotated-secret-0001"
 *   m  = b'exec-1/charge.1700000000.{"execution_id":"exec-1","step":"charge","attempt":1}'
 *   base64.b64encode(hmac.new(k, m, hashlib.sha256).digest()) for k in (k1, k2) */
#define KEEL_ID   "exec-1/charge"
#define KEEL_TS   1700000000
#define KEEL_BODY "{\"execution_id\":\"exec-1\",\"step\":\"charge\",\"attempt\":1}"
#define KEEL_SIG1 "v1,XSFfer7T/L6mNVAFmR2JKWOZvCKpTlLDDktugoj4ogA="
#define KEEL_SIG2 "v1,hPWRsGUdHUXXiXaEzfO2JctX4CLgOh6ZLtSe4pMohd8="

static struct wh_secrets *parse_ok(const char *s)
{
    struct wh_secrets *set = NULL;
    char *why = NULL;
    int rc = wh_secrets_parse(s, &set, &why);
    if (rc != 0)
        fail_msg("parse of \"%s\" failed: %s", s, why);
    assert_non_null(set);
    return set;
}

static void test_spec_vector(void **state)
{
    (void)state;
    struct wh_secrets *set = parse_ok(SPEC_SECRET);
    assert_int_equal(wh_secrets_count(set), 1);
    char *sig = wh_sign(set, SPEC_ID, SPEC_TS, SPEC_BODY, strlen(SPEC_BODY));
    assert_string_equal(sig, SPEC_SIG);
    free(sig);
    wh_secrets_free(set);
}

static void test_raw_base64_secret(void **state)
{
    (void)state;
    /* Without the whsec_ prefix the same key gives the same signature. */
    struct wh_secrets *set = parse_ok("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
    char *sig = wh_sign(set, SPEC_ID, SPEC_TS, SPEC_BODY, strlen(SPEC_BODY));
    assert_string_equal(sig, SPEC_SIG);
    free(sig);
    wh_secrets_free(set);
}

static void test_rotation_two_signatures(void **state)
{
    (void)state;
    /* Extra whitespace around and between secrets is allowed; one padded, one unpadded. */
    struct wh_secrets *set = parse_ok(
        "  whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw \t whsec_a2VlbC1yb3RhdGVkLXNlY3JldC0wMDAx ");
    assert_int_equal(wh_secrets_count(set), 2);
    char *sig = wh_sign(set, KEEL_ID, KEEL_TS, KEEL_BODY, strlen(KEEL_BODY));
    assert_string_equal(sig, KEEL_SIG1 " " KEEL_SIG2);
    free(sig);
    wh_secrets_free(set);
}

static void test_parse_errors(void **state)
{
    (void)state;
    static const struct {
        const char *input;
        const char *message_part;
    } cases[] = {
        {"", "no secret given"},
        {"   ", "no secret given"},
        {"whsec_", "secret 1: empty key"},
        {"whsec_abc$def", "secret 1: invalid base64 character at offset 9"},
        {"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw whsec_a-b_", "secret 2: invalid base64"},
        {"whsec_abcde", "secret 1: base64 of a wrong length"},
        {"whsec_ab=", "secret 1: base64 of a wrong length"},
        {"whsec_a===", "secret 1: base64 of a wrong length"},
        {"whsec_ab=c", "invalid base64 character"},
        /* Keys shorter than 24 bytes are refused: 23 bytes, 4 bytes, and the second of two. */
        {"whsec_eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHg=",
         "secret 1: the key is 23 bytes; at least 24 are required"},
        {"dGVzdA==", "secret 1: the key is 4 bytes; at least 24 are required"},
        {"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw whsec_dGVzdA",
         "secret 2: the key is 4 bytes; at least 24 are required"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct wh_secrets *set = NULL;
        char *why = NULL;
        assert_int_equal(wh_secrets_parse(cases[i].input, &set, &why), -1);
        assert_null(set);
        assert_non_null(why);
        if (!strstr(why, cases[i].message_part))
            fail_msg("case %zu: \"%s\" does not contain \"%s\"", i, why, cases[i].message_part);
        free(why);
    }
    /* why may be NULL. */
    struct wh_secrets *set = NULL;
    assert_int_equal(wh_secrets_parse("whsec_***", &set, NULL), -1);
    assert_int_equal(wh_secrets_parse(NULL, &set, NULL), -1);
}

static void test_verify(void **state)
{
    (void)state;
    struct wh_secrets *one = parse_ok(SPEC_SECRET);
    struct wh_secrets *other = parse_ok("whsec_a2VlbC1yb3RhdGVkLXNlY3JldC0wMDAx");
    struct wh_secrets *both = parse_ok(SPEC_SECRET " whsec_a2VlbC1yb3RhdGVkLXNlY3JldC0wMDAx");
    const char *b = SPEC_BODY;
    size_t n = strlen(b);

    assert_true(wh_verify(one, SPEC_ID, "1614265330", b, n, SPEC_SIG, 0, 0));
    /* Any matching entry is enough; unknown versions are skipped. */
    assert_true(wh_verify(one, SPEC_ID, "1614265330", b, n,
                          "v1a,xyz v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= " SPEC_SIG, 0,
                          0));
    /* A receiver that knows only the new secret accepts a request signed with both. */
    char *sig = wh_sign(both, SPEC_ID, SPEC_TS, b, n);
    assert_true(wh_verify(other, SPEC_ID, "1614265330", b, n, sig, 0, 0));
    free(sig);
    /* A signer with only the old secret is accepted by a receiver that knows both. */
    assert_true(wh_verify(both, SPEC_ID, "1614265330", b, n, SPEC_SIG, 0, 0));

    assert_false(wh_verify(other, SPEC_ID, "1614265330", b, n, SPEC_SIG, 0, 0));
    assert_false(wh_verify(one, "msg_other", "1614265330", b, n, SPEC_SIG, 0, 0));
    assert_false(wh_verify(one, SPEC_ID, "1614265331", b, n, SPEC_SIG, 0, 0));
    assert_false(wh_verify(one, SPEC_ID, "1614265330", b, n - 1, SPEC_SIG, 0, 0));
    assert_false(wh_verify(one, SPEC_ID, "1614265330", b, n, "", 0, 0));
    assert_false(wh_verify(one, SPEC_ID, "1614265330", b, n,
                           "v2,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", 0, 0));
    assert_false(wh_verify(one, SPEC_ID, "abc", b, n, SPEC_SIG, 0, 0));
    assert_false(wh_verify(one, SPEC_ID, "-1614265330", b, n, SPEC_SIG, 0, 0));
    assert_false(wh_verify(one, SPEC_ID, "1614265330", b, n, NULL, 0, 0));
    assert_false(wh_verify(NULL, SPEC_ID, "1614265330", b, n, SPEC_SIG, 0, 0));

    /* Tolerance: five minutes either way. */
    assert_true(wh_verify(one, SPEC_ID, "1614265330", b, n, SPEC_SIG, SPEC_TS + 300, 300));
    assert_true(wh_verify(one, SPEC_ID, "1614265330", b, n, SPEC_SIG, SPEC_TS - 300, 300));
    assert_false(wh_verify(one, SPEC_ID, "1614265330", b, n, SPEC_SIG, SPEC_TS + 301, 300));
    assert_false(wh_verify(one, SPEC_ID, "1614265330", b, n, SPEC_SIG, SPEC_TS - 301, 300));

    wh_secrets_free(one);
    wh_secrets_free(other);
    wh_secrets_free(both);
}

static void test_sign_edge_cases(void **state)
{
    (void)state;
    assert_null(wh_sign(NULL, "id", 1, "x", 1));
    struct wh_secrets *set = parse_ok(SPEC_SECRET);
    /* An empty body is signed as "{id}.{ts}." and round-trips. */
    char *sig = wh_sign(set, "id", 5, NULL, 0);
    assert_non_null(sig);
    assert_true(wh_verify(set, "id", "5", "", 0, sig, 0, 0));
    free(sig);
    wh_secrets_free(set);
    wh_secrets_free(NULL);
    assert_int_equal(wh_secrets_count(NULL), 0);
}

/* The first key of 24 bytes is accepted (the boundary of the length rule). */
static void test_minimum_key_length(void **state)
{
    (void)state;
    struct wh_secrets *set = parse_ok("whsec_eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4");
    assert_int_equal(wh_secrets_count(set), 1);
    wh_secrets_free(set);
}

/* Task tokens: 128 random bits as 32 hex digits, stored only as their SHA-256. */
static void test_task_tokens(void **state)
{
    (void)state;
    char t1[WH_TASK_TOKEN_LEN + 1], h1[WH_TASK_TOKEN_HASH_LEN + 1];
    char t2[WH_TASK_TOKEN_LEN + 1], h2[WH_TASK_TOKEN_HASH_LEN + 1];
    wh_task_token_new(t1, h1);
    wh_task_token_new(t2, h2);
    assert_int_equal(strlen(t1), 32);
    assert_int_equal(strspn(t1, "0123456789abcdef"), 32);
    assert_int_equal(strlen(h1), 64);
    assert_string_not_equal(t1, t2);
    assert_string_not_equal(h1, h2);
    char again[WH_TASK_TOKEN_HASH_LEN + 1];
    wh_task_token_hash(t1, again);
    assert_string_equal(again, h1);
    /* printf abc | sha256sum */
    wh_task_token_hash("abc", again);
    assert_string_equal(again, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spec_vector),
        cmocka_unit_test(test_raw_base64_secret),
        cmocka_unit_test(test_rotation_two_signatures),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_verify),
        cmocka_unit_test(test_sign_edge_cases),
        cmocka_unit_test(test_minimum_key_length),
        cmocka_unit_test(test_task_tokens),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
