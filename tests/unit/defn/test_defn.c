/* Definitions: what parses into what, every error with its pointer, and retry arithmetic. */
#include "defn/defn.h"
#include "util/buf.h"

#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* Test documents are written with single quotes, which become double quotes here. */
static json_t *Jq(const char *text)
{
    char *copy = strdup(text);
    for (char *c = copy; *c; c++)
        if (*c == '\'')
            *c = '"';
    json_error_t e;
    json_t *v = json_loads(copy, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
    if (!v)
        fail_msg("bad test JSON %s: %s (column %d)", copy, e.text, e.column);
    free(copy);
    return v;
}

static struct defn *parse_ok(const char *text)
{
    json_t *doc = Jq(text);
    struct defn *d = NULL;
    json_t *errors = NULL;
    if (defn_parse(doc, &d, &errors) != 0) {
        char *dump = json_dumps(errors, JSON_INDENT(1));
        fail_msg("%s\nrejected: %s", text, dump);
    }
    assert_non_null(d);
    assert_null(errors);
    json_decref(doc);
    return d;
}

#define DAY (24LL * 60 * 60 * 1000)

/* ---- valid definitions -------------------------------------------------------------------- */

static const char CONTRACT_EXAMPLE[] =
    "{'name': 'order-fulfillment', 'description': 'optional',"
    " 'defaults': {'timeout': '30s',"
    "   'retry': {'max_attempts': 5, 'initial_interval': '1s', 'backoff_coefficient': 2.0,"
    "             'max_interval': '5m', 'non_retryable_errors': ['PaymentDeclined']}},"
    " 'steps': ["
    "  {'id': 'charge',"
    "   'activity': {'url': 'http://payments.internal/charge',"
    "                'input': {'order': '${input.order_id}', 'amount': '${input.total}'}},"
    "   'compensate': {'url': 'http://payments.internal/refund',"
    "                  'input': {'charge_id': '${steps.charge.output.id}'}}},"
    "  {'id': 'approval', 'wait': {'signal': 'approve', 'timeout': '72h'}, 'on_timeout': 'fail'},"
    "  {'id': 'cool-off', 'sleep': '3d'},"
    "  {'id': 'ship', 'activity': {'url': 'http://shipping.internal/ship',"
    "                              'input': {'order': '${input.order_id}'}},"
    "   'timeout': '10s', 'retry': {'max_attempts': 10}}"
    " ],"
    " 'output': {'charge': '${steps.charge.output}', 'approved_by': "
    "'${steps.approval.output.user}'}}";

static void assert_json(const json_t *got, const char *want_text)
{
    json_t *want = Jq(want_text);
    if (!json_equal(got, want))
        fail_msg("got %s, want %s", json_dumps(got, JSON_ENCODE_ANY), want_text);
    json_decref(want);
}

static void test_contract_example(void **state)
{
    (void)state;
    struct defn *d = parse_ok(CONTRACT_EXAMPLE);
    assert_string_equal(d->name, "order-fulfillment");
    assert_string_equal(d->description, "optional");
    assert_int_equal(d->n_steps, 4);

    const struct defn_step *charge = &d->steps[0];
    assert_string_equal(charge->id, "charge");
    assert_int_equal(charge->kind, DEFN_STEP_ACTIVITY);
    assert_json(charge->activity.url, "'http://payments.internal/charge'");
    assert_json(charge->activity.input,
                "{'order': '${input.order_id}', 'amount': '${input.total}'}");
    assert_int_equal(charge->activity.timeout_ms, 30000);
    assert_int_equal(charge->activity.schedule_to_close_ms, 0);
    assert_int_equal(charge->activity.heartbeat_timeout_ms, 0);
    assert_int_equal(charge->activity.retry.max_attempts, 5);
    assert_int_equal(charge->activity.retry.initial_interval_ms, 1000);
    assert_true(charge->activity.retry.backoff_coefficient == 2.0);
    assert_int_equal(charge->activity.retry.max_interval_ms, 5 * 60 * 1000);
    assert_int_equal(charge->activity.retry.n_non_retryable_errors, 1);
    assert_string_equal(charge->activity.retry.non_retryable_errors[0], "PaymentDeclined");
    assert_non_null(charge->compensate);
    assert_json(charge->compensate->url, "'http://payments.internal/refund'");
    assert_json(charge->compensate->input, "{'charge_id': '${steps.charge.output.id}'}");
    assert_int_equal(charge->compensate->timeout_ms, 30000);
    assert_int_equal(charge->compensate->retry.max_attempts, 10);
    assert_int_equal(charge->compensate->retry.initial_interval_ms, 1000);
    assert_int_equal(charge->compensate->retry.max_interval_ms, 5 * 60 * 1000);
    assert_int_equal(charge->compensate->retry.n_non_retryable_errors, 1);
    assert_null(charge->children);
    assert_int_equal(charge->n_children, 0);

    const struct defn_step *approval = &d->steps[1];
    assert_string_equal(approval->id, "approval");
    assert_int_equal(approval->kind, DEFN_STEP_WAIT);
    assert_string_equal(approval->signal, "approve");
    assert_int_equal(approval->wait_timeout_ms, 72 * 60 * 60 * 1000);
    assert_int_equal(approval->on_timeout, DEFN_ON_TIMEOUT_FAIL);
    assert_null(approval->compensate);
    assert_null(approval->activity.url);

    const struct defn_step *cool = &d->steps[2];
    assert_string_equal(cool->id, "cool-off");
    assert_int_equal(cool->kind, DEFN_STEP_SLEEP);
    assert_int_equal(cool->sleep_ms, 3 * DAY);

    const struct defn_step *ship = &d->steps[3];
    assert_int_equal(ship->kind, DEFN_STEP_ACTIVITY);
    assert_int_equal(ship->activity.timeout_ms, 10000);
    assert_int_equal(ship->activity.retry.max_attempts, 10);
    assert_int_equal(ship->activity.retry.initial_interval_ms, 1000);
    assert_int_equal(ship->activity.retry.max_interval_ms, 5 * 60 * 1000);
    assert_string_equal(ship->activity.retry.non_retryable_errors[0], "PaymentDeclined");
    assert_null(ship->compensate);

    assert_json(
        d->output,
        "{'charge': '${steps.charge.output}', 'approved_by': '${steps.approval.output.user}'}");
    defn_free(d);
}

static void test_minimal(void **state)
{
    (void)state;
    struct defn *d = parse_ok("{'name': 'a', 'steps': [{'id': 's', 'sleep': '0s'}]}");
    assert_string_equal(d->name, "a");
    assert_null(d->description);
    assert_null(d->output);
    assert_int_equal(d->n_steps, 1);
    assert_int_equal(d->steps[0].kind, DEFN_STEP_SLEEP);
    assert_int_equal(d->steps[0].sleep_ms, 0);
    defn_free(d);
}

/* With nothing said, an activity gets the built-in defaults. */
static void test_builtin_defaults(void **state)
{
    (void)state;
    struct defn *d = parse_ok("{'name': 'a', 'steps': [{'id': 's', 'activity': {'url': "
                              "'https://x.example'}}]}");
    const struct defn_activity *a = &d->steps[0].activity;
    assert_json(a->input, "null");
    assert_int_equal(a->timeout_ms, DEFN_DEFAULT_TIMEOUT_MS);
    assert_int_equal(a->timeout_ms, 30000);
    assert_int_equal(a->schedule_to_close_ms, 0);
    assert_int_equal(a->heartbeat_timeout_ms, 0);
    assert_int_equal(a->retry.max_attempts, 5);
    assert_int_equal(a->retry.initial_interval_ms, 1000);
    assert_true(a->retry.backoff_coefficient == 2.0);
    assert_int_equal(a->retry.max_interval_ms, 100000);
    assert_int_equal(a->retry.n_non_retryable_errors, 0);
    assert_null(a->retry.non_retryable_errors);
    assert_null(d->steps[0].compensate);
    defn_free(d);
}

/* A step's retry overrides defaults.retry one field at a time. */
static void test_retry_merge(void **state)
{
    (void)state;
    struct defn *d = parse_ok(
        "{'name': 'a',"
        " 'defaults': {'retry': {'max_attempts': 3, 'initial_interval': '2s',"
        "   'backoff_coefficient': 1.5, 'non_retryable_errors': ['A', 'B']}},"
        " 'steps': ["
        "  {'id': 'inherit', 'activity': {'url': 'http://h'}},"
        "  {'id': 'initial', 'activity': {'url': 'http://h'}, 'retry': {'initial_interval': 500}},"
        "  {'id': 'attempts', 'activity': {'url': 'http://h'}, 'retry': {'max_attempts': 1}},"
        "  {'id': 'clear', 'activity': {'url': 'http://h'}, 'retry': {'non_retryable_errors': []}},"
        "  {'id': 'coef', 'activity': {'url': 'http://h'}, 'retry': {'backoff_coefficient': 3}},"
        "  {'id': 'max', 'activity': {'url': 'http://h'}, 'retry': {'max_interval': '1h'}},"
        "  {'id': 'empty', 'activity': {'url': 'http://h'}, 'retry': {}}"
        " ]}");
    const struct defn_retry *r = &d->steps[0].activity.retry;
    assert_int_equal(r->max_attempts, 3);
    assert_int_equal(r->initial_interval_ms, 2000);
    assert_true(r->backoff_coefficient == 1.5);
    assert_int_equal(r->max_interval_ms, 200000); /* 100 x 2s */
    assert_int_equal(r->n_non_retryable_errors, 2);
    assert_string_equal(r->non_retryable_errors[1], "B");

    r = &d->steps[1].activity.retry;
    assert_int_equal(r->max_attempts, 3);
    assert_int_equal(r->initial_interval_ms, 500);
    assert_int_equal(r->max_interval_ms, 50000); /* 100 x the step's own initial */
    assert_true(r->backoff_coefficient == 1.5);
    assert_int_equal(r->n_non_retryable_errors, 2);

    r = &d->steps[2].activity.retry;
    assert_int_equal(r->max_attempts, 1);
    assert_int_equal(r->initial_interval_ms, 2000);

    r = &d->steps[3].activity.retry;
    assert_int_equal(r->n_non_retryable_errors, 0);
    assert_int_equal(r->max_attempts, 3);

    r = &d->steps[4].activity.retry;
    assert_true(r->backoff_coefficient == 3.0);

    r = &d->steps[5].activity.retry;
    assert_int_equal(r->max_interval_ms, 3600000);
    assert_int_equal(r->initial_interval_ms, 2000);

    r = &d->steps[6].activity.retry;
    assert_int_equal(r->max_attempts, 3);
    assert_int_equal(r->max_interval_ms, 200000);
    defn_free(d);
}

/* defaults.retry's max_interval holds for steps that only change initial_interval. */
static void test_retry_merge_max_from_defaults(void **state)
{
    (void)state;
    struct defn *d = parse_ok(
        "{'name': 'a', 'defaults': {'retry': {'max_interval': '10m'}},"
        " 'steps': [{'id': 'a', 'activity': {'url': 'http://h'}, 'retry': {'initial_interval': "
        "'10m'}},"
        "           {'id': 'b', 'activity': {'url': 'http://h'}}]}");
    assert_int_equal(d->steps[0].activity.retry.initial_interval_ms, 600000);
    assert_int_equal(d->steps[0].activity.retry.max_interval_ms, 600000);
    assert_int_equal(d->steps[1].activity.retry.initial_interval_ms, 1000);
    assert_int_equal(d->steps[1].activity.retry.max_interval_ms, 600000);
    defn_free(d);
}

static void test_timeouts(void **state)
{
    (void)state;
    struct defn *d = parse_ok(
        "{'name': 'a',"
        " 'defaults': {'timeout': '5s', 'schedule_to_close': '1h', 'heartbeat_timeout': '20s'},"
        " 'steps': ["
        "  {'id': 'a', 'activity': {'url': 'http://h'}},"
        "  {'id': 'b', 'activity': {'url': 'http://h'}, 'timeout': 1500,"
        "   'schedule_to_close': '2h', 'heartbeat_timeout': '1m'}"
        " ]}");
    assert_int_equal(d->steps[0].activity.timeout_ms, 5000);
    assert_int_equal(d->steps[0].activity.schedule_to_close_ms, 3600000);
    assert_int_equal(d->steps[0].activity.heartbeat_timeout_ms, 20000);
    assert_int_equal(d->steps[1].activity.timeout_ms, 1500);
    assert_int_equal(d->steps[1].activity.schedule_to_close_ms, 7200000);
    assert_int_equal(d->steps[1].activity.heartbeat_timeout_ms, 60000);
    defn_free(d);
}

static void test_compensate_defaults(void **state)
{
    (void)state;
    /* No defaults: 10 attempts, the built-in intervals, 30s per attempt. */
    struct defn *d =
        parse_ok("{'name': 'a', 'steps': [{'id': 's', 'activity': {'url': "
                 "'http://h'}, 'timeout': '3s', 'compensate': {'url': 'http://h/undo'}}]}");
    const struct defn_activity *c = d->steps[0].compensate;
    assert_non_null(c);
    assert_int_equal(c->retry.max_attempts, DEFN_DEFAULT_COMPENSATE_MAX_ATTEMPTS);
    assert_int_equal(c->retry.max_attempts, 10);
    assert_int_equal(c->retry.initial_interval_ms, 1000);
    assert_true(c->retry.backoff_coefficient == 2.0);
    assert_int_equal(c->retry.max_interval_ms, 100000);
    /* The step's own timeout is for the step, not for its compensation. */
    assert_int_equal(c->timeout_ms, 30000);
    assert_int_equal(c->schedule_to_close_ms, 0);
    assert_int_equal(c->heartbeat_timeout_ms, 0);
    assert_json(c->input, "null");
    defn_free(d);

    /* defaults apply, but never fewer than 10 attempts unless the compensate says so. */
    d = parse_ok(
        "{'name': 'a', 'defaults': {'timeout': '4s', 'heartbeat_timeout': '9s',"
        "  'schedule_to_close': '1m',"
        "  'retry': {'max_attempts': 3, 'initial_interval': '2s', 'non_retryable_errors': "
        "['X']}},"
        " 'steps': ["
        "  {'id': 'a', 'activity': {'url': 'http://h'}, 'compensate': {'url': 'http://h'}},"
        "  {'id': 'b', 'activity': {'url': 'http://h'}, 'compensate': {'url': 'http://h',"
        "   'timeout': '8s', 'retry': {'max_attempts': 2, 'backoff_coefficient': 1}}}"
        " ]}");
    c = d->steps[0].compensate;
    assert_int_equal(c->retry.max_attempts, 10);
    assert_int_equal(c->retry.initial_interval_ms, 2000);
    assert_int_equal(c->retry.max_interval_ms, 200000);
    assert_int_equal(c->retry.n_non_retryable_errors, 1);
    assert_int_equal(c->timeout_ms, 4000);
    assert_int_equal(c->heartbeat_timeout_ms, 9000);
    assert_int_equal(c->schedule_to_close_ms, 0);
    c = d->steps[1].compensate;
    assert_int_equal(c->retry.max_attempts, 2);
    assert_true(c->retry.backoff_coefficient == 1.0);
    assert_int_equal(c->retry.initial_interval_ms, 2000);
    assert_int_equal(c->timeout_ms, 8000);
    /* And the activity itself keeps defaults.retry's 3. */
    assert_int_equal(d->steps[1].activity.retry.max_attempts, 3);
    defn_free(d);

    d = parse_ok("{'name': 'a', 'defaults': {'retry': {'max_attempts': 20}},"
                 " 'steps': [{'id': 'a', 'activity': {'url': 'http://h'}, 'compensate': {'url': "
                 "'http://h'}}]}");
    assert_int_equal(d->steps[0].compensate->retry.max_attempts, 20);
    defn_free(d);
}

static void test_wait_and_sleep_kinds(void **state)
{
    (void)state;
    struct defn *d = parse_ok(
        "{'name': 'a', 'steps': ["
        "  {'id': 'w1', 'wait': {'signal': 'approve'}},"
        "  {'id': 'w2', 'wait': {'signal': 'order.paid:v1_x-y', 'timeout': 60000}, 'on_timeout': "
        "'continue'},"
        "  {'id': 'w3', 'wait': {'signal': 'x', 'timeout': '1s'}, 'on_timeout': 'fail'},"
        "  {'id': 's1', 'sleep': 250},"
        "  {'id': 'u1', 'sleep_until': '2030-01-31T09:00:00Z'},"
        "  {'id': 'u2', 'sleep_until': '2030-01-31T09:00:00.250+02:00'},"
        "  {'id': 'u3', 'sleep_until': '${input.deliver_at}'},"
        "  {'id': 'u4', 'sleep_until': '${steps.w1.output.until}'}"
        " ]}");
    assert_int_equal(d->steps[0].kind, DEFN_STEP_WAIT);
    assert_string_equal(d->steps[0].signal, "approve");
    assert_int_equal(d->steps[0].wait_timeout_ms, 0);
    assert_int_equal(d->steps[0].on_timeout, DEFN_ON_TIMEOUT_FAIL);
    assert_string_equal(d->steps[1].signal, "order.paid:v1_x-y");
    assert_int_equal(d->steps[1].wait_timeout_ms, 60000);
    assert_int_equal(d->steps[1].on_timeout, DEFN_ON_TIMEOUT_CONTINUE);
    assert_int_equal(d->steps[2].on_timeout, DEFN_ON_TIMEOUT_FAIL);
    assert_int_equal(d->steps[3].kind, DEFN_STEP_SLEEP);
    assert_int_equal(d->steps[3].sleep_ms, 250);
    assert_int_equal(d->steps[4].kind, DEFN_STEP_SLEEP_UNTIL);
    assert_json(d->steps[4].sleep_until, "'2030-01-31T09:00:00Z'");
    assert_json(d->steps[5].sleep_until, "'2030-01-31T09:00:00.250+02:00'");
    assert_json(d->steps[6].sleep_until, "'${input.deliver_at}'");
    assert_json(d->steps[7].sleep_until, "'${steps.w1.output.until}'");
    for (size_t i = 0; i < d->n_steps; i++) {
        assert_null(d->steps[i].activity.url);
        assert_null(d->steps[i].compensate);
        assert_int_equal(d->steps[i].n_children, 0);
    }
    defn_free(d);
}

static void test_wait_for_any(void **state)
{
    (void)state;
    struct defn *d = parse_ok("{'name': 'a', 'steps': ["
                              "  {'id': 'w', 'wait': {'any': ['approve', 'reject'], 'timeout': "
                              "'72h'}, 'on_timeout': 'continue'},"
                              "  {'id': 'one', 'wait': {'any': ['x']}}"
                              " ]}");
    assert_null(d->steps[0].signal);
    assert_int_equal(d->steps[0].n_any, 2);
    assert_string_equal(d->steps[0].any[0], "approve");
    assert_string_equal(d->steps[0].any[1], "reject");
    assert_int_equal(d->steps[0].wait_timeout_ms, 72LL * 60 * 60 * 1000);
    assert_int_equal(d->steps[0].on_timeout, DEFN_ON_TIMEOUT_CONTINUE);
    assert_true(defn_wait_accepts(&d->steps[0], "reject"));
    assert_false(defn_wait_accepts(&d->steps[0], "approv"));
    assert_false(defn_wait_accepts(&d->steps[0], NULL));
    assert_int_equal(d->steps[1].n_any, 1);
    defn_free(d);
}

static void test_set_and_fail_kinds(void **state)
{
    (void)state;
    struct defn *d =
        parse_ok("{'name': 'a', 'steps': ["
                 "  {'id': 'w', 'wait': {'signal': 'go'}},"
                 "  {'id': 't', 'set': {'sum': '${steps.w.output.n}', 'k': [1, null]}},"
                 "  {'id': 'n', 'set': null},"
                 "  {'id': 'r', 'fail': {'type': 'Rejected', 'message': "
                 "'total ${steps.t.output.sum} is too high'}},"
                 "  {'id': 'q', 'fail': {'type': 'Quiet'}}"
                 " ]}");
    assert_int_equal(d->steps[1].kind, DEFN_STEP_SET);
    assert_json(d->steps[1].set, "{'sum': '${steps.w.output.n}', 'k': [1, null]}");
    assert_non_null(d->steps[1].set_expr);
    assert_int_equal(d->steps[2].kind, DEFN_STEP_SET);
    assert_json(d->steps[2].set, "null");
    assert_int_equal(d->steps[3].kind, DEFN_STEP_FAIL);
    assert_json(d->steps[3].fail,
                "{'type': 'Rejected', 'message': 'total ${steps.t.output.sum} is too high'}");
    assert_non_null(d->steps[3].fail_expr);
    assert_int_equal(d->steps[4].kind, DEFN_STEP_FAIL);
    assert_json(d->steps[4].fail, "{'type': 'Quiet'}");
    defn_free(d);
}

static void test_if_kind(void **state)
{
    (void)state;
    struct defn *d = parse_ok(
        "{'name': 'a', 'steps': ["
        "  {'id': 'w', 'wait': {'signal': 'go'}},"
        "  {'id': 'big', 'if': '${ steps.w.output.big }', 'then': ["
        "    {'id': 'review', 'activity': {'url': 'http://h', 'input': '${steps.w.output}'}},"
        "    {'id': 'note', 'set': '${steps.review.output}'}],"
        "   'else': [{'id': 'auto', 'set': '${steps.w.output}'}]},"
        "  {'id': 'small', 'if': '${steps.big.output}', 'then': [{'id': 'x', 'sleep': '1s'}]},"
        "  {'id': 'after', 'set': ['${steps.note.output}', '${steps.auto.output}',"
        "   '${steps.big.output}', '${steps.x.output}']}"
        " ], 'output': '${steps.review.output}'}");
    const struct defn_step *b = &d->steps[1];
    assert_int_equal(b->kind, DEFN_STEP_IF);
    assert_json(b->cond, "'${ steps.w.output.big }'");
    assert_non_null(b->cond_expr);
    assert_true(expr_template_is_value(b->cond_expr));
    assert_int_equal(b->n_branches, 2);
    assert_string_equal(b->branches[0].name, "then");
    assert_int_equal(b->branches[0].n_steps, 2);
    assert_string_equal(b->branches[0].steps[1].id, "note");
    assert_string_equal(b->branches[1].name, "else");
    assert_int_equal(b->branches[1].n_steps, 1);
    const struct defn_step *s = &d->steps[2];
    assert_int_equal(s->n_branches, 1);
    assert_string_equal(s->branches[0].name, "then");
    assert_ptr_equal(defn_find_step(d, "auto"), &b->branches[1].steps[0]);
    assert_ptr_equal(defn_find_step(d, "x"), &s->branches[0].steps[0]);
    defn_free(d);
}

static void collect_children(void *arg, const char *pointer, const char *name)
{
    json_array_append_new(arg, json_pack("[s, s]", pointer, name));
}

static void test_workflow_kind(void **state)
{
    (void)state;
    struct defn *d = parse_ok(
        "{'name': 'a', 'steps': ["
        "  {'id': 'c', 'workflow': {'name': 'ship.v2', 'version': 3, 'input': {'o': "
        "'${input.o}'}}},"
        "  {'id': 'p', 'parallel': {'branches': {'x': [{'id': 'd', 'workflow': {'name': 'a'}}]}}},"
        "  {'id': 'i', 'if': '${input.b}', 'then': [{'id': 'e', 'set': 1}], 'else': ["
        "    {'id': 'f', 'for_each': {'items': [1], 'steps': [{'id': 'g', 'workflow': {'name': "
        "'ship.v2'}}]}}]}"
        " ], 'output': '${steps.c.output}'}");
    const struct defn_step *c = &d->steps[0];
    assert_int_equal(c->kind, DEFN_STEP_WORKFLOW);
    assert_string_equal(c->child_workflow, "ship.v2");
    assert_int_equal(c->child_version, 3);
    assert_json(c->child_input, "{'o': '${input.o}'}");
    assert_non_null(c->child_input_expr);
    const struct defn_step *g = defn_find_step(d, "g");
    assert_int_equal(g->child_version, 0);
    assert_json(g->child_input, "null");
    json_t *found = json_array();
    defn_each_child_workflow(d, collect_children, found);
    assert_json(found, "[['/steps/0/workflow/name', 'ship.v2'],"
                       " ['/steps/1/parallel/branches/x/0/workflow/name', 'a'],"
                       " ['/steps/2/else/0/for_each/steps/0/workflow/name', 'ship.v2']]");
    json_decref(found);
    defn_free(d);
}

/* Names, ids and signals at the edges of what is allowed. */
static void test_valid_names(void **state)
{
    (void)state;
    static const char *const names[] = {
        "a",
        "A",
        "0",
        "order-fulfillment",
        "orders.v2",
        "_x",
        "a..b",
        "...",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", /* 128 */
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char doc[512];
        snprintf(doc, sizeof doc, "{'name': '%s', 'steps': [{'id': 's', 'sleep': '1s'}]}",
                 names[i]);
        struct defn *d = parse_ok(doc);
        assert_string_equal(d->name, names[i]);
        defn_free(d);
    }
    static const char *const ids[] = {
        "a",
        "Z",
        "9",
        "-",
        "_",
        "charge_2-b",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", /* 64 */
    };
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        char doc[512];
        snprintf(doc, sizeof doc,
                 "{'name': 'n', 'steps': [{'id': '%s', 'sleep': '1s'}, {'id': 'next', "
                 "'activity': {'url': 'http://h', 'input': '${steps.%s.output}'}}]}",
                 ids[i], ids[i]);
        struct defn *d = parse_ok(doc);
        assert_string_equal(d->steps[0].id, ids[i]);
        defn_free(d);
    }
}

