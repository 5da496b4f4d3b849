/* Steps that hold steps, against a real keeld, PostgreSQL and receiver, broken on purpose:
 * kill -9 during a for_each with concurrency 5 and during the compensation of a failed
 * parallel. Every execution must end, every key (which follows the step's path) must be
 * applied once by the receiver, and every step instance journaled as completed once. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "harness.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char secret_env[256];
static const char *secret;

static int group_setup(void **state)
{
    (void)state;
    secret = harness_env("KEEL_TEST_WEBHOOK_SECRET");
    snprintf(secret_env, sizeof secret_env, "KEEL_WEBHOOK_SECRET=%s", secret);
    return 0;
}

/* Short leases so that the attempts of a killed keeld are taken over within seconds. */
static const char *const *env(void)
{
    static const char *e[4];
    e[0] = "KEEL_LEASE_GRACE_MS=300";
    e[1] = "KEEL_WORKERS=4";
    e[2] = secret_env;
    e[3] = NULL;
    return e;
}

static void register_def(const struct proc *k, const char *tmpl, const char *receiver)
{
    char *def = harness_subst_r(tmpl, receiver);
    http_post_expect(k->base_url, "/v1/workflows", def, 201, NULL);
    free(def);
}

struct ended_check {
    const char *db;
    const char *workflow;
    int n;
};

static bool all_ended(void *arg)
{
    struct ended_check *c = arg;
    char *v = harness_sqlf(c->db,
                           "SELECT count(*) FROM executions WHERE workflow = '%s' AND "
                           "status <> 'running'",
                           c->workflow);
    bool ok = atoi(v) == c->n;
    free(v);
    return ok;
}

/* Every key of the receiver that starts with prefix "-" was applied exactly once, except
 * keys ending in refused (NULL: none), which the receiver refuses and must never apply;
 * returns how many keys were applied. */
static int keys_applied_once(const struct proc *receiver, const char *prefix, const char *refused)
{
    json_t *stats = receiver_stats(receiver, "");
    assert_int_equal(json_integer_value(json_object_get(stats, "bad_signatures")), 0);
    int found = 0;
    const char *key;
    json_t *k;
    size_t plen = strlen(prefix);
    json_object_foreach(json_object_get(stats, "keys"), key, k)
    {
        if (strncmp(key, prefix, plen) != 0 || key[plen] != '-')
            continue;
        size_t klen = strlen(key), rlen = refused ? strlen(refused) : 0;
        if (refused && klen > rlen && !strcmp(key + klen - rlen, refused)) {
            assert_int_equal(json_integer_value(json_object_get(k, "applied")), 0);
            continue;
        }
        found++;
        if (json_integer_value(json_object_get(k, "applied")) != 1)
            fail_msg("key %s applied %lld times", key,
                     (long long)json_integer_value(json_object_get(k, "applied")));
    }
    json_decref(stats);
    return found;
}

/* How many attempts (or compensation attempts) of workflow were sent again after a kill. */
static int redeliveries(const char *db, const char *workflow)
{
    char *v = harness_sqlf(db,
                           "SELECT count(*) FROM events e JOIN executions x ON x.id = "
                           "e.execution_id WHERE x.workflow = '%s' AND e.type IN "
                           "('attempt_started', 'compensation_started') AND e.data ? 'redelivery'",
                           workflow);
    int n = atoi(v);
    free(v);
    return n;
}

/* No instance completed twice, and sequence numbers have no gaps. */
static void assert_journal_clean(const char *db, const char *workflow)
{
    char *sql = NULL;
    assert_true(asprintf(&sql,
                         "SELECT count(*) FROM (SELECT 1 FROM events e JOIN executions x ON x.id "
                         "= e.execution_id WHERE x.workflow = '%s' AND e.type IN "
                         "('step_completed', 'compensation_completed') GROUP BY e.execution_id, "
                         "e.path, e.type HAVING count(*) <> 1) d",
                         workflow) > 0);
    assert_sql(db, "0", sql);
    free(sql);
    assert_true(asprintf(&sql,
                         "SELECT count(*) FROM executions x WHERE x.workflow = '%s' AND "
                         "x.last_seq <> (SELECT count(*) FROM events e WHERE e.execution_id = "
                         "x.id)",
                         workflow) > 0);
    assert_sql(db, "0", sql);
    free(sql);
}

/* The result of execution id once it has ended, which must be in status. New reference. */
static json_t *ended_as(const struct proc *k, const char *id, const char *status)
{
    json_t *done = wait_result(k->base_url, id);
    assert_string_equal(json_string_value(json_object_get(done, "status")), status);
    return done;
}

/* Waits until the step at path of execution is in status (a child waiting for its signal, say),
 * failing the test after 10 s. */
static void wait_step(const char *db, const char *execution, const char *path, const char *status)
{
    char *sql = NULL;
    assert_true(asprintf(&sql,
                         "SELECT count(*) FROM steps WHERE execution_id = '%s' AND path = '%s' "
                         "AND status = '%s'",
                         execution, path, status) > 0);
    wait_sql(db, "1", sql);
    free(sql);
}

