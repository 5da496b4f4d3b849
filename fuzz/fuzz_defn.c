/* Fuzzes the definition language as POST /v1/workflows runs it: a request body parsed as
 * http_body_json() parses it, defn_parse (validation and expression checks), then the canonical
 * JSON and its digest. Beyond "no crash, no leak, no UB" it checks the contracts of defn.h and
 * canon.h: every error carries a JSON Pointer that exists in the document, an accepted
 * definition is consistent, and the canonical text parses back to the same canonical text and
 * to a definition that is accepted again. */
#include "fuzz.h"

#include "defn/canon.h"
#include "defn/defn.h"
#include "defn/expr.h"

#include <limits.h>
#include <string.h>

/* Every error is {"pointer": string, "message": non-empty string}, and the pointer names a
 * value of the document ("A missing required field is reported at the pointer of the object
 * that lacks it"). */
static void check_errors(const json_t *doc, const json_t *errors)
{
    FUZZ_CHECK(json_is_array(errors));
    FUZZ_CHECK(json_array_size(errors) > 0);
    size_t i;
    const json_t *e;
    json_array_foreach(errors, i, e)
    {
        FUZZ_CHECK(json_is_object(e));
        const char *ptr = json_string_value(json_object_get(e, "pointer"));
        const char *msg = json_string_value(json_object_get(e, "message"));
        FUZZ_CHECK(ptr != NULL);
        FUZZ_CHECK(msg != NULL && msg[0] != '\0');
        if (!fuzz_pointer_get(doc, ptr)) {
            fprintf(stderr, "error pointer \"%s\" (%s) is not in the document\n", ptr, msg);
            FUZZ_CHECK(!"every error pointer exists in the document");
        }
    }
}

static void check_retry(const struct defn_retry *r)
{
    FUZZ_CHECK(r->max_attempts >= 1);
    FUZZ_CHECK(r->initial_interval_ms > 0);
    FUZZ_CHECK(r->backoff_coefficient >= 1.0);
    FUZZ_CHECK(r->max_interval_ms >= r->initial_interval_ms);
    static const int attempts[] = {INT_MIN, -1, 0, 1, 2, 3, 10, 64, 1000, 1 << 20, INT_MAX};
    int64_t prev = 0;
    for (size_t i = 0; i < sizeof attempts / sizeof attempts[0]; i++) {
        int64_t ms = defn_retry_interval_ms(r, attempts[i]);
        FUZZ_CHECK(ms >= r->initial_interval_ms && ms <= r->max_interval_ms);
        FUZZ_CHECK(ms >= prev); /* backoff never shrinks */
        prev = ms;
    }
    for (size_t i = 0; i < r->n_non_retryable_errors; i++)
        FUZZ_CHECK(defn_retry_is_non_retryable(r, r->non_retryable_errors[i]));
}

static void check_activity(const struct defn_activity *a)
{
    FUZZ_CHECK(json_is_string(a->url));
    FUZZ_CHECK(a->input != NULL);
    FUZZ_CHECK(a->timeout_ms > 0);
    FUZZ_CHECK(a->schedule_to_close_ms >= 0);
    FUZZ_CHECK(a->heartbeat_timeout_ms >= 0);
    check_retry(&a->retry);
}

static void check_steps(const struct defn *d, const struct defn_step *steps, size_t n, int depth);