static void test_valid_urls(void **state)
{
    (void)state;
    static const char *const urls[] = {
        "http://h",
        "https://payments.internal/charge",
        "HTTPS://EXAMPLE.COM/X",
        "Http://h:8080/a?b=c#d",
        "http://127.0.0.1:9/x",
        "http://[::1]:8080/",
        "http://user@h/",
        "${input.callback_url}",
        "http://${input.host}/charge",
        "https://h/orders/${input.order_id}/ship",
        "http://h/$$",
        "http://h/$x",
    };
    for (size_t i = 0; i < sizeof urls / sizeof urls[0]; i++) {
        char doc[512];
        snprintf(doc, sizeof doc,
                 "{'name': 'n', 'steps': [{'id': 's', 'activity': {'url': '%s'},"
                 " 'compensate': {'url': '%s'}}]}",
                 urls[i], urls[i]);
        struct defn *d = parse_ok(doc);
        assert_string_equal(json_string_value(d->steps[0].activity.url), urls[i]);
        assert_string_equal(json_string_value(d->steps[0].compensate->url), urls[i]);
        defn_free(d);
    }
}

/* References that are allowed. */
static void test_valid_references(void **state)
{
    (void)state;
    struct defn *d = parse_ok(
        "{'name': 'n', 'steps': ["
        "  {'id': 'a', 'activity': {'url': 'http://h', 'input': '${input}'},"
        "   'compensate': {'url': 'http://h/${steps.a.output.id}',"
        "                  'input': {'mine': '${steps.a.output}', 'err': '${steps.a.error}'}}},"
        "  {'id': 'b', 'activity': {'url': 'http://h/${steps.a.output.host}',"
        "   'input': ['${steps.a.output}', '${steps.a.error.type}', '${execution.id}',"
        "             '${execution.workflow}']},"
        "   'compensate': {'url': 'http://h', 'input': '${steps.a.output} ${steps.b.output}'}},"
        "  {'id': 'c', 'sleep_until': '${steps.b.output.at}'}"
        " ],"
        " 'output': {'c': '${steps.c.output}', 'a': '${steps.a.output}', 'b': '${steps.b.error}',"
        "            'lit': '$${steps.zzz.output}'}}");
    defn_free(d);
}