static const char *const FAN =
    "{\"name\": \"fan\", \"defaults\": {\"timeout\": \"2s\", \"retry\": {\"initial_interval\": "
    "\"50ms\"}}, \"steps\": ["
    " {\"id\": \"all\", \"for_each\": {\"items\": \"${input.items}\", \"concurrency\": 5,"
    "  \"steps\": [{\"id\": \"charge\", \"activity\": {\"url\": \"%R/slow/300\", \"input\": "
    "\"${item}\"}},"
    "             {\"id\": \"note\", \"activity\": {\"url\": \"%R/ok\", \"input\": "
    "{\"i\": \"${index}\", \"c\": \"${steps.charge.output.echo}\"}}}]}},"
    " {\"id\": \"notify\", \"parallel\": {\"branches\": {"
    "   \"email\": [{\"id\": \"mail\", \"activity\": {\"url\": \"%R/slow/100\"}}],"
    "   \"sms\": [{\"id\": \"text\", \"activity\": {\"url\": \"%R/ok\"}}]}}}],"
    " \"output\": {\"notes\": \"${steps.all.output}\", \"n\": \"${steps.notify.output}\"}}";

static void test_kill9_during_for_each(void **state)
{
    (void)state;
    enum { N = 12, ITEMS = 8 };
    const char *input = "{\"items\": [10, 11, 12, 13, 14, 15, 16, 17]}";
    char *db = harness_create_db("keel_it_flow_fan");
    struct proc receiver, k;
    receiver_start(&receiver, secret);
    keeld_start(&k, db, env(), NULL);
    register_def(&k, FAN, receiver.base_url);
    int started = start_range(&k, "fan", "fan", 0, N, input);
    for (int round = 0; round < 4; round++) {
        usleep(400 * 1000);
        proc_kill9(&k);
        keeld_start(&k, db, env(), NULL);
        if (started < N)
            started += start_range(&k, "fan", "fan", started, N, input);
    }
    assert_int_equal(started, N);
    struct ended_check c = {db, "fan", N};
    if (!wait_for(all_ended, &c, 120000))
        fail_msg("not every execution ended after kill -9 during for_each");
    assert_sql(db, "0",
               "SELECT count(*) FROM executions WHERE workflow = 'fan' AND "
               "status <> 'completed'");
    assert_journal_clean(db, "fan");
    /* The kills landed while attempts were in flight. */
    assert_true(redeliveries(db, "fan") > 0);
    /* Keys follow paths: fan-3/all/5/charge; 8 x 2 in the loop, 2 in the parallel. */
    assert_int_equal(keys_applied_once(&receiver, "fan", NULL), N * (ITEMS * 2 + 2));
    json_t *stats = receiver_stats(&receiver, "?key=fan-0/all/7/charge");
    assert_non_null(json_object_get(json_object_get(stats, "keys"), "fan-0/all/7/charge"));
    json_decref(stats);
    /* The loop's output is in item order, each note seeing its own iteration's charge. */
    json_t *done = wait_result(k.base_url, "fan-5");
    json_t *notes = json_object_get(json_object_get(done, "output"), "notes");
    assert_int_equal(json_array_size(notes), ITEMS);
    for (size_t i = 0; i < ITEMS; i++) {
        json_t *echo = json_object_get(json_array_get(notes, i), "echo");
        assert_int_equal(json_integer_value(json_object_get(echo, "i")), (json_int_t)i);
        assert_int_equal(json_integer_value(json_object_get(echo, "c")), (json_int_t)(10 + i));
    }
    assert_non_null(
        json_object_get(json_object_get(json_object_get(done, "output"), "n"), "email"));
    json_decref(done);
    /* Events name their instance. */
    assert_sql(db, "1",
               "SELECT count(*) FROM events WHERE execution_id = 'fan-1' AND type = "
               "'step_completed' AND path = 'all/3/note' AND step = 'note'");
    stack_stop(&db, &k, &receiver);
}

/* b/refund fails for good (410); a/hold and b/reserve completed, so the saga undoes both,
 * each compensation slow enough for the kills to land in it. */
static const char *const UNDO =
    "{\"name\": \"undo\", \"defaults\": {\"timeout\": \"2s\", \"retry\": {\"initial_interval\": "
    "\"50ms\"}}, \"steps\": ["
    " {\"id\": \"book\", \"parallel\": {\"branches\": {"
    "   \"a\": [{\"id\": \"hold\", \"activity\": {\"url\": \"%R/ok\"},"
    "           \"compensate\": {\"url\": \"%R/slow/300\"}}],"
    "   \"b\": [{\"id\": \"reserve\", \"activity\": {\"url\": \"%R/ok\"},"
    "           \"compensate\": {\"url\": \"%R/slow/300\"}},"
    "         {\"id\": \"pay\", \"activity\": {\"url\": \"%R/gone\"}}]}}}]}";