/* One step at depth (1 for the definition's own) and everything it holds. */
static void check_step(const struct defn *d, const struct defn_step *st, int depth)
{
    FUZZ_CHECK(depth <= DEFN_MAX_STEP_DEPTH);
    FUZZ_CHECK(st->id != NULL);
    FUZZ_CHECK(defn_find_step(d, st->id) == st); /* ids are unique at any depth */
    if (st->kind != DEFN_STEP_PARALLEL && st->kind != DEFN_STEP_IF)
        FUZZ_CHECK(st->n_branches == 0 && st->branches == NULL);
    if (st->kind != DEFN_STEP_IF)
        FUZZ_CHECK(st->cond == NULL && st->cond_expr == NULL);
    if (st->kind != DEFN_STEP_WORKFLOW)
        FUZZ_CHECK(st->child_workflow == NULL && st->child_input == NULL);
    if (st->kind != DEFN_STEP_FOR_EACH)
        FUZZ_CHECK(st->n_children == 0 && st->children == NULL && st->items == NULL);
    switch (st->kind) {
    case DEFN_STEP_ACTIVITY:
        check_activity(&st->activity);
        if (st->compensate)
            check_activity(st->compensate);
        break;
    case DEFN_STEP_SLEEP:
        FUZZ_CHECK(st->sleep_ms >= 0);
        FUZZ_CHECK(!st->compensate);
        break;
    case DEFN_STEP_SLEEP_UNTIL:
        FUZZ_CHECK(json_is_string(st->sleep_until));
        FUZZ_CHECK(!st->compensate);
        break;
    case DEFN_STEP_WAIT:
        /* One signal, or any of 1..DEFN_WAIT_MAX_ANY distinct ones. */
        FUZZ_CHECK((st->signal != NULL) != (st->n_any > 0));
        FUZZ_CHECK(!st->signal || st->signal[0] != '\0');
        FUZZ_CHECK(st->n_any <= DEFN_WAIT_MAX_ANY && (st->n_any == 0) == (st->any == NULL));
        for (size_t k = 0; k < st->n_any; k++) {
            FUZZ_CHECK(st->any[k] && st->any[k][0] != '\0');
            for (size_t m = 0; m < k; m++)
                FUZZ_CHECK(strcmp(st->any[m], st->any[k]) != 0);
        }
        FUZZ_CHECK(st->wait_timeout_ms >= 0);
        FUZZ_CHECK(!st->compensate);
        break;
    case DEFN_STEP_PARALLEL:
        FUZZ_CHECK(!st->compensate);
        FUZZ_CHECK(st->n_branches >= 1 && st->branches != NULL);
        for (size_t b = 0; b < st->n_branches; b++) {
            const struct defn_branch *br = &st->branches[b];
            size_t len = strlen(br->name);
            FUZZ_CHECK(len >= 1 && len <= 64 &&
                       strspn(br->name, "abcdefghijklmnopqrstuvwxyz"
                                        "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                        "0123456789_-") == len);
            if (b > 0)
                FUZZ_CHECK(strcmp(st->branches[b - 1].name, br->name) < 0); /* sorted */
            check_steps(d, br->steps, br->n_steps, depth + 1);
        }
        break;
    case DEFN_STEP_FOR_EACH:
        FUZZ_CHECK(!st->compensate);
        FUZZ_CHECK(st->items != NULL && st->items_expr != NULL);
        FUZZ_CHECK(json_is_array(st->items) || json_is_string(st->items));
        FUZZ_CHECK(st->concurrency >= 1 && st->concurrency <= DEFN_FOR_EACH_MAX_CONCURRENCY);
        check_steps(d, st->children, st->n_children, depth + 1);
        break;
    case DEFN_STEP_SET:
        FUZZ_CHECK(st->set != NULL && st->set_expr != NULL);
        FUZZ_CHECK(!st->compensate);
        break;
    case DEFN_STEP_FAIL: {
        FUZZ_CHECK(json_is_object(st->fail) && st->fail_expr != NULL);
        const json_t *type = json_object_get(st->fail, "type");
        FUZZ_CHECK(json_is_string(type) && json_string_length(type) >= 1 &&
                   json_string_length(type) <= 128);
        FUZZ_CHECK(!expr_has_expression(json_string_value(type), json_string_length(type)));
        const json_t *message = json_object_get(st->fail, "message");
        FUZZ_CHECK(!message || json_is_string(message));
        FUZZ_CHECK(!st->compensate);
        break;
    }
    case DEFN_STEP_IF:
        /* then, and else when given; the condition one whole expression. */
        FUZZ_CHECK(!st->compensate);
        FUZZ_CHECK(json_is_string(st->cond) && expr_template_is_value(st->cond_expr));
        FUZZ_CHECK(st->n_branches == 1 || st->n_branches == 2);
        FUZZ_CHECK(!strcmp(st->branches[0].name, "then"));
        FUZZ_CHECK(st->n_branches == 1 || !strcmp(st->branches[1].name, "else"));
        for (size_t b = 0; b < st->n_branches; b++)
            check_steps(d, st->branches[b].steps, st->branches[b].n_steps, depth + 1);
        break;
    case DEFN_STEP_WORKFLOW: {
        FUZZ_CHECK(!st->compensate);
        FUZZ_CHECK(st->child_workflow != NULL && st->child_input != NULL &&
                   st->child_input_expr != NULL);
        size_t len = strlen(st->child_workflow);
        FUZZ_CHECK(len >= 1 && len <= 128);
        FUZZ_CHECK(st->child_version >= 0);
        break;
    }
    default:
        FUZZ_CHECK(!"a step kind of enum defn_step_kind");
    }
}

static void check_steps(const struct defn *d, const struct defn_step *steps, size_t n, int depth)
{
    FUZZ_CHECK(n >= 1 && steps != NULL);
    for (size_t i = 0; i < n; i++)
        check_step(d, &steps[i], depth);
}

static void check_defn(const struct defn *d)
{
    FUZZ_CHECK(d->name != NULL && d->name[0] != '\0');
    check_steps(d, d->steps, d->n_steps, 1);
    for (size_t i = 0; i < d->n_steps; i++)
        FUZZ_CHECK(defn_step_index(d, d->steps[i].id) == (int)i); /* the top level only */
    FUZZ_CHECK(defn_step_index(d, "") == -1);
    FUZZ_CHECK(defn_find_step(d, "") == NULL);
}

/* The canonical text is compact JSON that parses back to a document with the same canonical
 * text; returns that document (a new reference). */
static json_t *check_canonical(const char *canonical)
{
    FUZZ_CHECK(canonical != NULL);
    char digest[65];
    defn_digest_hex(canonical, digest);
    FUZZ_CHECK(strlen(digest) == 64);
    json_error_t err;
    json_t *again = json_loads(canonical, FUZZ_JSON_BODY_FLAGS, &err);
    if (!again)
        fprintf(stderr, "canonical text does not parse: %s\n%s\n", err.text, canonical);
    FUZZ_CHECK(again != NULL);
    char *canonical2 = defn_canonical_json(again);
    FUZZ_CHECK(canonical2 != NULL);
    if (strcmp(canonical, canonical2) != 0)
        fprintf(stderr, "canonical text is not stable:\n%s\n%s\n", canonical, canonical2);
    FUZZ_CHECK(strcmp(canonical, canonical2) == 0);
    free(canonical2);
    return again;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *doc = json_loadb((const char *)data, size, FUZZ_JSON_BODY_FLAGS, NULL);
    if (!doc)
        return 0; /* keeld answers 400 malformed-json before the definition code runs */

    struct defn *d = (struct defn *)1;
    json_t *errors = (json_t *)1;
    int rc = defn_parse(doc, &d, &errors);
    char *canonical = defn_canonical_json(doc);
    json_t *again = check_canonical(canonical);

    if (rc == 0) {
        FUZZ_CHECK(d != NULL && errors == NULL);
        check_defn(d);
        /* The stored text is the canonical one: it must register again, as the same workflow. */
        struct defn *d2 = NULL;
        json_t *errors2 = NULL;
        FUZZ_CHECK(defn_parse(again, &d2, &errors2) == 0);
        FUZZ_CHECK(strcmp(d->name, d2->name) == 0 && d->n_steps == d2->n_steps);
        defn_free(d2);
        defn_free(d);
    } else {
        FUZZ_CHECK(rc == -1);
        FUZZ_CHECK(d == NULL);
        check_errors(doc, errors);
        json_decref(errors);
    }

    json_decref(again);
    free(canonical);
    json_decref(doc);
    return 0;
}