/* Many steps, each using the one before: references and duplicates are found by hash, so
 * a body full of steps parses in linear time. */
static void test_many_steps(void **state)
{
    (void)state;
    enum { N = 20000 };
    json_t *steps = json_array();
    for (int i = 0; i < N; i++) {
        char id[16], prev[64];
        snprintf(id, sizeof id, "s%d", i);
        snprintf(prev, sizeof prev, "${steps.s%d.output}", i > 0 ? i - 1 : 0);
        json_array_append_new(steps, i == 0 ? json_pack("{s:s, s:s}", "id", id, "sleep", "1s")
                                            : json_pack("{s:s, s:{s:s, s:s}}", "id", id, "activity",
                                                        "url", "http://h", "input", prev));
    }
    json_t *doc = json_pack("{s:s, s:o}", "name", "big", "steps", steps);
    struct defn *d;
    json_t *errors;
    assert_int_equal(defn_parse(doc, &d, &errors), 0);
    assert_int_equal(d->n_steps, N);
    assert_int_equal(defn_step_index(d, "s19999"), 19999);
    defn_free(d);
    /* The last step now duplicates the first id and uses a later one. */
    json_t *last = json_array_get(json_object_get(doc, "steps"), N - 1);
    json_object_set_new(last, "id", json_string("s0"));
    json_object_set_new(
        json_object_get(json_array_get(json_object_get(doc, "steps"), 5), "activity"), "input",
        json_string("${steps.s9000.output}"));
    assert_int_equal(defn_parse(doc, &d, &errors), -1);
    /* Step 19999 still uses s19998, which is fine; only these two are wrong. */
    assert_int_equal(json_array_size(errors), 2);
    const json_t *e0 = json_array_get(errors, 0), *e1 = json_array_get(errors, 1);
    assert_string_equal(json_string_value(json_object_get(e0, "pointer")),
                        "/steps/5/activity/input");
    assert_non_null(strstr(json_string_value(json_object_get(e0, "message")),
                           "step \"s9000\" comes after this step"));
    assert_string_equal(json_string_value(json_object_get(e1, "pointer")), "/steps/19999/id");
    assert_string_equal(json_string_value(json_object_get(e1, "message")),
                        "duplicate step id \"s0\" (also used by /steps/0)");
    json_decref(errors);
    json_decref(doc);
}

static void test_step_index(void **state)
{
    (void)state;
    struct defn *d = parse_ok(CONTRACT_EXAMPLE);
    assert_int_equal(defn_step_index(d, "charge"), 0);
    assert_int_equal(defn_step_index(d, "approval"), 1);
    assert_int_equal(defn_step_index(d, "cool-off"), 2);
    assert_int_equal(defn_step_index(d, "ship"), 3);
    assert_int_equal(defn_step_index(d, "nope"), -1);
    assert_int_equal(defn_step_index(d, ""), -1);
    assert_int_equal(defn_step_index(d, "Charge"), -1);
    assert_int_equal(defn_step_index(d, NULL), -1);
    assert_int_equal(defn_step_index(NULL, "charge"), -1);
    defn_free(d);
}

/* The definition keeps copies: the document can be changed or freed afterwards. */
static void test_document_not_kept(void **state)
{
    (void)state;
    json_t *doc = Jq(CONTRACT_EXAMPLE);
    char *before = json_dumps(doc, JSON_SORT_KEYS);
    struct defn *d = NULL;
    json_t *errors = NULL;
    assert_int_equal(defn_parse(doc, &d, &errors), 0);
    char *after = json_dumps(doc, JSON_SORT_KEYS);
    assert_string_equal(before, after);
    json_object_set_new(
        json_object_get(json_array_get(json_object_get(doc, "steps"), 0), "activity"), "url",
        json_string("http://changed"));
    json_object_clear(doc);
    json_decref(doc);
    assert_json(d->steps[0].activity.url, "'http://payments.internal/charge'");
    assert_json(d->steps[0].activity.input,
                "{'order': '${input.order_id}', 'amount': '${input.total}'}");
    assert_non_null(d->output);
    defn_free(d);
    free(before);
    free(after);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    struct defn *d = (struct defn *)1;
    json_t *errors = NULL;
    json_t *doc = Jq("{'name': 'a', 'steps': [{'id': 's', 'sleep': '1s'}]}");
    assert_int_equal(defn_parse(doc, NULL, &errors), -1);
    assert_null(errors);
    assert_int_equal(defn_parse(doc, &d, NULL), -1);
    assert_ptr_equal(d, (struct defn *)1);
    json_decref(doc);
    assert_int_equal(defn_parse(NULL, &d, &errors), -1);
    assert_null(d);
    assert_int_equal(json_array_size(errors), 1);
    json_decref(errors);
    defn_free(NULL);
}

/* ---- flow steps: parallel and for_each ---------------------------------------------------- */

static const char FLOW_EXAMPLE[] =
    "{'name': 'flow', 'steps': ["
    "  {'id': 'load', 'activity': {'url': 'http://h/load'}},"
    "  {'id': 'notify', 'parallel': {'branches': {"
    "     'sms': [{'id': 'text', 'activity': {'url': 'http://h/sms',"
    "              'input': {'to': '${steps.load.output.phone}'}}}],"
    "     'email': [{'id': 'render', 'activity': {'url': 'http://h/render'}},"
    "               {'id': 'send', 'activity': {'url': 'http://h/send',"
    "                'input': '${steps.render.output}'}}]}}},"
    "  {'id': 'all', 'for_each': {'items': '${steps.load.output.orders}', 'concurrency': 5,"
    "   'steps': [{'id': 'charge', 'activity': {'url': 'http://h/charge',"
    "               'input': {'order': '${item}', 'n': '${index}', 'sent': "
    "'${steps.send.output}'}},"
    "              'compensate': {'url': 'http://h/refund', 'input': '${steps.charge.output}'}},"
    "             {'id': 'ship', 'activity': {'url': 'http://h/ship/${item.id}',"
    "               'input': '${steps.charge.output.id}'}}]}},"
    "  {'id': 'lit', 'for_each': {'items': [1, '${input.x}'], 'steps': [{'id': 'nap', 'sleep': "
    "'1s'}]}}"
    " ],"
    " 'output': {'mail': '${steps.notify.output.email}', 'sent': '${steps.send.output}',"
    "            'orders': '${steps.all.output[0]}', 'lit': '${steps.lit.output}'}}";

static void test_flow_steps(void **state)
{
    (void)state;
    struct defn *d = parse_ok(FLOW_EXAMPLE);
    assert_int_equal(d->n_steps, 4);

    const struct defn_step *notify = &d->steps[1];
    assert_int_equal(notify->kind, DEFN_STEP_PARALLEL);
    assert_int_equal(notify->n_branches, 2);
    /* Sorted by name, whatever the member order. */
    assert_string_equal(notify->branches[0].name, "email");
    assert_int_equal(notify->branches[0].n_steps, 2);
    assert_string_equal(notify->branches[0].steps[0].id, "render");
    assert_string_equal(notify->branches[0].steps[1].id, "send");
    assert_json(notify->branches[0].steps[1].activity.input, "'${steps.render.output}'");
    assert_non_null(notify->branches[0].steps[1].activity.input_expr);
    assert_string_equal(notify->branches[1].name, "sms");
    assert_int_equal(notify->branches[1].n_steps, 1);
    assert_string_equal(notify->branches[1].steps[0].id, "text");
    assert_int_equal(notify->branches[1].steps[0].activity.retry.max_attempts, 5);
    assert_null(notify->children);
    assert_int_equal(notify->n_children, 0);
    assert_null(notify->items);
    assert_null(notify->activity.url);

    const struct defn_step *all = &d->steps[2];
    assert_int_equal(all->kind, DEFN_STEP_FOR_EACH);
    assert_json(all->items, "'${steps.load.output.orders}'");
    assert_non_null(all->items_expr);
    assert_int_equal(all->concurrency, 5);
    assert_int_equal(all->n_children, 2);
    assert_string_equal(all->children[0].id, "charge");
    assert_non_null(all->children[0].compensate);
    assert_int_equal(all->children[0].compensate->retry.max_attempts, 10);
    assert_string_equal(all->children[1].id, "ship");
    assert_int_equal(all->n_branches, 0);
    assert_null(all->branches);

    const struct defn_step *lit = &d->steps[3];
    assert_json(lit->items, "[1, '${input.x}']");
    assert_int_equal(lit->concurrency, DEFN_FOR_EACH_DEFAULT_CONCURRENCY);
    assert_int_equal(lit->children[0].kind, DEFN_STEP_SLEEP);

    /* The compiled items evaluate like any template. */
    json_t *ctx = Jq("{'input': {'x': 'two'}}");
    struct expr_error err;
    json_t *items = expr_template_eval(lit->items_expr, ctx, SIZE_MAX, &err);
    assert_json(items, "[1, 'two']");
    json_decref(items);
    json_decref(ctx);

    /* defn_step_index: the top level only; defn_find_step: any depth. */
    assert_int_equal(defn_step_index(d, "notify"), 1);
    assert_int_equal(defn_step_index(d, "all"), 2);
    assert_int_equal(defn_step_index(d, "send"), -1);
    assert_int_equal(defn_step_index(d, "charge"), -1);
    assert_ptr_equal(defn_find_step(d, "load"), &d->steps[0]);
    assert_ptr_equal(defn_find_step(d, "notify"), notify);
    assert_ptr_equal(defn_find_step(d, "send"), &notify->branches[0].steps[1]);
    assert_ptr_equal(defn_find_step(d, "text"), &notify->branches[1].steps[0]);
    assert_ptr_equal(defn_find_step(d, "ship"), &all->children[1]);
    assert_ptr_equal(defn_find_step(d, "nap"), &lit->children[0]);
    assert_null(defn_find_step(d, "nope"));
    assert_null(defn_find_step(d, "email"));
    assert_null(defn_find_step(d, NULL));
    assert_null(defn_find_step(NULL, "load"));
    defn_free(d);
}

/* Three levels: a for_each in a parallel in a for_each, with every kind of reference that is
 * allowed there. */
static const char NESTED3[] =
    "{'name': 'nested', 'steps': ["
    "  {'id': 'start', 'activity': {'url': 'http://h/start'}},"
    "  {'id': 'outer', 'for_each': {'items': '${steps.start.output.regions}', 'steps': ["
    "    {'id': 'prep', 'activity': {'url': 'http://h/prep/${item.name}',"
    "      'input': {'i': '${index}', 'o': '${loops.outer.item}', 's': '${steps.start.output}'}}},"
    "    {'id': 'fan', 'parallel': {'branches': {"
    "      'b': [{'id': 'b1', 'activity': {'url': 'http://h/b1', 'input': "
    "'${steps.prep.output}'}}],"
    "      'a': [{'id': 'a1', 'activity': {'url': 'http://h/a1', 'input': '${loops.outer.index}'}},"
    "            {'id': 'inner', 'for_each': {'items': '${steps.a1.output.list}',"
    "             'concurrency': 1000, 'steps': ["
    "              {'id': 'leaf', 'activity': {'url': 'http://h/leaf/${loops.outer.item.name}',"
    "                'input': {'item': '${item}', 'inner': '${loops.inner.index}',"
    "                          'outer': '${loops.outer.index}', 'a1': '${steps.a1.output}',"
    "                          'prep': '${steps.prep.output}', 'start': '${execution.id}'}},"
    "               'compensate': {'url': 'http://h/undo', 'input': ["
    "                 '${steps.leaf.output}', '${item}', '${steps.prep.output}']}},"
    "              {'id': 'after', 'sleep_until': '${steps.leaf.output.at}'}]}}]}}},"
    "    {'id': 'sum', 'activity': {'url': 'http://h/sum', 'input': {"
    "      'fan': '${steps.fan.output}', 'b1': '${steps.b1.output}', 'a': '${steps.a1.output}',"
    "      'inner': '${steps.inner.output}', 'item': '${item}'}}}]}},"
    "  {'id': 'end', 'activity': {'url': 'http://h/end', 'input': '${steps.outer.output}'}}"
    " ],"
    " 'output': {'outer': '${steps.outer.output}', 'start': '${steps.start.output}'}}";

static void test_nested_three_levels(void **state)
{
    (void)state;
    struct defn *d = parse_ok(NESTED3);
    const struct defn_step *outer = defn_find_step(d, "outer");
    assert_ptr_equal(outer, &d->steps[1]);
    assert_int_equal(outer->kind, DEFN_STEP_FOR_EACH);
    assert_int_equal(outer->n_children, 3);
    const struct defn_step *fan = &outer->children[1];
    assert_string_equal(fan->id, "fan");
    assert_int_equal(fan->kind, DEFN_STEP_PARALLEL);
    assert_string_equal(fan->branches[0].name, "a");
    assert_string_equal(fan->branches[1].name, "b");
    const struct defn_step *inner = &fan->branches[0].steps[1];
    assert_ptr_equal(defn_find_step(d, "inner"), inner);
    assert_int_equal(inner->kind, DEFN_STEP_FOR_EACH);
    assert_int_equal(inner->concurrency, 1000);
    assert_ptr_equal(defn_find_step(d, "leaf"), &inner->children[0]);
    assert_ptr_equal(defn_find_step(d, "after"), &inner->children[1]);
    assert_ptr_equal(defn_find_step(d, "sum"), &outer->children[2]);
    assert_int_equal(defn_step_index(d, "end"), 2);
    assert_int_equal(defn_step_index(d, "leaf"), -1);

    /* The leaf's compiled input reads the loops from the context the engine gives it. */
    json_t *ctx = Jq("{'execution': {'id': 'ex'},"
                     " 'steps': {'a1': {'output': 1}, 'prep': {'output': 2}},"
                     " 'item': 'i', 'index': 4,"
                     " 'loops': {'outer': {'item': {'name': 'eu'}, 'index': 0},"
                     "           'inner': {'item': 'i', 'index': 4}}}");
    struct expr_error err;
    json_t *got = expr_template_eval(inner->children[0].activity.input_expr, ctx, SIZE_MAX, &err);
    assert_json(got, "{'item': 'i', 'inner': 4, 'outer': 0, 'a1': 1, 'prep': 2, 'start': 'ex'}");
    json_decref(got);
    got = expr_template_eval(inner->children[0].activity.url_expr, ctx, SIZE_MAX, &err);
    assert_json(got, "'http://h/leaf/eu'");
    json_decref(got);
    json_decref(ctx);
    defn_free(d);
}