static void test_kill9_during_parallel_compensation(void **state)
{
    (void)state;
    enum { N = 10 };
    char *db = harness_create_db("keel_it_flow_undo");
    struct proc receiver, k;
    receiver_start(&receiver, secret);
    keeld_start(&k, db, env(), NULL);
    register_def(&k, UNDO, receiver.base_url);
    int started = start_range(&k, "undo", "undo", 0, N, "{}");
    for (int round = 0; round < 4; round++) {
        usleep(350 * 1000);
        proc_kill9(&k);
        keeld_start(&k, db, env(), NULL);
        if (started < N)
            started += start_range(&k, "undo", "undo", started, N, "{}");
    }
    assert_int_equal(started, N);
    struct ended_check c = {db, "undo", N};
    if (!wait_for(all_ended, &c, 120000))
        fail_msg("not every execution ended after kill -9 during compensation");
    assert_sql(db, "0",
               "SELECT count(*) FROM executions WHERE workflow = 'undo' AND "
               "status <> 'failed'");
    assert_journal_clean(db, "undo");
    assert_true(redeliveries(db, "undo") > 0);
    /* Both completed steps were undone, once each, keyed by path + /compensate. */
    assert_sql(db, "20",
               "SELECT count(*) FROM events e JOIN executions x ON x.id = e.execution_id WHERE "
               "x.workflow = 'undo' AND e.type = 'compensation_completed'");
    assert_sql(db, "20",
               "SELECT count(*) FROM steps s JOIN executions x ON x.id = s.execution_id WHERE "
               "x.workflow = 'undo' AND s.status = 'compensated'");
    /* hold, reserve, and their two compensations; pay's 410 is applied nowhere. */
    assert_int_equal(keys_applied_once(&receiver, "undo", "/pay"), N * 4);
    json_t *stats = receiver_stats(&receiver, "?key=undo-2/book/b/reserve/compensate");
    assert_non_null(
        json_object_get(json_object_get(stats, "keys"), "undo-2/book/b/reserve/compensate"));
    json_decref(stats);
    /* The execution's error is the failed step's, with its path. */
    json_t *done = wait_result(k.base_url, "undo-0");
    json_t *err = json_object_get(done, "error");
    assert_string_equal(json_string_value(json_object_get(err, "step")), "pay");
    assert_string_equal(json_string_value(json_object_get(err, "path")), "book/b/pay");
    json_decref(done);
    stack_stop(&db, &k, &receiver);
}

/* set and fail steps, registered over HTTP and run by a real keeld: a set's output feeds the
 * next step and the execution's output; a fail fails the execution with its own error after
 * the saga has undone the step before it (the refund applied once). */
static const char *const QUOTE =
    "{\"name\": \"quote\", \"steps\": ["
    " {\"id\": \"price\", \"activity\": {\"url\": \"%R/ok\", \"input\": \"${input.total}\"}},"
    " {\"id\": \"totals\", \"set\": {\"total\": \"${steps.price.output.echo}\", \"vat\": 0.25}},"
    " {\"id\": \"send\", \"activity\": {\"url\": \"%R/ok\", \"input\": "
    "\"${steps.totals.output}\"}}],"
    " \"output\": \"${steps.totals.output}\"}";
static const char *const REFUSE =
    "{\"name\": \"refuse\", \"steps\": ["
    " {\"id\": \"charge\", \"activity\": {\"url\": \"%R/ok\"}, \"compensate\": {\"url\": "
    "\"%R/ok\"}},"
    " {\"id\": \"no\", \"fail\": {\"type\": \"Rejected\", \"message\": \"total ${input.total} is "
    "over the limit\"}},"
    " {\"id\": \"never\", \"activity\": {\"url\": \"%R/ok\"}}]}";

