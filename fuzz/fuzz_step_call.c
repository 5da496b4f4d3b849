/* Fuzzes the body of a step call (POST /v1/executions/{id}/steps/{key}) as keeld reads it: the
 * request body parsed as http_body_json() parses it, then defn_parse_step_call. Beyond "no
 * crash, no leak, no UB" it checks the contract of defn.h: every error carries a JSON Pointer
 * that exists in the body; an accepted body has exactly one kind (defn_step_call_kind names
 * it), is data and never a template (each compiled template evaluates, in an empty context, to
 * the very value the body holds), and makes an instance the interpreter can run
 * (engine_call_new). */
#include "fuzz.h"

#include "defn/defn.h"
#include "defn/expr.h"
#include "engine/engine.h"

#include <string.h>

static void check_errors(const json_t *doc, const json_t *errors)
{
    FUZZ_CHECK(json_is_array(errors));
    FUZZ_CHECK(json_array_size(errors) > 0);
    size_t i;
    const json_t *e;
    json_array_foreach(errors, i, e)
    {
        const char *ptr = json_string_value(json_object_get(e, "pointer"));
        const char *msg = json_string_value(json_object_get(e, "message"));
        FUZZ_CHECK(ptr != NULL);
        FUZZ_CHECK(msg != NULL && msg[0] != '\0');
        if (!fuzz_pointer_get(doc, ptr)) {
            fprintf(stderr, "error pointer \"%s\" (%s) is not in the body\n", ptr, msg);
            FUZZ_CHECK(!"every error pointer exists in the body");
        }
    }
}

/* t evaluates to exactly want: nothing in a step call's body is an expression. */
static void check_literal(const struct expr_template *t, const json_t *want)
{
    json_t *ctx = json_pack("{s:{}, s:{}}", "input", "steps");
    json_t *v = expr_template_eval(t, ctx, SIZE_MAX, NULL);
    FUZZ_CHECK(v != NULL);
    FUZZ_CHECK(json_equal(v, want));
    json_decref(v);
    json_decref(ctx);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *body = json_loadb((const char *)data, size, FUZZ_JSON_BODY_FLAGS, NULL);
    if (!body)
        return 0;
    struct defn_step *st = NULL;
    json_t *errors = NULL;
    int rc = defn_parse_step_call(body, "key", &st, &errors);
    if (rc != 0) {
        FUZZ_CHECK(st == NULL);
        check_errors(body, errors);
        json_decref(errors);
        json_decref(body);
        return 0;
    }
    FUZZ_CHECK(errors == NULL && st != NULL);
    FUZZ_CHECK(strcmp(st->id, "key") == 0);
    const char *kind = defn_step_call_kind(body);
    FUZZ_CHECK(kind != NULL);
    switch (st->kind) {
    case DEFN_STEP_SET:
        FUZZ_CHECK(strcmp(kind, "output") == 0);
        check_literal(st->set_expr, json_object_get(body, "output"));
        break;
    case DEFN_STEP_ACTIVITY: {
        FUZZ_CHECK(strcmp(kind, "activity") == 0);
        const json_t *a = json_object_get(body, "activity");
        check_literal(st->activity.url_expr, json_object_get(a, "url"));
        const json_t *input = json_object_get(a, "input");
        json_t *null = json_null();
        check_literal(st->activity.input_expr, input ? input : null);
        FUZZ_CHECK(st->activity.timeout_ms > 0);
        FUZZ_CHECK(st->activity.retry.max_attempts >= 1);
        FUZZ_CHECK((st->compensate != NULL) == (json_object_get(body, "compensate") != NULL));
        break;
    }
    case DEFN_STEP_SLEEP:
        FUZZ_CHECK(strcmp(kind, "sleep") == 0);
        FUZZ_CHECK(st->sleep_ms >= 0);
        break;
    case DEFN_STEP_SLEEP_UNTIL:
        FUZZ_CHECK(strcmp(kind, "sleep_until") == 0);
        check_literal(st->sleep_until_expr, json_object_get(body, "sleep_until"));
        break;
    case DEFN_STEP_WAIT:
        FUZZ_CHECK(strcmp(kind, "wait") == 0);
        FUZZ_CHECK((st->signal != NULL) != (st->n_any > 0));
        break;
    default:
        FUZZ_CHECK(!"a step call is output, activity, sleep, sleep_until or wait");
    }
    defn_step_free(st);
    struct engine_call *c = engine_call_new("key", body);
    FUZZ_CHECK(c != NULL);
    engine_call_free(c);
    json_decref(body);
    return 0;
}