/* References that flow steps allow: earlier siblings of the step or of any of its ancestors and
 * what they hold outside loops; the same iteration's steps; a container's output once it has
 * completed; the loops that enclose a step. */
static void test_valid_flow_references(void **state)
{
    (void)state;
    struct defn *d = parse_ok(
        "{'name': 'refs', 'steps': ["
        "  {'id': 'a', 'activity': {'url': 'http://h'}},"
        "  {'id': 'p', 'parallel': {'branches': {"
        "    'x': [{'id': 'x1', 'activity': {'url': 'http://h', 'input': '${steps.a.output}'}},"
        "          {'id': 'q', 'parallel': {'branches': {'only': [{'id': 'q1', 'sleep': '1s'}]}}},"
        "          {'id': 'x2', 'activity': {'url': 'http://h', 'input': ['${steps.x1.output}',"
        "            '${steps.q1.output}', '${steps.q.output.only}']}}],"
        "    'y': [{'id': 'y1', 'sleep_until': '${steps.a.output.at}'}]}}},"
        "  {'id': 'b', 'activity': {'url': 'http://h', 'input': ['${steps.x2.output}',"
        "    '${steps.q1.output}', '${steps.y1.output}', '${steps.p.output.x}']}},"
        "  {'id': 'f', 'for_each': {'items': '${steps.p.output.y}', 'concurrency': 1, 'steps': ["
        "    {'id': 'f1', 'activity': {'url': 'http://h/${item}', 'input': ['${index}',"
        "      '${loops.f.item}', '${loops.f.index}', '${steps.b.output}', '${steps.x1.output}']},"
        "     'compensate': {'url': 'http://h', 'input': ['${steps.f1.output}', '${item}',"
        "      '${steps.a.output}']}},"
        "    {'id': 'g', 'for_each': {'items': ['${item}', '${steps.f1.output}',"
        "      '${loops.f.index}'], 'steps': ["
        "      {'id': 'g1', 'activity': {'url': 'http://h', 'input': ['${item}', "
        "'${loops.g.item}',"
        "        '${loops.f.item}', '${steps.f1.output}']}}]}},"
        "    {'id': 'f2', 'activity': {'url': 'http://h', 'input': ['${steps.g.output}',"
        "      '${steps.f1.error}']}}]}}"
        " ],"
        " 'output': {'x2': '${steps.x2.output}', 'q1': '${steps.q1.output}', 'f': "
        "'${steps.f.output}', 'p': '${steps.p.output}', 'b': '${steps.b.error}'}}");
    assert_int_equal(d->n_steps, 4);
    assert_int_equal(defn_find_step(d, "f")->concurrency, 1);
    assert_int_equal(defn_find_step(d, "g")->n_children, 1);
    defn_free(d);
}

/* Builds a definition whose steps nest `levels` deep: for_each in for_each ..., the innermost
 * holding one sleep step (so levels + 1 levels of steps in all when leaf is true). */
static json_t *deep_doc(int levels)
{
    json_t *inner = json_pack("[{s:s, s:s}]", "id", "leaf", "sleep", "1s");
    for (int i = levels; i >= 1; i--) {
        char id[16];
        snprintf(id, sizeof id, "l%d", i);
        inner = json_pack("[{s:s, s:{s:[], s:o}}]", "id", id, "for_each", "items", "steps", inner);
    }
    return json_pack("{s:s, s:o}", "name", "deep", "steps", inner);
}

static void test_nesting_depth(void **state)
{
    (void)state;
    /* 31 loops and the leaf: 32 levels of steps, the most there may be. */
    json_t *doc = deep_doc(DEFN_MAX_STEP_DEPTH - 1);
    struct defn *d;
    json_t *errors;
    assert_int_equal(defn_parse(doc, &d, &errors), 0);
    assert_non_null(defn_find_step(d, "leaf"));
    assert_non_null(defn_find_step(d, "l31"));
    defn_free(d);
    json_decref(doc);

    /* One more: the leaf is at level 33, an error at its pointer, and nothing below it is
     * looked at. */
    doc = deep_doc(DEFN_MAX_STEP_DEPTH);
    assert_int_equal(defn_parse(doc, &d, &errors), -1);
    assert_null(d);
    assert_int_equal(json_array_size(errors), 1);
    struct buf want = BUF_INIT;
    buf_puts(&want, "/steps/0");
    for (int i = 0; i < DEFN_MAX_STEP_DEPTH; i++)
        buf_puts(&want, "/for_each/steps/0");
    const json_t *e = json_array_get(errors, 0);
    assert_string_equal(json_string_value(json_object_get(e, "pointer")), want.data);
    assert_string_equal(json_string_value(json_object_get(e, "message")),
                        "steps are nested too deeply (at most 32 levels)");
    buf_free(&want);
    json_decref(errors);
    json_decref(doc);

    /* Far deeper than that (a few hundred levels, well within the request's JSON depth): still
     * one error, and no deep recursion. */
    doc = deep_doc(400);
    assert_int_equal(defn_parse(doc, &d, &errors), -1);
    assert_int_equal(json_array_size(errors), 1);
    json_decref(errors);
    json_decref(doc);
}

/* Literal URLs nested at any depth are checked against the destination policy, at their full
 * pointers. */
static void test_nested_destinations(void **state)
{
    (void)state;
    struct defn *d =
        parse_ok("{'name': 'dest', 'steps': ["
                 "  {'id': 'ok', 'activity': {'url': 'http://h/ok'}},"
                 "  {'id': 'p', 'parallel': {'branches': {'z': [{'id': 'z1', 'sleep': '1s'},"
                 "     {'id': 'z2', 'activity': {'url': 'http://169.254.169.254/x'},"
                 "      'compensate': {'url': 'http://169.254.169.254/undo'}}],"
                 "    'a': [{'id': 'f', 'for_each': {'items': [1], 'steps': ["
                 "      {'id': 'f1', 'activity': {'url': 'http://${input.host}/x'}},"
                 "      {'id': 'f2', 'activity': {'url': 'http://[fe80::1]/x'}}]}}]}}}]}");
    json_t *errors = NULL;
    assert_int_equal(defn_check_destinations(&d, &errors), -1);
    assert_null(d);
    assert_int_equal(json_array_size(errors), 3);
    static const char *const want[] = {
        "/steps/1/parallel/branches/a/0/for_each/steps/1/activity/url",
        "/steps/1/parallel/branches/z/1/activity/url",
        "/steps/1/parallel/branches/z/1/compensate/url",
    };
    for (size_t i = 0; i < 3; i++) {
        const json_t *e = json_array_get(errors, i);
        assert_string_equal(json_string_value(json_object_get(e, "pointer")), want[i]);
        assert_non_null(
            strstr(json_string_value(json_object_get(e, "message")), "destination refused"));
    }
    json_decref(errors);

    d = parse_ok(FLOW_EXAMPLE);
    assert_int_equal(defn_check_destinations(&d, &errors), 0);
    assert_non_null(d);
    defn_free(d);
}

/* Duplicate ids at any depth name the first use, walking branches in name order (the order
 * they are stored in), so the member order of the document does not matter. */
static void test_nested_duplicates(void **state)
{
    (void)state;
    static const char *const docs[] = {
        "{'name': 'w', 'steps': [{'id': 'p', 'parallel': {'branches': {"
        "  'b': [{'id': 'x', 'sleep': '1s'}], 'a': [{'id': 'x', 'sleep': '1s'}]}}}]}",
        "{'name': 'w', 'steps': [{'id': 'p', 'parallel': {'branches': {"
        "  'a': [{'id': 'x', 'sleep': '1s'}], 'b': [{'id': 'x', 'sleep': '1s'}]}}}]}",
    };
    for (size_t i = 0; i < 2; i++) {
        json_t *doc = Jq(docs[i]);
        struct defn *d;
        json_t *errors;
        assert_int_equal(defn_parse(doc, &d, &errors), -1);
        assert_int_equal(json_array_size(errors), 1);
        const json_t *e = json_array_get(errors, 0);
        assert_string_equal(json_string_value(json_object_get(e, "pointer")),
                            "/steps/0/parallel/branches/b/0/id");
        assert_string_equal(
            json_string_value(json_object_get(e, "message")),
            "duplicate step id \"x\" (also used by /steps/0/parallel/branches/a/0)");
        json_decref(errors);
        json_decref(doc);
    }
}

/* ---- invalid definitions ------------------------------------------------------------------ */

struct want {
    const char *pointer;
    const char *message; /* a substring of the message */
};

#define DOC(steps)   "{'name': 'w', 'steps': [" steps "]}"
#define ACT(extra)   "{'id': 'a', 'activity': {'url': 'http://h'}" extra "}"
#define SLEEP(extra) "{'id': 's', 'sleep': '1s'" extra "}"
#define WAIT(extra)  "{'id': 'w', 'wait': {'signal': 'go'}" extra "}"
#define L64          "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