static void test_set_and_fail(void **state)
{
    (void)state;
    char *db = harness_create_db("keel_it_flow_setfail");
    struct proc receiver, k;
    receiver_start(&receiver, secret);
    keeld_start(&k, db, env(), NULL);
    register_def(&k, QUOTE, receiver.base_url);
    register_def(&k, REFUSE, receiver.base_url);
    http_post_expect(k.base_url, "/v1/workflows/quote/executions",
                     "{\"id\": \"quote-1\", \"input\": {\"total\": 120}}", 201, NULL);
    http_post_expect(k.base_url, "/v1/workflows/refuse/executions",
                     "{\"id\": \"refuse-1\", \"input\": {\"total\": 1200}}", 201, NULL);

    json_t *done = ended_as(&k, "quote-1", "completed");
    char *out = json_dumps(json_object_get(done, "output"), JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(out, "{\"total\":120,\"vat\":0.25}");
    free(out);
    json_decref(done);
    /* send got the set's output as its input. */
    json_t *stats = receiver_stats(&receiver, "?key=quote-1/send");
    assert_non_null(json_object_get(json_object_get(stats, "keys"), "quote-1/send"));
    json_decref(stats);
    assert_sql(db, "1",
               "SELECT count(*) FROM steps WHERE execution_id = 'quote-1' AND path = 'totals' "
               "AND kind = 'set' AND status = 'completed' AND output = '{\"total\": 120, \"vat\": "
               "0.25}'::jsonb");

    done = ended_as(&k, "refuse-1", "failed");
    json_t *err = json_object_get(done, "error");
    assert_string_equal(json_string_value(json_object_get(err, "type")), "Rejected");
    assert_string_equal(json_string_value(json_object_get(err, "message")),
                        "total 1200 is over the limit");
    assert_string_equal(json_string_value(json_object_get(err, "step")), "no");
    json_decref(done);
    assert_key_counts(&receiver, "refuse-1/charge", 1, 1);
    assert_key_counts(&receiver, "refuse-1/charge/compensate", 1, 1);
    stats = receiver_stats(&receiver, "?key=refuse-1/never");
    assert_null(json_object_get(json_object_get(stats, "keys"), "refuse-1/never"));
    json_decref(stats);
    assert_sql(db, "step_scheduled,step_failed",
               "SELECT string_agg(type, ',' ORDER BY seq) FROM events WHERE execution_id = "
               "'refuse-1' AND path = 'no'");
    stack_stop(&db, &k, &receiver);
}

/* An if, registered over HTTP and run by a real keeld both ways: the branch taken runs (its
 * webhook key follows the branch's path), the other leaves no row, no event and no delivery,
 * and the if's output is its branch's last step output. The condition is a boolean field of
 * the input: any expression evaluating to true or false works the same way. */
static const char *const BRANCH =
    "{\"name\": \"branch\", \"steps\": ["
    " {\"id\": \"big\", \"if\": \"${input.big}\", \"then\": ["
    "   {\"id\": \"review\", \"activity\": {\"url\": \"%R/ok\", \"input\": \"${input.total}\"}},"
    "   {\"id\": \"reviewed\", \"set\": {\"by\": \"review\", \"total\": "
    "\"${steps.review.output.echo}\"}}],"
    "  \"else\": [{\"id\": \"auto\", \"set\": {\"by\": \"auto\"}}]},"
    " {\"id\": \"ship\", \"activity\": {\"url\": \"%R/ok\", \"input\": \"${steps.big.output}\"}}],"
    " \"output\": \"${steps.big.output}\"}";

static void test_if_both_ways(void **state)
{
    (void)state;
    char *db = harness_create_db("keel_it_flow_if");
    struct proc receiver, k;
    receiver_start(&receiver, secret);
    keeld_start(&k, db, env(), NULL);
    register_def(&k, BRANCH, receiver.base_url);
    http_post_expect(k.base_url, "/v1/workflows/branch/executions",
                     "{\"id\": \"if-big\", \"input\": {\"big\": true, \"total\": 1200}}", 201,
                     NULL);
    http_post_expect(k.base_url, "/v1/workflows/branch/executions",
                     "{\"id\": \"if-small\", \"input\": {\"big\": false}}", 201, NULL);
    http_post_expect(k.base_url, "/v1/workflows/branch/executions",
                     "{\"id\": \"if-bad\", \"input\": {\"big\": \"yes\"}}", 201, NULL);

    json_t *done = ended_as(&k, "if-big", "completed");
    char *out = json_dumps(json_object_get(done, "output"), JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(out, "{\"by\":\"review\",\"total\":1200}");
    free(out);
    json_decref(done);
    assert_key_counts(&receiver, "if-big/big/then/review", 1, 1);
    assert_key_counts(&receiver, "if-big/ship", 1, 1);
    assert_sql(db,
               "big:if:completed,big/then:branch:completed,big/then/review:activity:completed,"
               "big/then/reviewed:set:completed,ship:activity:completed",
               "SELECT string_agg(path || ':' || kind || ':' || status, ',' ORDER BY path) FROM "
               "steps WHERE execution_id = 'if-big'");
    assert_sql(db, "{\"kind\": \"if\", \"branch\": \"then\", \"condition\": true}",
               "SELECT data::text FROM events WHERE execution_id = 'if-big' AND path = 'big' AND "
               "type = 'step_scheduled'");

    done = ended_as(&k, "if-small", "completed");
    out = json_dumps(json_object_get(done, "output"), JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(out, "{\"by\":\"auto\"}");
    free(out);
    json_decref(done);
    json_t *stats = receiver_stats(&receiver, "?key=if-small/big/then/review");
    assert_null(json_object_get(json_object_get(stats, "keys"), "if-small/big/then/review"));
    json_decref(stats);
    assert_sql(db, "big,big/else,big/else/auto,ship",
               "SELECT string_agg(path, ',' ORDER BY path) FROM steps WHERE execution_id = "
               "'if-small'");
    assert_sql(db, "0",
               "SELECT count(*) FROM events WHERE execution_id = 'if-small' AND path LIKE "
               "'big/then%'");

    done = ended_as(&k, "if-bad", "failed");
    json_t *err = json_object_get(done, "error");
    assert_string_equal(json_string_value(json_object_get(err, "type")), "invalid_condition");
    assert_string_equal(json_string_value(json_object_get(err, "message")),
                        "the condition ${input.big} must be true or false, but evaluated to "
                        "\"yes\"");
    json_decref(done);
    stack_stop(&db, &k, &receiver);
}

/* Child workflows against a real keeld: the child's output comes back to the parent's step,
 * both link to each other (GET of each, ?parent=), a failing child fails the step with
 * child_failed and the parent's saga runs, a version that does not exist fails the step with
 * child_not_found, recursion stops at KEEL_MAX_CHILD_DEPTH, cancel reaches the child, and a
 * definition naming a workflow never registered is refused. */
static const char *const SHIPPING =
    "{\"name\": \"shipping\", \"steps\": ["
    " {\"id\": \"label\", \"activity\": {\"url\": \"%R/ok\", \"input\": \"${input.order}\"}},"
    " {\"id\": \"check\", \"if\": \"${input.fragile}\", \"then\": [{\"id\": \"no\", \"fail\": "
    "{\"type\": \"Fragile\", \"message\": \"cannot ship ${input.order}\"}}]},"
    " {\"id\": \"hold\", \"if\": \"${input.hold}\", \"then\": [{\"id\": \"w\", \"wait\": "
    "{\"signal\": \"go\"}}]}],"
    " \"output\": {\"tracking\": \"${steps.label.output.key}\"}}";
static const char *const PARENT =
    "{\"name\": \"parent\", \"steps\": ["
    " {\"id\": \"charge\", \"activity\": {\"url\": \"%R/ok\"}, \"compensate\": {\"url\": "
    "\"%R/ok\"}},"
    " {\"id\": \"ship\", \"workflow\": {\"name\": \"shipping\", \"input\": {\"order\": "
    "\"${input.order}\", \"fragile\": \"${input.fragile}\", \"hold\": \"${input.hold}\"}}}],"
    " \"output\": \"${steps.ship.output}\"}";
static const char *const NESTED =
    "{\"name\": \"nested\", \"steps\": ["
    " {\"id\": \"more\", \"if\": \"${input.more}\", \"then\": [{\"id\": \"down\", "
    "\"workflow\": {\"name\": \"nested\", \"input\": \"${input.next}\"}}],"
    "  \"else\": [{\"id\": \"bottom\", \"set\": \"bottom\"}]}],"
    " \"output\": \"${steps.more.output}\"}";

static json_t *get_json(const struct proc *k, const char *path)
{
    struct hreply r;
    http_get(k->base_url, path, &r);
    assert_int_equal(r.status, 200);
    json_t *j = json_incref(r.json);
    hreply_free(&r);
    return j;
}

/* The step of execution json at path. Borrowed. */
static json_t *step_at(json_t *exec, const char *path)
{
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(exec, "steps"), i, s)
    {
        if (!strcmp(json_string_value(json_object_get(s, "path")), path))
            return s;
    }
    fail_msg("no step %s", path);
    return NULL;
}

static void test_child_workflows(void **state)
{
    (void)state;
    char *db = harness_create_db("keel_it_flow_child");
    struct proc receiver, k;
    receiver_start(&receiver, secret);
    static const char *e[5];
    memcpy(e, env(), 3 * sizeof *e);
    e[3] = "KEEL_MAX_CHILD_DEPTH=3";
    e[4] = NULL;
    keeld_start(&k, db, e, NULL);

    /* Registered before its child workflow exists: refused, naming the step. */
    char *def = harness_subst_r(PARENT, receiver.base_url);
    struct hreply r;
    http_post_json(k.base_url, "/v1/workflows", def, &r);
    assert_problem(&r, 422, "invalid-definition");
    json_t *err0 = json_array_get(json_object_get(r.json, "errors"), 0);
    assert_string_equal(json_string_value(json_object_get(err0, "pointer")),
                        "/steps/1/workflow/name");
    assert_non_null(strstr(json_string_value(json_object_get(err0, "message")),
                           "no workflow \"shipping\" is registered"));
    hreply_free(&r);
    register_def(&k, SHIPPING, receiver.base_url);
    http_post_expect(k.base_url, "/v1/workflows", def, 201, NULL);
    free(def);
    /* A workflow may start itself (recursion is bounded at run time). */
    register_def(&k, NESTED, receiver.base_url);

    http_post_expect(k.base_url, "/v1/workflows/parent/executions",
                     "{\"id\": \"p-ok\", \"input\": {\"order\": \"o1\", \"fragile\": false, "
                     "\"hold\": false}}",
                     201, NULL);
    http_post_expect(k.base_url, "/v1/workflows/parent/executions",
                     "{\"id\": \"p-bad\", \"input\": {\"order\": \"o2\", \"fragile\": true, "
                     "\"hold\": false}}",
                     201, NULL);
    json_t *done = ended_as(&k, "p-ok", "completed");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(done, "output"), "tracking")),
        "p-ok:ship/label");
    json_decref(done);
    assert_key_counts(&receiver, "p-ok:ship/label", 1, 1);
    /* Linked both ways. */
    json_t *parent = get_json(&k, "/v1/executions/p-ok");
    assert_string_equal(json_string_value(json_object_get(step_at(parent, "ship"), "child")),
                        "p-ok:ship");
    assert_true(json_is_null(json_object_get(parent, "parent")));
    json_decref(parent);
    json_t *child = get_json(&k, "/v1/executions/p-ok:ship");
    assert_string_equal(json_string_value(json_object_get(child, "workflow")), "shipping");
    assert_string_equal(json_string_value(json_object_get(json_object_get(child, "parent"), "id")),
                        "p-ok");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(child, "parent"), "step")), "ship");
    json_decref(child);
    json_t *list = get_json(&k, "/v1/executions?parent=p-ok");
    json_t *items = json_object_get(list, "executions");
    assert_int_equal(json_array_size(items), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(items, 0), "id")),
                        "p-ok:ship");
    json_decref(list);
    http_get(k.base_url, "/v1/executions?parent=no%20such", &r);
    assert_problem(&r, 400, "invalid-parameter");
    hreply_free(&r);

    /* The child failed: the parent's step fails with child_failed, and its saga refunds. */
    done = ended_as(&k, "p-bad", "failed");
    json_t *err = json_object_get(done, "error");
    assert_string_equal(json_string_value(json_object_get(err, "type")), "child_failed");
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(json_object_get(err, "child"), "error"), "type")),
                        "Fragile");
    json_decref(done);
    assert_key_counts(&receiver, "p-bad/charge/compensate", 1, 1);
    done = ended_as(&k, "p-bad:ship", "failed");
    json_decref(done);

    /* Cancel of the parent reaches its child, which waits for a signal. */
    http_post_expect(k.base_url, "/v1/workflows/parent/executions",
                     "{\"id\": \"p-hold\", \"input\": {\"order\": \"o3\", \"fragile\": "
                     "false, \"hold\": true}}",
                     201, NULL);
    wait_step(db, "p-hold:ship", "hold/then/w", "waiting");
    /* The list says what a running parent is at: its workflow step. */
    json_t *running = get_json(&k, "/v1/executions?workflow=parent&status=running");
    json_t *cur =
        json_object_get(json_array_get(json_object_get(running, "executions"), 0), "current_step");
    assert_string_equal(json_string_value(json_object_get(cur, "id")), "ship");
    assert_string_equal(json_string_value(json_object_get(cur, "kind")), "workflow");
    assert_string_equal(json_string_value(json_object_get(cur, "status")), "waiting");
    json_decref(running);
    http_post_expect(k.base_url, "/v1/executions/p-hold/cancel", "{}", 202, NULL);
    done = ended_as(&k, "p-hold", "cancelled");
    json_decref(done);
    done = ended_as(&k, "p-hold:ship", "cancelled");
    json_decref(done);
    assert_sql(db, "its parent execution p-hold was cancelled",
               "SELECT data->>'reason' FROM events WHERE execution_id = 'p-hold:ship' AND type = "
               "'cancel_requested'");

    /* Recursion: depth 1, 2, 3 start; the fourth level is refused. */
    http_post_expect(k.base_url, "/v1/workflows/nested/executions",
                     "{\"id\": \"n-2\", \"input\": {\"more\": true, \"next\": {\"more\": false}}}",
                     201, NULL);
    done = ended_as(&k, "n-2", "completed");
    assert_string_equal(json_string_value(json_object_get(done, "output")), "bottom");
    json_decref(done);
    http_post_expect(k.base_url, "/v1/workflows/nested/executions",
                     "{\"id\": \"n-9\", \"input\": {\"more\": true, \"next\": {\"more\": true, "
                     "\"next\": {\"more\": true, \"next\": {\"more\": true, \"next\": {\"more\": "
                     "false}}}}}}",
                     201, NULL);
    done = ended_as(&k, "n-9", "failed");
    json_decref(done);
    assert_sql(db, "child_depth_exceeded",
               "SELECT error->>'type' FROM executions WHERE id = "
               "'n-9:more:then:down:more:then:down:more:then:down'");
    assert_sql(db, "3", "SELECT max(depth) FROM executions WHERE id LIKE 'n-9%'");
    /* The failure goes up the chain: every level failed with child_failed. */
    assert_sql(db, "child_failed,child_failed,child_failed,child_depth_exceeded",
               "SELECT string_agg(error->>'type', ',' ORDER BY depth) FROM executions WHERE id "
               "LIKE 'n-9%'");
    stack_stop(&db, &k, &receiver);
}

/* The order workflow, run through kill -9 of keeld at regular points: it branches on
 * the total (over 1,000: a review that waits for approve or reject, with a timeout), ships
 * through a child workflow, and refunds when rejected. Every execution must end with the right
 * output or error, every webhook key (the children's included) be applied once, and each step
 * be journaled as completed once. */
static const char *const SHIP_KIDS =
    "{\"name\": \"shipkid\", \"defaults\": {\"timeout\": \"2s\", \"retry\": "
    "{\"initial_interval\": \"50ms\"}}, \"steps\": ["
    " {\"id\": \"label\", \"activity\": {\"url\": \"%R/slow/150\", \"input\": "
    "\"${input.order}\"}},"
    " {\"id\": \"pack\", \"activity\": {\"url\": \"%R/ok\"}}],"
    " \"output\": {\"tracking\": \"${steps.label.output.key}\"}}";
static const char *const ORDER_KIDS =
    "{\"name\": \"orderkid\", \"defaults\": {\"timeout\": \"2s\", \"retry\": "
    "{\"initial_interval\": \"50ms\"}}, \"steps\": ["
    " {\"id\": \"charge\", \"activity\": {\"url\": \"%R/slow/100\", \"input\": "
    "\"${input.order}\"}, \"compensate\": {\"url\": \"%R/slow/100\"}},"
    " {\"id\": \"review\", \"if\": \"${input.total > 1000}\", \"then\": ["
    "   {\"id\": \"decide\", \"wait\": {\"any\": [\"approve\", \"reject\"], \"timeout\": "
    "\"5m\"}},"
    "   {\"id\": \"verdict\", \"if\": \"${steps.decide.output.signal == 'reject'}\", \"then\": "
    "[{\"id\": \"refuse\", \"fail\": {\"type\": \"Rejected\", \"message\": \"rejected by "
    "${steps.decide.output.payload.by}\"}}]}]},"
    " {\"id\": \"ship\", \"workflow\": {\"name\": \"shipkid\", \"input\": {\"order\": "
    "\"${input.order}\"}}}],"
    " \"output\": {\"tracking\": \"${steps.ship.output.tracking}\", \"approved\": "
    "\"${steps.review.output}\"}}";