static const struct {
    const char *doc;
    struct want errors[8]; /* every error expected, in any order; ends at a NULL pointer */
} invalid[] = {
    /* The document as a whole. */
    {"[]", {{"", "a definition must be a JSON object"}}},
    {"null", {{"", "a definition must be a JSON object"}}},
    {"'order'", {{"", "a definition must be a JSON object"}}},
    {"{}", {{"", "missing required field \"name\""}, {"", "missing required field \"steps\""}}},
    {"{'name': 'w', 'steps': [{'id': 's', 'sleep': '1s'}], 'extra': 1, 'step': []}",
     {{"/extra", "unknown field"}, {"/step", "unknown field; did you mean \"steps\"?"}}},
    {"{'name': 'w', 'descripton': 'x', 'steps': [{'id': 's', 'sleep': '1s'}]}",
     {{"/descripton", "unknown field; did you mean \"description\"?"}}},
    {"{'name': 'w', 'a/b~c': 1, 'steps': [{'id': 's', 'sleep': '1s'}]}",
     {{"/a~1b~0c", "unknown field"}}},
    {"{'name': 'w', 'description': 5, 'steps': [{'id': 's', 'sleep': '1s'}]}",
     {{"/description", "must be a string"}}},

    /* name */
    {"{'name': 5, 'steps': [{'id': 's', 'sleep': '1s'}]}", {{"/name", "must be a string"}}},
    {"{'name': '', 'steps': [{'id': 's', 'sleep': '1s'}]}",
     {{"/name", "must be 1 to 128 characters of A-Z, a-z, 0-9, _, . and -"}}},
    {"{'name': 'a/b', 'steps': [{'id': 's', 'sleep': '1s'}]}", {{"/name", "1 to 128 characters"}}},
    {"{'name': 'a b', 'steps': [{'id': 's', 'sleep': '1s'}]}", {{"/name", "1 to 128 characters"}}},
    {"{'name': 'caf\\u00e9', 'steps': [{'id': 's', 'sleep': '1s'}]}",
     {{"/name", "1 to 128 characters"}}},
    {"{'name': 'a\\u0000b', 'steps': [{'id': 's', 'sleep': '1s'}]}",
     {{"/name", "1 to 128 characters"}}},
    {"{'name': '.', 'steps': [{'id': 's', 'sleep': '1s'}]}",
     {{"/name", "must not be \".\" or \"..\""}}},
    {"{'name': '..', 'steps': [{'id': 's', 'sleep': '1s'}]}", {{"/name", "must not be"}}},
    {"{'name': '" L64 L64 "a', 'steps': [{'id': 's', 'sleep': '1s'}]}",
     {{"/name", "1 to 128 characters"}}},

    /* steps */
    {"{'name': 'w', 'steps': 'x'}", {{"/steps", "must be an array of steps"}}},
    {"{'name': 'w', 'steps': {}}", {{"/steps", "must be an array of steps"}}},
    {"{'name': 'w', 'steps': []}", {{"/steps", "must have at least one step"}}},
    {DOC("5"), {{"/steps/0", "a step must be an object"}}},
    {DOC(SLEEP("") ", null"), {{"/steps/1", "a step must be an object"}}},
    {DOC("{'sleep': '1s'}"), {{"/steps/0", "missing required field \"id\""}}},
    {DOC("{'id': 5, 'sleep': '1s'}"), {{"/steps/0/id", "must be a string"}}},
    {DOC("{'id': '', 'sleep': '1s'}"),
     {{"/steps/0/id", "must be 1 to 64 characters of A-Z, a-z, 0-9, _ and -"}}},
    {DOC("{'id': 'a.b', 'sleep': '1s'}"), {{"/steps/0/id", "1 to 64 characters"}}},
    {DOC("{'id': 'a b', 'sleep': '1s'}"), {{"/steps/0/id", "1 to 64 characters"}}},
    {DOC("{'id': '" L64 "a', 'sleep': '1s'}"), {{"/steps/0/id", "1 to 64 characters"}}},
    {DOC(SLEEP("") "," SLEEP("") "," SLEEP("")),
     {{"/steps/1/id", "duplicate step id \"s\" (also used by /steps/0)"},
      {"/steps/2/id", "duplicate step id \"s\" (also used by /steps/0)"}}},
    {DOC("{'id': 's'}"),
     {{"/steps/0",
       "a step needs one of activity, sleep, sleep_until, wait, parallel, for_each, set, "
       "fail, if or workflow"}}},
    {DOC("{'id': 's', 'sleep': '1s', 'activity': {'url': 'http://h'}}"),
     {{"/steps/0", "a step has exactly one kind, but this one has both activity and sleep"}}},
    {DOC("{'id': 's', 'wait': {'signal': 'x'}, 'sleep_until': '2030-01-01T00:00:00Z',"
         " 'sleep': 5}"),
     {{"/steps/0", "both sleep and sleep_until"}}},
    {DOC(SLEEP(", 'retries': 3, 'ID': 'x', 'kind': 'sleep'")),
     {{"/steps/0/retries", "unknown field; did you mean \"retry\"?"},
      {"/steps/0/ID", "unknown field; did you mean \"id\"?"},
      {"/steps/0/kind", "unknown field"}}},
    /* A hint only when the name is close: "kind" is two edits from "id", but not a typo of it. */
    {DOC(SLEEP(", 'kind': 'sleep'")), {{"/steps/0/kind", "unknown field (allowed:"}}},

    /* activity */
    {DOC("{'id': 'a', 'activity': 'http://h'}"),
     {{"/steps/0/activity", "must be an object such as {\"url\": \"https://...\"}"}}},
    {DOC("{'id': 'a', 'activity': {}}"), {{"/steps/0/activity", "missing required field \"url\""}}},
    {DOC("{'id': 'a', 'activity': {'url': 'http://h', 'headers': {}, 'method': 'GET'}}"),
     {{"/steps/0/activity/headers", "unknown field"},
      {"/steps/0/activity/method", "unknown field"}}},
    {DOC("{'id': 'a', 'activity': {'url': 5}}"), {{"/steps/0/activity/url", "must be a string"}}},
    {DOC("{'id': 'a', 'activity': {'url': ''}}"), {{"/steps/0/activity/url", "must not be empty"}}},
    {DOC("{'id': 'a', 'activity': {'url': 'ftp://h/x'}}"),
     {{"/steps/0/activity/url", "must be an http:// or https:// URL"}}},
    {DOC("{'id': 'a', 'activity': {'url': 'payments.internal/charge'}}"),
     {{"/steps/0/activity/url", "http:// or https://"}}},
    {DOC("{'id': 'a', 'activity': {'url': 'http://'}}"),
     {{"/steps/0/activity/url", "http:// or https://"}}},
    {DOC("{'id': 'a', 'activity': {'url': 'http:///path'}}"),
     {{"/steps/0/activity/url", "http:// or https://"}}},
    {DOC("{'id': 'a', 'activity': {'url': 'http://:80/'}}"),
     {{"/steps/0/activity/url", "http:// or https://"}}},
    {DOC("{'id': 'a', 'activity': {'url': 'http://h/a b'}}"),
     {{"/steps/0/activity/url", "no spaces"}}},
    {DOC("{'id': 'a', 'activity': {'url': ' http://h'}}"),
     {{"/steps/0/activity/url", "http:// or https://"}}},
    {DOC("{'id': 'a', 'activity': {'url': 'http://h\\n'}}"),
     {{"/steps/0/activity/url", "http:// or https://"}}},
    {DOC("{'id': 'a', 'activity': {'url': 'http:/h'}}"),
     {{"/steps/0/activity/url", "http:// or https://"}}},
    {DOC("{'id': 'a', 'activity': {'url': 'http://${input.h'}}"),
     {{"/steps/0/activity/url", "${input.h: missing \"}\" to close the expression"}}},
    {DOC("{'id': 'a', 'activity': {'url': 'http://h', 'input': {'order': '${inptu.id}',"
         " 'list': [1, '${}']}}}"),
     {{"/steps/0/activity/input/order", "${inptu.id}: unknown root \"inptu\""},
      {"/steps/0/activity/input/list/1", "${}: empty expression"}}},
    {DOC("{'id': 'a', 'activity': {'url': 'http://h', 'input': {'x/y': '${steps.a}'}}}"),
     {{"/steps/0/activity/input/x~1y", "only .output or .error may follow \"steps.a\""}}},

    /* sleep and sleep_until */
    {DOC("{'id': 's', 'sleep': '1h30m'}"), {{"/steps/0/sleep", "\"1h30m\" are not supported"}}},
    {DOC("{'id': 's', 'sleep': -1}"), {{"/steps/0/sleep", "must not be negative"}}},
    {DOC("{'id': 's', 'sleep': 1.5}"), {{"/steps/0/sleep", "whole number"}}},
    {DOC("{'id': 's', 'sleep': '${input.delay}'}"),
     {{"/steps/0/sleep", "must start with a number"}}},
    {DOC("{'id': 's', 'sleep': {}}"), {{"/steps/0/sleep", "must be a duration string"}}},
    {DOC("{'id': 's', 'sleep_until': 'tomorrow'}"),
     {{"/steps/0/sleep_until",
       "must be an RFC 3339 time such as \"2030-01-31T09:00:00Z\" or an expression such as "
       "\"${input.deliver_at}\""}}},
    {DOC("{'id': 's', 'sleep_until': '2030-13-01T00:00:00Z'}"),
     {{"/steps/0/sleep_until", "RFC 3339"}}},
    {DOC("{'id': 's', 'sleep_until': '2030-01-01'}"), {{"/steps/0/sleep_until", "RFC 3339"}}},
    {DOC("{'id': 's', 'sleep_until': '2030-01-01T00:00:00'}"),
     {{"/steps/0/sleep_until", "RFC 3339"}}},
    {DOC("{'id': 's', 'sleep_until': 1893456000000}"), {{"/steps/0/sleep_until", "RFC 3339"}}},
    {DOC("{'id': 's', 'sleep_until': ''}"), {{"/steps/0/sleep_until", "RFC 3339"}}},
    {DOC("{'id': 's', 'sleep_until': '${inptu.at}'}"),
     {{"/steps/0/sleep_until", "${inptu.at}: unknown root"}}},
    {DOC("{'id': 's', 'sleep_until': '${steps.s.output}'}"),
     {{"/steps/0/sleep_until", "${steps.s.output}: a step cannot use its own result"}}},

    /* wait */
    {DOC("{'id': 'w', 'wait': 'approve'}"),
     {{"/steps/0/wait", "must be an object such as {\"signal\": \"approve\"}"}}},
    {DOC("{'id': 'w', 'wait': {}}"), {{"/steps/0/wait", "missing required field \"signal\""}}},
    {DOC("{'id': 'w', 'wait': {'signal': 'a', 'any': ['b']}}"),
     {{"/steps/0/wait", "has both \"signal\" and \"any\""}}},
    {DOC("{'id': 'w', 'wait': {'any': []}}"),
     {{"/steps/0/wait/any", "must be an array of 1 to 32 signal names"}}},
    {DOC("{'id': 'w', 'wait': {'any': 'approve'}}"),
     {{"/steps/0/wait/any", "must be an array of 1 to 32 signal names"}}},
    {DOC("{'id': 'w', 'wait': {'any': ['approve', 'no way', 'approve', 5]}}"),
     {{"/steps/0/wait/any/1", "1 to 128 characters"},
      {"/steps/0/wait/any/2", "\"approve\" is already in the list"},
      {"/steps/0/wait/any/3", "1 to 128 characters"}}},
    {DOC("{'id': 'w', 'wait': {'signal': 5}}"), {{"/steps/0/wait/signal", "must be a string"}}},
    {DOC("{'id': 'w', 'wait': {'signal': ''}}"),
     {{"/steps/0/wait/signal", "must be 1 to 128 characters of A-Z, a-z, 0-9, _, ., : and -"}}},
    {DOC("{'id': 'w', 'wait': {'signal': 'a b'}}"), {{"/steps/0/wait/signal", "1 to 128"}}},
    {DOC("{'id': 'w', 'wait': {'signal': 'a/b'}}"), {{"/steps/0/wait/signal", "1 to 128"}}},
    {DOC("{'id': 'w', 'wait': {'signal': '" L64 L64 "a'}}"),
     {{"/steps/0/wait/signal", "1 to 128"}}},
    {DOC("{'id': 'w', 'wait': {'signal': '${input.sig}'}}"),
     {{"/steps/0/wait/signal", "1 to 128"}}},
    {DOC("{'id': 'w', 'wait': {'signal': 'x', 'timeout': '0s'}}"),
     {{"/steps/0/wait/timeout", "must be greater than zero"}}},
    {DOC("{'id': 'w', 'wait': {'signal': 'x', 'timeout': '1 h'}}"),
     {{"/steps/0/wait/timeout", "spaces"}}},
    {DOC("{'id': 'w', 'wait': {'signal': 'x', 'signals': ['y']}}"),
     {{"/steps/0/wait/signals", "unknown field; did you mean \"signal\"?"}}},
    {DOC(WAIT(", 'on_timeout': 'continue'")),
     {{"/steps/0/on_timeout", "has no effect without a wait.timeout"}}},
    {DOC("{'id': 'w', 'wait': {'signal': 'x', 'timeout': '1s'}, 'on_timeout': 'retry'}"),
     {{"/steps/0/on_timeout", "must be \"fail\" or \"continue\""}}},
    {DOC("{'id': 'w', 'wait': {'signal': 'x', 'timeout': '1s'}, 'on_timeout': true}"),
     {{"/steps/0/on_timeout", "must be \"fail\" or \"continue\""}}},
    {DOC(SLEEP(", 'on_timeout': 'fail'")), {{"/steps/0/on_timeout", "applies only to wait steps"}}},
    {DOC(ACT(", 'on_timeout': 'fail'")), {{"/steps/0/on_timeout", "applies only to wait steps"}}},

    /* fields that only activities have */
    {DOC(WAIT(", 'timeout': '1h'")),
     {{"/steps/0/timeout",
       "applies only to activity steps; a wait's timeout goes in wait.timeout"}}},
    {DOC(SLEEP(", 'timeout': '1h', 'schedule_to_close': '1h', 'heartbeat_timeout': '1h'")),
     {{"/steps/0/timeout", "applies only to activity steps"},
      {"/steps/0/schedule_to_close", "applies only to activity steps"},
      {"/steps/0/heartbeat_timeout", "applies only to activity steps"}}},
    {DOC(WAIT(", 'retry': {'max_attempts': 2}")),
     {{"/steps/0/retry", "applies only to activity steps"}}},
    {DOC(SLEEP(", 'compensate': {'url': 'http://h'}")),
     {{"/steps/0/compensate", "applies only to activity steps"}}},
    {DOC("{'id': 'u', 'sleep_until': '${input.at}', 'retry': {}}"),
     {{"/steps/0/retry", "applies only to activity steps"}}},
    /* When the kind is unclear, the values are still checked. */
    {DOC("{'id': 'x', 'timeout': '0s', 'retry': {'max_attempts': 0}}"),
     {{"/steps/0", "needs one of"},
      {"/steps/0/timeout", "must be greater than zero"},
      {"/steps/0/retry/max_attempts", "must be at least 1"}}},

    /* activity timeouts */
    {DOC(ACT(", 'timeout': '0s'")), {{"/steps/0/timeout", "must be greater than zero"}}},
    {DOC(ACT(", 'timeout': 0")), {{"/steps/0/timeout", "must be greater than zero"}}},
    {DOC(ACT(", 'timeout': -5")), {{"/steps/0/timeout", "must not be negative"}}},
    {DOC(ACT(", 'timeout': '5'")), {{"/steps/0/timeout", "needs a unit"}}},
    {DOC(ACT(", 'timeout': '1h30m'")), {{"/steps/0/timeout", "single unit"}}},
    {DOC(ACT(", 'schedule_to_close': 'x'")),
     {{"/steps/0/schedule_to_close", "must start with a number"}}},
    {DOC(ACT(", 'heartbeat_timeout': 1.5")), {{"/steps/0/heartbeat_timeout", "whole number"}}},
    {DOC(ACT(", 'timeout': '36501d'")), {{"/steps/0/timeout", "too long"}}},

    /* retry */
    {DOC(ACT(", 'retry': 5")), {{"/steps/0/retry", "must be an object"}}},
    {DOC(ACT(", 'retry': {'max_attempt': 3, 'jitter': true}")),
     {{"/steps/0/retry/max_attempt", "unknown field; did you mean \"max_attempts\"?"},
      {"/steps/0/retry/jitter", "unknown field"}}},
    {DOC(ACT(", 'retry': {'max_attempts': 0}")),
     {{"/steps/0/retry/max_attempts", "must be at least 1 (1 means no retry)"}}},
    {DOC(ACT(", 'retry': {'max_attempts': -1}")),
     {{"/steps/0/retry/max_attempts", "must be at least 1"}}},
    {DOC(ACT(", 'retry': {'max_attempts': '3'}")),
     {{"/steps/0/retry/max_attempts", "must be an integer"}}},
    {DOC(ACT(", 'retry': {'max_attempts': 2.0}")),
     {{"/steps/0/retry/max_attempts", "must be an integer"}}},
    {DOC(ACT(", 'retry': {'max_attempts': 2147483648}")),
     {{"/steps/0/retry/max_attempts", "must be at most 2147483647"}}},
    {DOC(ACT(", 'retry': {'initial_interval': '0s'}")),
     {{"/steps/0/retry/initial_interval", "must be greater than zero"}}},
    {DOC(ACT(", 'retry': {'initial_interval': '1.5s'}")),
     {{"/steps/0/retry/initial_interval", "use a smaller unit"}}},
    {DOC(ACT(", 'retry': {'max_interval': 0}")),
     {{"/steps/0/retry/max_interval", "must be greater than zero"}}},
    {DOC(ACT(", 'retry': {'backoff_coefficient': 0.5}")),
     {{"/steps/0/retry/backoff_coefficient", "must be at least 1.0"}}},
    {DOC(ACT(", 'retry': {'backoff_coefficient': 0}")),
     {{"/steps/0/retry/backoff_coefficient", "must be at least 1.0"}}},
    {DOC(ACT(", 'retry': {'backoff_coefficient': '2'}")),
     {{"/steps/0/retry/backoff_coefficient", "must be a number"}}},
    {DOC(ACT(", 'retry': {'initial_interval': '2s', 'max_interval': '1s'}")),
     {{"/steps/0/retry/max_interval", "max_interval (1s) must be at least initial_interval (2s)"}}},
    {DOC(ACT(", 'retry': {'max_interval': '500ms'}")),
     {{"/steps/0/retry/max_interval",
       "max_interval (500ms) must be at least initial_interval (1s)"}}},
    {"{'name': 'w', 'defaults': {'retry': {'max_interval': '5m'}}, 'steps': ["
     "{'id': 'a', 'activity': {'url': 'http://h'}, 'retry': {'initial_interval': '10m'}}]}",
     {{"/steps/0/retry/initial_interval",
       "max_interval (5m) must be at least initial_interval (10m)"}}},
    {DOC(ACT(", 'retry': {'non_retryable_errors': 'PaymentDeclined'}")),
     {{"/steps/0/retry/non_retryable_errors", "must be an array of error type strings"}}},
    {DOC(ACT(", 'retry': {'non_retryable_errors': ['', 'ok', 5, null]}")),
     {{"/steps/0/retry/non_retryable_errors/0", "must be a non-empty string"},
      {"/steps/0/retry/non_retryable_errors/2", "must be a non-empty string"},
      {"/steps/0/retry/non_retryable_errors/3", "must be a non-empty string"}}},

    /* defaults */
    {"{'name': 'w', 'defaults': [], 'steps': [{'id': 's', 'sleep': '1s'}]}",
     {{"/defaults", "must be an object"}}},
    {"{'name': 'w', 'defaults': {'retries': {}, 'timeout': '0s', 'schedule_to_close': -1,"
     " 'heartbeat_timeout': 'x'}, 'steps': [{'id': 's', 'sleep': '1s'}]}",
     {{"/defaults/retries", "unknown field; did you mean \"retry\"?"},
      {"/defaults/timeout", "must be greater than zero"},
      {"/defaults/schedule_to_close", "must not be negative"},
      {"/defaults/heartbeat_timeout", "must start with a number"}}},
    {"{'name': 'w', 'defaults': {'retry': {'max_attempts': 0, 'max_interval': '500ms'}},"
     " 'steps': [{'id': 's', 'sleep': '1s'}]}",
     {{"/defaults/retry/max_attempts", "must be at least 1"},
      {"/defaults/retry/max_interval",
       "max_interval (500ms) must be at least initial_interval (1s)"}}},
    /* A bad defaults.retry is reported once, not again for each step that inherits it. */
    {"{'name': 'w', 'defaults': {'retry': {'initial_interval': '1m', 'max_interval': '1s'}},"
     " 'steps': [" ACT("") ", {'id': 'b', 'activity': {'url': 'http://h'}, 'retry': "
                           "{'max_attempts': 2}}]}",
     {{"/defaults/retry/max_interval",
       "max_interval (1s) must be at least initial_interval (1m)"}}},
    {"{'name': 'w', 'defaults': {'on_timeout': 'fail', 'signal': 'x'}, 'steps': [{'id': 's', "
     "'sleep': '1s'}]}",
     {{"/defaults/on_timeout", "unknown field"}, {"/defaults/signal", "unknown field"}}},

    /* compensate */
    {DOC(ACT(", 'compensate': 'http://h/undo'")), {{"/steps/0/compensate", "must be an object"}}},
    {DOC(ACT(", 'compensate': {}")), {{"/steps/0/compensate", "missing required field \"url\""}}},
    {DOC(ACT(", 'compensate': {'url': 'mailto:x@y', 'heartbeat_timeout': '1s'}")),
     {{"/steps/0/compensate/url", "http:// or https://"},
      {"/steps/0/compensate/heartbeat_timeout", "unknown field"}}},
    {DOC(ACT(", 'compensate': {'url': 'http://h', 'retry': {'max_attempts': 0}, 'timeout': "
             "'0ms'}")),
     {{"/steps/0/compensate/retry/max_attempts", "must be at least 1"},
      {"/steps/0/compensate/timeout", "must be greater than zero"}}},
    {DOC(ACT(", 'compensate': {'url': 'http://h', 'retry': {'initial_interval': '1h', "
             "'max_interval': '1m'}}")),
     {{"/steps/0/compensate/retry/max_interval",
       "max_interval (1m) must be at least initial_interval (1h)"}}},
    {DOC(ACT(", 'compensate': {'url': 'http://h', 'input': '${steps.b.output}'}") "," SLEEP("")),
     {{"/steps/0/compensate/input", "${steps.b.output}: no step \"b\" in this definition"}}},
    {DOC(ACT(", 'compensate': {'url': 'http://h', 'input': '${steps.s.output}'}") "," SLEEP("")),
     {{"/steps/0/compensate/input", "${steps.s.output}: step \"s\" comes after this step; a step "
                                    "can only use the results of the steps before it"}}},

    /* references */
    {DOC("{'id': 'a', 'activity': {'url': 'http://h', 'input': '${steps.nope.output}'}}"),
     {{"/steps/0/activity/input", "${steps.nope.output}: no step \"nope\" in this definition"}}},
    {DOC("{'id': 'a', 'activity': {'url': 'http://h', 'input': {'me': '${steps.a.output}'}}}"),
     {{"/steps/0/activity/input/me",
       "${steps.a.output}: a step cannot use its own result (only its compensate can)"}}},
    {DOC("{'id': 'a', 'activity': {'url': 'http://h/${steps.a.output.id}'}}"),
     {{"/steps/0/activity/url", "${steps.a.output.id}: a step cannot use its own result"}}},
    {DOC("{'id': 'a', 'activity': {'url': 'http://h', 'input': ['${steps.b.output.x}']}},"
         " {'id': 'b', 'sleep': '1s'}"),
     {{"/steps/0/activity/input/0", "${steps.b.output.x}: step \"b\" comes after this step"}}},
    {DOC(SLEEP("") ", {'id': 'b', 'activity': {'url': 'http://h', 'input': "
                   "'${steps.s.outcome}'}}"),
     {{"/steps/1/activity/input", "only .output or .error may follow \"steps.s\""}}},
    {"{'name': 'w', 'steps': [" SLEEP("") "], 'output': {'x': '${steps.t.output}', 'y': "
                                          "'${steps.s.output}', 'z': ['${input.a', '${steps.s}']}}",
     {{"/output/x", "${steps.t.output}: no step \"t\" in this definition"},
      {"/output/z/0", "${input.a: missing \"}\""},
      {"/output/z/1", "${steps.s}: only .output or .error may follow \"steps.s\""}}},
    /* A step with an invalid id cannot be referenced. */
    {DOC("{'id': 'a.b', 'sleep': '1s'}, {'id': 'c', 'activity': {'url': 'http://h', 'input':"
         " '${steps.ab.output}'}}"),
     {{"/steps/0/id", "1 to 64"},
      {"/steps/1/activity/input", "no step \"ab\" in this definition"}}},

    /* parallel: shape */
    {DOC("{'id': 'p', 'parallel': []}"),
     {{"/steps/0/parallel", "must be an object such as {\"branches\": {"}}},
    {DOC("{'id': 'p', 'parallel': {}}"),
     {{"/steps/0/parallel", "missing required field \"branches\""}}},
    {DOC("{'id': 'p', 'parallel': {'branches': [], 'branch': 1}}"),
     {{"/steps/0/parallel/branches", "must be an object of named step lists"},
      {"/steps/0/parallel/branch", "unknown field; did you mean \"branches\"?"}}},
    {DOC("{'id': 'p', 'parallel': {'branches': {}}}"),
     {{"/steps/0/parallel/branches", "must have at least one branch"}}},
    {DOC("{'id': 'p', 'parallel': {'branches': {'a b': [" SLEEP(
         "") "], '': [{'id': 't', "
             "'sleep': '1s'}], '" L64 "a': [{'id': 'u', 'sleep': '1s'}], 'a/b': [{'id': 'v', "
             "'sleep': '1s'}]}}}"),
     {{"/steps/0/parallel/branches/a b",
       "a branch name must be 1 to 64 characters of A-Z, a-z, 0-9, _ and -"},
      {"/steps/0/parallel/branches/", "a branch name must be 1 to 64 characters"},
      {"/steps/0/parallel/branches/" L64 "a", "a branch name must be 1 to 64 characters"},
      {"/steps/0/parallel/branches/a~1b", "a branch name must be 1 to 64 characters"}}},
    {DOC("{'id': 'p', 'parallel': {'branches': {'a': [], 'b': 5, 'c': [5], 'd': {}}}}"),
     {{"/steps/0/parallel/branches/a", "must have at least one step"},
      {"/steps/0/parallel/branches/b", "must be an array of steps"},
      {"/steps/0/parallel/branches/c/0", "a step must be an object"},
      {"/steps/0/parallel/branches/d", "must be an array of steps"}}},
    {DOC(SLEEP("") ", {'id': 'p', 'parallel': {'branches': {'email': [{'id': 'e', 'activity': "
                   "{'url': 'ftp://x'}, 'retry': {'max_attempts': 0}}, {'sleep': '1s'}]}}}"),
     {{"/steps/1/parallel/branches/email/0/activity/url", "http:// or https://"},
      {"/steps/1/parallel/branches/email/0/retry/max_attempts", "must be at least 1"},
      {"/steps/1/parallel/branches/email/1", "missing required field \"id\""}}},
    {DOC("{'id': 'p', 'parallel': {'branches': {'a': [" SLEEP("") "]}}, 'for_each': {}}"),
     {{"/steps/0", "a step has exactly one kind, but this one has both parallel and for_each"}}},

    /* for_each: shape */
    {DOC("{'id': 'f', 'for_each': '${input.orders}'}"),
     {{"/steps/0/for_each", "must be an object such as {\"items\": \"${input.orders}\""}}},
    {DOC("{'id': 'f', 'for_each': {}}"),
     {{"/steps/0/for_each", "missing required field \"items\""},
      {"/steps/0/for_each", "missing required field \"steps\""}}},
    {DOC("{'id': 'f', 'for_each': {'items': 5, 'steps': [" SLEEP("") "]}}"),
     {{"/steps/0/for_each/items",
       "must be an array, or an expression such as \"${input.orders}\" that evaluates to one"}}},
    {DOC("{'id': 'f', 'for_each': {'items': 'orders', 'steps': [" SLEEP("") "]}}"),
     {{"/steps/0/for_each/items", "must be an array, or an expression"}}},
    {DOC("{'id': 'f', 'for_each': {'items': '$${input.orders}', 'steps': [" SLEEP("") "]}}"),
     {{"/steps/0/for_each/items", "must be an array, or an expression"}}},
    {DOC("{'id': 'f', 'for_each': {'items': {'a': '${input.a}'}, 'steps': [" SLEEP("") "]}}"),
     {{"/steps/0/for_each/items", "must be an array, or an expression"}}},
    {DOC("{'id': 'f', 'for_each': {'items': null, 'steps': [" SLEEP("") "]}}"),
     {{"/steps/0/for_each/items", "must be an array, or an expression"}}},
    {DOC("{'id': 'f', 'for_each': {'items': ['${inptu}'], 'steps': [" SLEEP("") "]}}"),
     {{"/steps/0/for_each/items/0", "${inptu}: unknown root \"inptu\""}}},
    {DOC("{'id': 'f', 'for_each': {'items': [], 'concurrency': 0, 'steps': [" SLEEP("") "]}}"),
     {{"/steps/0/for_each/concurrency", "must be an integer from 1 to 1000"}}},
    {DOC("{'id': 'f', 'for_each': {'items': [], 'concurrency': 1001, 'steps': [" SLEEP("") "]}}"),
     {{"/steps/0/for_each/concurrency", "must be an integer from 1 to 1000"}}},
    {DOC("{'id': 'f', 'for_each': {'items': [], 'concurrency': 2.0, 'steps': [" SLEEP("") "]}}"),
     {{"/steps/0/for_each/concurrency", "must be an integer from 1 to 1000"}}},
    {DOC("{'id': 'f', 'for_each': {'items': [], 'concurrency': '5', 'steps': [" SLEEP("") "]}}"),
     {{"/steps/0/for_each/concurrency", "must be an integer from 1 to 1000"}}},
    {DOC("{'id': 'f', 'for_each': {'items': [], 'concurrency': -1, 'steps': [" SLEEP("") "]}}"),
     {{"/steps/0/for_each/concurrency", "must be an integer from 1 to 1000"}}},
    {DOC("{'id': 'f', 'for_each': {'items': [], 'steps': []}}"),
     {{"/steps/0/for_each/steps", "must have at least one step"}}},
    {DOC("{'id': 'f', 'for_each': {'items': [], 'steps': {}}}"),
     {{"/steps/0/for_each/steps", "must be an array of steps"}}},
    {DOC("{'id': 'f', 'for_each': {'items': [], 'concurency': 5, 'step': []}}"),
     {{"/steps/0/for_each/concurency", "unknown field; did you mean \"concurrency\"?"},
      {"/steps/0/for_each/step", "unknown field; did you mean \"steps\"?"},
      {"/steps/0/for_each", "missing required field \"steps\""}}},
    {DOC("{'id': 'f', 'for_each': {'items': [], 'steps': [{'id': 'a.b', 'sleep': 'x'}]}}"),
     {{"/steps/0/for_each/steps/0/id", "1 to 64 characters"},
      {"/steps/0/for_each/steps/0/sleep", "must start with a number"}}},

    /* Fields that do not apply to flow steps. */
    {DOC("{'id': 'f', 'for_each': {'items': [], 'steps': [" SLEEP(
         "") "]}, 'timeout': '1s',"
             " 'schedule_to_close': '1m', 'heartbeat_timeout': '1s', 'retry': {}, 'compensate':"
             " {'url': 'http://h'}, 'on_timeout': 'fail'}"),
     {{"/steps/0/timeout", "applies only to activity steps"},
      {"/steps/0/schedule_to_close", "applies only to activity steps"},
      {"/steps/0/heartbeat_timeout", "applies only to activity steps"},
      {"/steps/0/retry", "applies only to activity steps"},
      {"/steps/0/compensate", "applies only to activity steps"},
      {"/steps/0/on_timeout", "applies only to wait steps"}}},
    {DOC("{'id': 'p', 'parallel': {'branches': {'a': [" SLEEP(
         "") "]}}, 'timeout': '1s',"
             " 'compensate': {'url': 'http://h'}, 'on_timeout': 'continue', 'signal': 'x'}"),
     {{"/steps/0/timeout", "applies only to activity steps"},
      {"/steps/0/compensate", "applies only to activity steps"},
      {"/steps/0/on_timeout", "applies only to wait steps"},
      {"/steps/0/signal", "unknown field"}}},

    /* Ids are unique across the whole definition. */
    {DOC(SLEEP("") ", {'id': 'f', 'for_each': {'items': [], 'steps': [" SLEEP(
         "") ", "
             "{'id': 'f', 'sleep': '1s'}]}}"),
     {{"/steps/1/for_each/steps/0/id", "duplicate step id \"s\" (also used by /steps/0)"},
      {"/steps/1/for_each/steps/1/id", "duplicate step id \"f\" (also used by /steps/1)"}}},
    {DOC("{'id': 'p', 'parallel': {'branches': {'a': [{'id': 'x', 'sleep': '1s'}]}}}, "
         "{'id': 'x', 'sleep': '1s'}"),
     {{"/steps/1/id", "duplicate step id \"x\" (also used by /steps/0/parallel/branches/a/0)"}}},

    /* References across branches, loops and containers. */
    {DOC("{'id': 'notify', 'parallel': {'branches': {"
         " 'email': [{'id': 'e1', 'activity': {'url': 'http://h', 'input': '${steps.s1.output}'}}],"
         " 'sms': [{'id': 's1', 'activity': {'url': 'http://h/${steps.e1.output.x}'}}]}}}"),
     {{"/steps/0/parallel/branches/email/0/activity/input",
       "${steps.s1.output}: step \"s1\" is in another branch of parallel \"notify\"; branches "
       "run at once"},
      {"/steps/0/parallel/branches/sms/0/activity/url",
       "${steps.e1.output.x}: step \"e1\" is in another branch of parallel \"notify\"; branches "
       "run at once"}}},
    /* ... also when both are nested deeper in their branches. */
    {DOC("{'id': 'n', 'parallel': {'branches': {"
         " 'a': [{'id': 'f', 'for_each': {'items': [], 'steps': [{'id': 'deep', 'sleep': '1s'}]}}],"
         " 'b': [{'id': 'q', 'parallel': {'branches': {'x': [{'id': 'u', 'activity': {'url': "
         "'http://h', 'input': '${steps.deep.output}'}}]}}}]}}}"),
     {{"/steps/0/parallel/branches/b/0/parallel/branches/x/0/activity/input",
       "${steps.deep.output}: step \"deep\" is in another branch of parallel \"n\"; branches "
       "run at once"}}},
    {DOC("{'id': '-bad.', 'parallel': {'branches': {"
         " 'a': [{'id': 'a1', 'sleep': '1s'}],"
         " 'b': [{'id': 'b1', 'activity': {'url': 'http://h', 'input': '${steps.a1.output}'}}]}}}"),
     {{"/steps/0/id", "1 to 64 characters"},
      {"/steps/0/parallel/branches/b/0/activity/input",
       "${steps.a1.output}: step \"a1\" is in another branch of parallel at /steps/0; branches "
       "run at once"}}},
    {DOC("{'id': 'all', 'for_each': {'items': [], 'steps': [{'id': 'charge', 'sleep': '1s'}]}},"
         " {'id': 'after', 'activity': {'url': 'http://h', 'input': '${steps.charge.output}'}}"),
     {{"/steps/1/activity/input",
       "${steps.charge.output}: step \"charge\" is inside for_each \"all\": use "
       "${steps.all.output} from outside the loop"}}},
    /* From outside, the outermost loop below the shared list is named. */
    {DOC("{'id': 'p', 'parallel': {'branches': {'a': ["
         "  {'id': 'outer', 'for_each': {'items': [], 'steps': [{'id': 'inner', 'for_each': {"
         "   'items': [], 'steps': [{'id': 'x', 'sleep': '1s'}]}}]}},"
         "  {'id': 'y', 'activity': {'url': 'http://h', 'input': '${steps.x.output}'}}]}}},"
         " {'id': 'z', 'activity': {'url': 'http://h', 'input': '${steps.inner.output}'}}"),
     {{"/steps/0/parallel/branches/a/1/activity/input",
       "${steps.x.output}: step \"x\" is inside for_each \"outer\": use ${steps.outer.output} "
       "from outside the loop"},
      {"/steps/1/activity/input",
       "${steps.inner.output}: step \"inner\" is inside for_each \"outer\": use "
       "${steps.outer.output} from outside the loop"}}},
    /* Inside a loop body, a nested loop's steps are still only seen through its output. */
    {DOC("{'id': 'o', 'for_each': {'items': [], 'steps': ["
         "  {'id': 'i', 'for_each': {'items': '${item.list}', 'steps': [{'id': 'x', 'sleep': "
         "'1s'}]}},"
         "  {'id': 'y', 'activity': {'url': 'http://h', 'input': ['${steps.x.output}', "
         "'${steps.i.output}']}}]}}"),
     {{"/steps/0/for_each/steps/1/activity/input/0",
       "${steps.x.output}: step \"x\" is inside for_each \"i\": use ${steps.i.output} from "
       "outside the loop"}}},
    {DOC("{'id': 'all', 'for_each': {'items': [], 'steps': ["
         "  {'id': 'a', 'activity': {'url': 'http://h', 'input': '${steps.b.output}'}},"
         "  {'id': 'b', 'sleep_until': '${steps.all.output}'}]}}"),
     {{"/steps/0/for_each/steps/0/activity/input",
       "${steps.b.output}: step \"b\" comes after this step; a step can only use the results of "
       "the steps before it"},
      {"/steps/0/for_each/steps/1/sleep_until",
       "${steps.all.output}: step \"all\" holds this step, so it has not completed while this "
       "step runs"}}},
    {DOC("{'id': 'n', 'parallel': {'branches': {'a': [{'id': 'a1', 'activity': {'url': "
         "'http://h', 'input': '${steps.n.output}'}}]}}}"),
     {{"/steps/0/parallel/branches/a/0/activity/input",
       "${steps.n.output}: step \"n\" holds this step"}}},
    {DOC("{'id': 'all', 'for_each': {'items': '${steps.c.output}', 'steps': [{'id': 'c', "
         "'sleep': '1s'}]}}, {'id': 'x', 'for_each': {'items': '${steps.x.output}', 'steps': "
         "[{'id': 'd', 'sleep': '1s'}]}}"),
     {{"/steps/0/for_each/items",
       "${steps.c.output}: step \"c\" is inside this step, so it has not completed when this "
       "step starts"},
      {"/steps/1/for_each/items",
       "${steps.x.output}: a step cannot use its own result (only its compensate can)"}}},
    /* A step nested in a later container comes after. */
    {DOC("{'id': 'a', 'activity': {'url': 'http://h', 'input': '${steps.deep.output}'}},"
         " {'id': 'p', 'parallel': {'branches': {'b': [{'id': 'deep', 'sleep': '1s'}]}}}"),
     {{"/steps/0/activity/input", "${steps.deep.output}: step \"deep\" comes after this step"}}},
    /* A compensate in a branch sees its own step, not the other branches. */
    {DOC("{'id': 'n', 'parallel': {'branches': {"
         " 'a': [{'id': 'a1', 'activity': {'url': 'http://h'}, 'compensate': {'url': 'http://h',"
         "   'input': ['${steps.a1.output}', '${steps.b1.output}']}}],"
         " 'b': [{'id': 'b1', 'sleep': '1s'}]}}}"),
     {{"/steps/0/parallel/branches/a/0/compensate/input/1",
       "${steps.b1.output}: step \"b1\" is in another branch of parallel \"n\""}}},
    {"{'name': 'w', 'steps': [{'id': 'all', 'for_each': {'items': [], 'steps': [{'id': 'c', "
     "'sleep': '1s'}]}}, {'id': 'p', 'parallel': {'branches': {'a': [{'id': 'f', 'for_each': "
     "{'items': [], 'steps': [{'id': 'g', 'sleep': '1s'}]}}, {'id': 'h', 'sleep': '1s'}]}}}],"
     " 'output': {'c': '${steps.c.output}', 'g': '${steps.g.output}', 'h': '${steps.h.output}',"
     " 'all': '${steps.all.output}', 'item': '${item}', 'loop': '${loops.all.index}'}}",
     {{"/output/c",
       "${steps.c.output}: step \"c\" is inside for_each \"all\": use ${steps.all.output} from "
       "outside the loop"},
      {"/output/g",
       "${steps.g.output}: step \"g\" is inside for_each \"f\": use ${steps.f.output} from "
       "outside the loop"},
      {"/output/item",
       "${item}: not inside a for_each; item and index are only available in the steps of a "
       "for_each"},
      {"/output/loop",
       "${loops.all.index}: for_each \"all\" does not enclose the definition's output"}}},

    /* item, index and loops.<id> */
    {DOC("{'id': 'a', 'activity': {'url': 'http://h/${index}', 'input': {'x': '${item.id}'}}}"),
     {{"/steps/0/activity/url",
       "${index}: not inside a for_each; item and index are only available in the steps of a "
       "for_each"},
      {"/steps/0/activity/input/x", "${item.id}: not inside a for_each"}}},
    {DOC("{'id': 'all', 'for_each': {'items': ['${item}', '${index}', '${loops.all.item}'],"
         " 'steps': [" SLEEP("") "]}}"),
     {{"/steps/0/for_each/items/0",
       "${item}: not inside a for_each; the items of for_each \"all\" are evaluated before its "
       "loop starts"},
      {"/steps/0/for_each/items/1", "${index}: not inside a for_each; the items of for_each"},
      {"/steps/0/for_each/items/2",
       "${loops.all.item}: the items of for_each \"all\" are evaluated before its loop starts"}}},
    {DOC("{'id': 'o', 'for_each': {'items': [], 'steps': [{'id': 'i', 'for_each': {"
         " 'items': '${loops.i.item}', 'steps': [" SLEEP("") "]}}]}}"),
     {{"/steps/0/for_each/steps/0/for_each/items",
       "${loops.i.item}: the items of for_each \"i\" are evaluated before its loop starts"}}},
    {DOC("{'id': 'all', 'for_each': {'items': [], 'steps': [" SLEEP(
         "") "]}},"
             " {'id': 'w', 'wait': {'signal': 'go'}},"
             " {'id': 'other', 'for_each': {'items': [], 'steps': [{'id': 'a', 'activity': {"
             "  'url': 'http://h', 'input': ['${loops.all.item}', '${loops.nope.index}', "
             "'${loops.w.item}', '${loops.other.index}', '${loops.a.item}']}}]}}"),
     {{"/steps/2/for_each/steps/0/activity/input/0",
       "${loops.all.item}: for_each \"all\" does not enclose this step"},
      {"/steps/2/for_each/steps/0/activity/input/1",
       "${loops.nope.index}: no step \"nope\" in this definition"},
      {"/steps/2/for_each/steps/0/activity/input/2",
       "${loops.w.item}: step \"w\" is not a for_each"},
      {"/steps/2/for_each/steps/0/activity/input/4",
       "${loops.a.item}: step \"a\" is not a for_each"}}},
    {DOC("{'id': 'all', 'for_each': {'items': [], 'steps': [{'id': 'x', 'activity': {"
         " 'url': 'http://h', 'input': '${loops.all.output}'}}]}}"),
     {{"/steps/0/for_each/steps/0/activity/input",
       "${loops.all.output}: only .item or .index may follow \"loops.all\""}}},

    /* set and fail */
    {DOC("{'id': 'r', 'fail': {'message': 'no type'}}"),
     {{"/steps/0/fail", "missing required field \"type\""}}},
    {DOC("{'id': 'r', 'fail': 'Rejected'}"), {{"/steps/0/fail", "must be an object"}}},
    {DOC("{'id': 'r', 'fail': {'type': '', 'why': 1}}"),
     {{"/steps/0/fail/type", "1 to 128 characters"}, {"/steps/0/fail/why", "unknown field"}}},
    {DOC("{'id': 'r', 'fail': {'type': '${input.kind}', 'message': 5}}"),
     {{"/steps/0/fail/type", "must be a literal string"},
      {"/steps/0/fail/message", "must be a string"}}},
    {DOC("{'id': 'r', 'fail': {'type': 'Rejected', 'message': 'over ${steps.later.output}'}}, "
         "{'id': 'later', 'set': 1}"),
     {{"/steps/0/fail/message", "step \"later\""}}},
    {DOC("{'id': 't', 'set': {'a': '${steps.t.output}', 'b': '${inptu.x}'}}"),
     {{"/steps/0/set/a", "cannot use its own result"}, {"/steps/0/set/b", "unknown root"}}},
    {DOC("{'id': 't', 'set': 1, 'fail': {'type': 'X'}}"),
     {{"/steps/0", "a step has exactly one kind, but this one has both set and fail"}}},
    {DOC("{'id': 't', 'set': 1, 'retry': {'max_attempts': 2}}"),
     {{"/steps/0/retry", "applies only to activity steps"}}},

    /* if */
    {DOC("{'id': 'b', 'if': '${input.big}'}"), {{"/steps/0", "missing required field \"then\""}}},
    {DOC("{'id': 'b', 'if': '${input.big}', 'else': [" SLEEP("") "]}"),
     {{"/steps/0", "missing required field \"then\""}}},
    {DOC("{'id': 'b', 'if': true, 'then': [" SLEEP("") "]}"),
     {{"/steps/0/if", "must be a condition such as \"${input.total > 1000}\""}}},
    {DOC("{'id': 'b', 'if': 'input.big', 'then': [" SLEEP("") "]}"),
     {{"/steps/0/if", "must be a condition"}}},
    {DOC("{'id': 'b', 'if': 'big: ${input.big}', 'then': [" SLEEP("") "]}"),
     {{"/steps/0/if", "must be exactly one ${...} expression, with no text around it"}}},
    {DOC("{'id': 'b', 'if': '${inptu.big}', 'then': [" SLEEP("") "]}"),
     {{"/steps/0/if", "${inptu.big}: unknown root \"inptu\""}}},
    {DOC("{'id': 'b', 'if': '${input.big', 'then': [" SLEEP("") "]}"),
     {{"/steps/0/if", "missing \"}\""}}},
    {DOC("{'id': 'b', 'if': '${steps.b.output}', 'then': [" SLEEP("") "]}"),
     {{"/steps/0/if", "a step cannot use its own result"}}},
    {DOC("{'id': 'b', 'if': '${steps.in.output}', 'then': [{'id': 'in', 'sleep': '1s'}]}"),
     {{"/steps/0/if", "step \"in\" is inside this step"}}},
    {DOC("{'id': 'b', 'if': '${item}', 'then': [" SLEEP("") "]}"),
     {{"/steps/0/if", "${item}: not inside a for_each"}}},
    {DOC("{'id': 'b', 'if': '${input.big}', 'then': []}"),
     {{"/steps/0/then", "must have at least one step"}}},
    {DOC("{'id': 'b', 'if': '${input.big}', 'then': {}, 'else': 'x'}"),
     {{"/steps/0/then", "must be an array of steps"},
      {"/steps/0/else", "must be an array of steps"}}},
    {DOC("{'id': 'b', 'if': '${input.big}', 'then': [{'id': 'x', 'sleep': 'soon'}],"
         " 'else': [{'id': 'x', 'sleep': '1s'}]}"),
     {{"/steps/0/then/0/sleep", "must start with a number"},
      {"/steps/0/else/0/id", "duplicate step id \"x\" (also used by /steps/0/then/0)"}}},
    {DOC("{'id': 'b', 'if': '${input.big}', 'then': [{'id': 't1', 'set': 1}],"
         " 'else': [{'id': 'e1', 'set': '${steps.t1.output}'}]}"),
     {{"/steps/0/else/0/set",
       "${steps.t1.output}: step \"t1\" is in the then of if \"b\", and this step in its "
       "else; only one of them runs"}}},
    {DOC("{'id': 'b', 'if': '${input.big}', 'then': [{'id': 't1', 'set': '${steps.e1.output}'}],"
         " 'else': [{'id': 'e1', 'set': 1}]}"),
     {{"/steps/0/then/0/set", "step \"e1\" is in the else of if \"b\""}}},
    {DOC("{'id': 'b', 'if': '${input.big}', 'then': [" SLEEP("") "], 'retry': {},"
                                                                 " 'on_timeout': 'fail'}"),
     {{"/steps/0/retry", "applies only to activity steps"},
      {"/steps/0/on_timeout", "applies only to wait steps"}}},
    {DOC(SLEEP(", 'then': [], 'else': []")),
     {{"/steps/0/then", "applies only to if steps"},
      {"/steps/0/else", "applies only to if steps"}}},
    {DOC("{'id': 'b', 'if': '${input.big}', 'then': [" SLEEP("") "], 'set': 1}"),
     {{"/steps/0", "a step has exactly one kind, but this one has both set and if"}}},

    /* workflow (child) */
    {DOC("{'id': 'c', 'workflow': 'shipping'}"), {{"/steps/0/workflow", "must be an object"}}},
    {DOC("{'id': 'c', 'workflow': {'input': 1}}"),
     {{"/steps/0/workflow", "missing required field \"name\""}}},
    {DOC("{'id': 'c', 'workflow': {'name': '${input.wf}', 'version': 0, 'inputs': 1}}"),
     {{"/steps/0/workflow/name", "must be a workflow name"},
      {"/steps/0/workflow/version", "must be a positive integer"},
      {"/steps/0/workflow/inputs", "unknown field; did you mean \"input\"?"}}},
    {DOC("{'id': 'c', 'workflow': {'name': '..', 'version': '2'}}"),
     {{"/steps/0/workflow/name", "must be a workflow name"},
      {"/steps/0/workflow/version", "must be a positive integer"}}},
    {DOC("{'id': 'c', 'workflow': {'name': 'ship', 'input': {'x': '${steps.c.output}', 'y': "
         "'${inptu}'}}}"),
     {{"/steps/0/workflow/input/x", "a step cannot use its own result"},
      {"/steps/0/workflow/input/y", "unknown root"}}},
    {DOC("{'id': 'c', 'workflow': {'name': 'ship'}, 'retry': {}, 'timeout': '1s'}"),
     {{"/steps/0/retry", "applies only to activity steps"},
      {"/steps/0/timeout", "applies only to activity steps"}}},

    /* Every error at once, the one from the brief among them. */
    {"{'name': 'bad name', 'steps': [" SLEEP(
         "") ", {'id': 's', 'wait': {}}, "
             "{'id': 'c', 'activity': {'url': 'ftp://x'}, 'retry': {'max_attempts': 0}}],"
             " 'outputs': {}}",
     {{"/outputs", "unknown field; did you mean \"output\"?"},
      {"/name", "1 to 128 characters"},
      {"/steps/1/id", "duplicate step id \"s\""},
      {"/steps/1/wait", "missing required field \"signal\""},
      {"/steps/2/activity/url", "http:// or https://"},
      {"/steps/2/retry/max_attempts", "must be at least 1"}}},
};