/* Starts order i (and sends its verdict at once when it is big: a signal sent before the wait
 * is kept for it); false when keeld did not answer. */
static bool start_order(const struct proc *k, int i)
{
    char body[256], path[128];
    snprintf(body, sizeof body,
             "{\"id\": \"ord-%d\", \"input\": {\"order\": \"o%d\", "
             "\"total\": %d}}",
             i, i, i % 3 ? 1000 + 250 * i : 80 + i);
    struct hreply r;
    if (http_do(k->base_url, "POST", "/v1/workflows/orderkid/executions", "application/json", body,
                strlen(body), NULL, 10000, &r) < 0)
        return false;
    bool ok = r.status == 201 || r.status == 200;
    hreply_free(&r);
    if (!ok || i % 3 == 0)
        return ok;
    snprintf(path, sizeof path, "/v1/executions/ord-%d/signals/%s", i,
             i % 3 == 1 ? "approve" : "reject");
    snprintf(body, sizeof body, "{\"by\": \"ann\"}");
    const char *headers[] = {"Idempotency-Key: verdict", NULL};
    if (http_do(k->base_url, "POST", path, "application/json", body, strlen(body), headers, 10000,
                &r) < 0)
        return false;
    ok = r.status == 202 || r.status == 200;
    hreply_free(&r);
    return ok;
}

static void test_kill9_order_with_children(void **state)
{
    (void)state;
    enum { N = 12 };
    char *db = harness_create_db("keel_it_flow_orders");
    struct proc receiver, k;
    receiver_start(&receiver, secret);
    keeld_start(&k, db, env(), NULL);
    register_def(&k, SHIP_KIDS, receiver.base_url);
    register_def(&k, ORDER_KIDS, receiver.base_url);
    int started = 0;
    for (int round = 0; round < 5; round++) {
        while (started < N && start_order(&k, started))
            started++;
        usleep(300 * 1000);
        proc_kill9(&k);
        keeld_start(&k, db, env(), NULL);
    }
    while (started < N && start_order(&k, started))
        started++;
    assert_int_equal(started, N);
    struct ended_check c = {db, "orderkid", N};
    if (!wait_for(all_ended, &c, 120000)) {
        char *running = harness_sqlf(
            db, "SELECT string_agg(id || ' ' || owner || ' ' || state::text || ' steps: ' || "
                "(SELECT string_agg(path || '=' || status, ',') FROM steps s WHERE "
                "s.execution_id = e.id), E'\\n') FROM executions e WHERE status = 'running'");
        char *tasks = harness_sqlf(db, "SELECT string_agg(execution_id || ' ' || kind || ' ' || "
                                       "coalesce(step, '-') || ' ' || coalesce(owner, '-') || ' "
                                       "' || coalesce(lease_owner, '-'), E'\\n') FROM tasks");
        fail_msg("not every order ended after kill -9; running:\n%s\ntasks:\n%s", running, tasks);
    }
    for (int i = 0; i < N; i++) {
        char id[32];
        snprintf(id, sizeof id, "ord-%d", i);
        json_t *done = wait_result(k.base_url, id);
        const char *status = json_string_value(json_object_get(done, "status"));
        if (i % 3 == 2) {
            /* Rejected: failed there, charge refunded, no child. */
            assert_string_equal(status, "failed");
            json_t *err = json_object_get(done, "error");
            assert_string_equal(json_string_value(json_object_get(err, "type")), "Rejected");
            assert_string_equal(json_string_value(json_object_get(err, "message")),
                                "rejected by ann");
            char *n =
                harness_sqlf(db, "SELECT count(*) FROM executions WHERE parent_id = '%s'", id);
            assert_string_equal(n, "0");
            free(n);
        } else {
            assert_string_equal(status, "completed");
            json_t *out = json_object_get(done, "output");
            char want[64];
            snprintf(want, sizeof want, "%s:ship/label", id);
            assert_string_equal(json_string_value(json_object_get(out, "tracking")), want);
            /* A big order's review output is its verdict's branch (null: nothing refused). */
            assert_true(json_is_null(json_object_get(out, "approved")));
        }
        json_decref(done);
    }
    /* The children ended completed, one per shipped order, each linked to its step. */
    assert_sql(db, "8",
               "SELECT count(*) FROM executions WHERE workflow = 'shipkid' AND status = "
               "'completed' AND parent_path = 'ship' AND id = parent_id || ':ship'");
    assert_sql(db, "0", "SELECT count(*) FROM tasks");
    assert_journal_clean(db, "orderkid");
    assert_journal_clean(db, "shipkid");
    /* ord-N/charge x 12, ord-N:ship/label and /pack x 8, ord-N/charge/compensate x 4. */
    assert_int_equal(keys_applied_once(&receiver, "ord", NULL), N + 8 * 2 + 4);
    stack_stop(&db, &k, &receiver);
}

/* A retry of a parent whose child was cancelled (a failure in another branch stopped it)
 * starts a new child in its place, "<id>:2": the cancelled one ran its saga, and must not be
 * revived; the history says which child the step waits for. */
static const char *const REPLACE =
    "{\"name\": \"replace\", \"steps\": [{\"id\": \"p\", \"parallel\": {\"branches\": {"
    " \"a\": [{\"id\": \"kid\", \"workflow\": {\"name\": \"shipping\", \"input\": {\"order\": "
    "\"r\", \"fragile\": false, \"hold\": true}}}],"
    " \"b\": [{\"id\": \"pay\", \"activity\": {\"url\": \"%R/flaky/1\"}, \"retry\": "
    "{\"max_attempts\": 1}}]}}}],"
    " \"output\": \"${steps.p.output.a}\"}";