static void test_invalid(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
        json_t *doc = Jq(invalid[i].doc);
        struct defn *d = (struct defn *)1;
        json_t *errors = NULL;
        int rc = defn_parse(doc, &d, &errors);
        char *dump = errors ? json_dumps(errors, JSON_INDENT(1)) : NULL;
        if (rc != -1 || d != NULL || !json_is_array(errors))
            fail_msg("%s: accepted", invalid[i].doc);
        size_t want_n = 0;
        while (want_n < 8 && invalid[i].errors[want_n].pointer)
            want_n++;
        if (json_array_size(errors) != want_n)
            fail_msg("%s:\n%zu errors, want %zu: %s", invalid[i].doc, json_array_size(errors),
                     want_n, dump);
        bool used[8] = {false};
        for (size_t w = 0; w < want_n; w++) {
            bool found = false;
            for (size_t k = 0; k < json_array_size(errors) && !found; k++) {
                const json_t *e = json_array_get(errors, k);
                const char *pointer = json_string_value(json_object_get(e, "pointer"));
                const char *message = json_string_value(json_object_get(e, "message"));
                assert_non_null(pointer);
                assert_non_null(message);
                assert_int_equal(json_object_size(e), 2);
                if (!used[k] && strcmp(pointer, invalid[i].errors[w].pointer) == 0 &&
                    strstr(message, invalid[i].errors[w].message)) {
                    used[k] = found = true;
                }
            }
            if (!found)
                fail_msg("%s:\nno error at \"%s\" saying \"%s\"; got %s", invalid[i].doc,
                         invalid[i].errors[w].pointer, invalid[i].errors[w].message, dump);
        }
        free(dump);
        json_decref(errors);
        json_decref(doc);
    }
}