static void test_retry_replaces_a_cancelled_child(void **state)
{
    (void)state;
    char *db = harness_create_db("keel_it_flow_replace");
    struct proc receiver, k;
    receiver_start(&receiver, secret);
    keeld_start(&k, db, env(), NULL);
    register_def(&k, SHIPPING, receiver.base_url);
    register_def(&k, REPLACE, receiver.base_url);
    http_post_expect(k.base_url, "/v1/workflows/replace/executions", "{\"id\": \"rp\"}", 201, NULL);
    json_t *done = ended_as(&k, "rp", "failed");
    json_decref(done);
    done = ended_as(&k, "rp:p:a:kid", "cancelled");
    json_decref(done);
    http_post_expect(k.base_url, "/v1/executions/rp/retry", "{}", 202, NULL);
    wait_step(db, "rp:p:a:kid:2", "hold/then/w", "waiting");
    http_post_expect(k.base_url, "/v1/executions/rp:p:a:kid:2/signals/go", "{}", 202, NULL);
    done = ended_as(&k, "rp", "completed");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(done, "output"), "tracking")),
        "rp:p:a:kid:2/label");
    json_decref(done);
    assert_sql(db, "rp:p:a:kid:false,rp:p:a:kid:2:false",
               "SELECT string_agg((data->>'child') || ':' || (data->>'again'), ',' ORDER BY seq) "
               "FROM events WHERE execution_id = 'rp' AND type = 'child_started'");
    assert_sql(db, "cancelled", "SELECT status FROM executions WHERE id = 'rp:p:a:kid'");
    json_t *parent = get_json(&k, "/v1/executions/rp");
    assert_string_equal(json_string_value(json_object_get(step_at(parent, "p/a/kid"), "child")),
                        "rp:p:a:kid:2");
    json_decref(parent);
    json_t *list = get_json(&k, "/v1/executions?parent=rp");
    assert_int_equal(json_array_size(json_object_get(list, "executions")), 2);
    json_decref(list);

    /* A failed child that can be retried (no saga ran) runs again instead: its completed
     * label is kept (applied once), and it fails again at the same step. */
    static const char *const REDO = "{\"name\": \"redo\", \"steps\": [{\"id\": \"ship\", "
                                    "\"workflow\": {\"name\": \"shipping\", \"input\": "
                                    "\"${input}\"}}]}";
    register_def(&k, REDO, receiver.base_url);
    http_post_expect(k.base_url, "/v1/workflows/redo/executions",
                     "{\"id\": \"rd\", \"input\": {\"order\": \"x\", \"fragile\": true, "
                     "\"hold\": false}}",
                     201, NULL);
    json_decref(ended_as(&k, "rd", "failed"));
    http_post_expect(k.base_url, "/v1/executions/rd/retry", "{}", 202, NULL);
    wait_sql(db, "2",
             "SELECT count(*) FROM events WHERE execution_id = 'rd' AND type = "
             "'execution_failed'");
    assert_sql(db, "rd:ship:false,rd:ship:true",
               "SELECT string_agg((data->>'child') || ':' || (data->>'again'), ',' ORDER BY seq) "
               "FROM events WHERE execution_id = 'rd' AND type = 'child_started'");
    assert_sql(db, "1",
               "SELECT count(*) FROM events WHERE execution_id = 'rd:ship' AND type = "
               "'execution_retried'");
    assert_key_counts(&receiver, "rd:ship/label", 1, 1);
    assert_sql(db, "child_failed", "SELECT error->>'type' FROM executions WHERE id = 'rd'");
    stack_stop(&db, &k, &receiver);
}

/* A task one execution queues for another takes the other's owner as read then: queued while a
 * takeover of the other was under way, it keeps a dead owner. The orphan sweep (every lease
 * grace here) moves it to the execution's owner, which applies it. The child's own end, later,
 * finds its parent ended and queues nothing. */
static void test_task_for_a_gone_owner_is_moved(void **state)
{
    (void)state;
    char *db = harness_create_db("keel_it_flow_realign");
    struct proc receiver, k;
    receiver_start(&receiver, secret);
    keeld_start(&k, db, env(), NULL);
    register_def(&k, SHIPPING, receiver.base_url);
    register_def(&k, PARENT, receiver.base_url);
    http_post_expect(k.base_url, "/v1/workflows/parent/executions",
                     "{\"id\": \"re-1\", \"input\": {\"order\": \"o\", \"fragile\": false, "
                     "\"hold\": true}}",
                     201, NULL);
    wait_step(db, "re-1:ship", "hold/then/w", "waiting");
    char *v = harness_sqlf(db, "INSERT INTO tasks (execution_id, kind, step, due_at, owner, "
                               "payload) VALUES ('re-1', 'child_ended', 'ship', now(), "
                               "'keel:gone-for-good', '{\"child\": \"re-1:ship\", \"status\": "
                               "\"completed\", \"output\": {\"tracking\": \"T-9\"}, \"error\": "
                               "null}') RETURNING 1");
    free(v);
    json_t *done = ended_as(&k, "re-1", "completed");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(done, "output"), "tracking")), "T-9");
    json_decref(done);
    http_post_expect(k.base_url, "/v1/executions/re-1:ship/signals/go", "{}", 202, NULL);
    done = ended_as(&k, "re-1:ship", "completed");
    json_decref(done);
    assert_sql(db, "0", "SELECT count(*) FROM tasks");
    stack_stop(&db, &k, &receiver);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kill9_during_for_each),
        cmocka_unit_test(test_kill9_during_parallel_compensation),
        cmocka_unit_test(test_set_and_fail),
        cmocka_unit_test(test_if_both_ways),
        cmocka_unit_test(test_child_workflows),
        cmocka_unit_test(test_kill9_order_with_children),
        cmocka_unit_test(test_task_for_a_gone_owner_is_moved),
        cmocka_unit_test(test_retry_replaces_a_cancelled_child),
    };
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