/* Every message is a sentence for a person: no empty message, and valid JSON all the way. */
static void test_error_array_shape(void **state)
{
    (void)state;
    json_t *doc = Jq("{'name': '', 'x': 1, 'steps': [{'id': 'a', 'activity': {'url': "
                     "'http://h', 'input': '${input.\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9"
                     "\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9"
                     "\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9"
                     "\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9'}}]}");
    struct defn *d;
    json_t *errors;
    assert_int_equal(defn_parse(doc, &d, &errors), -1);
    assert_int_equal(json_array_size(errors), 3);
    for (size_t i = 0; i < json_array_size(errors); i++) {
        const char *m = json_string_value(json_object_get(json_array_get(errors, i), "message"));
        assert_non_null(m);
        assert_true(strlen(m) > 0);
    }
    char *text = json_dumps(errors, 0);
    assert_non_null(text);
    json_t *back = json_loads(text, 0, NULL);
    assert_non_null(back);
    json_decref(back);
    free(text);
    json_decref(errors);
    json_decref(doc);
}

/* ---- retry arithmetic --------------------------------------------------------------------- */

static void test_retry_interval(void **state)
{
    (void)state;
    struct defn_retry r = {5, 1000, 2.0, 100000, NULL, 0};
    static const int64_t want[] = {1000, 2000, 4000, 8000, 16000, 32000, 64000, 100000, 100000};
    for (int a = 1; a <= 9; a++)
        assert_int_equal(defn_retry_interval_ms(&r, a), want[a - 1]);
    assert_int_equal(defn_retry_interval_ms(&r, 0), 1000);
    assert_int_equal(defn_retry_interval_ms(&r, -3), 1000);
    assert_int_equal(defn_retry_interval_ms(&r, 64), 100000);
    assert_int_equal(defn_retry_interval_ms(&r, 1100), 100000); /* 2^1099 is inf as a double */
    assert_int_equal(defn_retry_interval_ms(&r, INT_MAX), 100000);

    struct defn_retry flat = {5, 1500, 1.0, 150000, NULL, 0};
    for (int a = 1; a <= 50; a++)
        assert_int_equal(defn_retry_interval_ms(&flat, a), 1500);
    assert_int_equal(defn_retry_interval_ms(&flat, INT_MAX), 1500);

    struct defn_retry half = {5, 1000, 1.5, 10000, NULL, 0};
    static const int64_t want_half[] = {1000, 1500, 2250, 3375, 5062, 7593, 10000, 10000};
    for (int a = 1; a <= 8; a++)
        assert_int_equal(defn_retry_interval_ms(&half, a), want_half[a - 1]);

    /* At the edges of int64: saturates at max_interval, never wraps. */
    struct defn_retry huge = {5, DAY * 36500, 1e300, DAY * 36500, NULL, 0};
    assert_int_equal(defn_retry_interval_ms(&huge, 1), DAY * 36500);
    assert_int_equal(defn_retry_interval_ms(&huge, 3), DAY * 36500);
    struct defn_retry top = {5, 1, 10.0, INT64_MAX, NULL, 0};
    assert_int_equal(defn_retry_interval_ms(&top, 1), 1);
    assert_int_equal(defn_retry_interval_ms(&top, 4), 1000);
    assert_int_equal(defn_retry_interval_ms(&top, 400), INT64_MAX);
    assert_true(defn_retry_interval_ms(&top, 19) > 0);

    assert_int_equal(defn_retry_interval_ms(NULL, 1), 0);
}

/* The policies parse_ok produces feed straight into the arithmetic. */
static void test_retry_interval_from_definition(void **state)
{
    (void)state;
    struct defn *d = parse_ok(CONTRACT_EXAMPLE);
    const struct defn_retry *r = &d->steps[0].activity.retry;
    assert_int_equal(defn_retry_interval_ms(r, 1), 1000);
    assert_int_equal(defn_retry_interval_ms(r, 4), 8000);
    assert_int_equal(defn_retry_interval_ms(r, 9), 256000);
    assert_int_equal(defn_retry_interval_ms(r, 10), 300000); /* max_interval 5m */
    defn_free(d);
}

static void test_non_retryable(void **state)
{
    (void)state;
    struct defn *d = parse_ok(CONTRACT_EXAMPLE);
    const struct defn_retry *r = &d->steps[0].activity.retry;
    assert_true(defn_retry_is_non_retryable(r, "PaymentDeclined"));
    assert_false(defn_retry_is_non_retryable(r, "paymentdeclined"));
    assert_false(defn_retry_is_non_retryable(r, "Payment"));
    assert_false(defn_retry_is_non_retryable(r, "timeout"));
    assert_false(defn_retry_is_non_retryable(r, ""));
    assert_false(defn_retry_is_non_retryable(r, NULL));
    assert_false(defn_retry_is_non_retryable(NULL, "PaymentDeclined"));
    defn_free(d);
    d = parse_ok(DOC(ACT("")));
    assert_false(defn_retry_is_non_retryable(&d->steps[0].activity.retry, "PaymentDeclined"));
    defn_free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_contract_example),
        cmocka_unit_test(test_minimal),
        cmocka_unit_test(test_builtin_defaults),
        cmocka_unit_test(test_retry_merge),
        cmocka_unit_test(test_retry_merge_max_from_defaults),
        cmocka_unit_test(test_timeouts),
        cmocka_unit_test(test_compensate_defaults),
        cmocka_unit_test(test_wait_and_sleep_kinds),
        cmocka_unit_test(test_set_and_fail_kinds),
        cmocka_unit_test(test_wait_for_any),
        cmocka_unit_test(test_if_kind),
        cmocka_unit_test(test_workflow_kind),
        cmocka_unit_test(test_valid_names),
        cmocka_unit_test(test_valid_urls),
        cmocka_unit_test(test_valid_references),
        cmocka_unit_test(test_many_steps),
        cmocka_unit_test(test_step_index),
        cmocka_unit_test(test_document_not_kept),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_invalid),
        cmocka_unit_test(test_error_array_shape),
        cmocka_unit_test(test_retry_interval),
        cmocka_unit_test(test_retry_interval_from_definition),
        cmocka_unit_test(test_non_retryable),
        cmocka_unit_test(test_flow_steps),
        cmocka_unit_test(test_nested_three_levels),
        cmocka_unit_test(test_valid_flow_references),
        cmocka_unit_test(test_nesting_depth),
        cmocka_unit_test(test_nested_destinations),
        cmocka_unit_test(test_nested_duplicates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
