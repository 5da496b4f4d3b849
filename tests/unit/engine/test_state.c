/* The state's JSON: its exact form, exact round trips, and the rejection of every malformed or
 * inconsistent state. (Every state the interpreter produces in the other tests is also round-
 * tripped by the harness after each input.) */
#include "harness.h"

/* Steps: 0 an activity, 1 a sleep, 2 a wait. */
static const char *const DEFN =
    "{\"name\": \"w\", \"steps\": [{\"id\": \"a\", \"activity\": {\"url\": \"http://x\"}},"
    " {\"id\": \"b\", \"sleep\": \"1s\"}, {\"id\": \"c\", \"wait\": {\"signal\": \"s\"}}]}";

#define P "{\"status\": \"pending\"}"

/* Each is accepted and written back exactly as given. */
static const char *const valid[] = {
    "{\"v\":1,\"status\":\"running\",\"current\":0,\"completions\":0,\"steps\":[" P "," P "," P
    "]}",
    "{\"v\":1,\"status\":\"running\",\"current\":0,\"completions\":0,\"steps\":[{\"status\":"
    "\"scheduled\",\"attempt\":1,\"scheduled_at\":100}," P "," P "]}",
    "{\"v\":1,\"status\":\"running\",\"current\":0,\"completions\":0,\"steps\":[{\"status\":"
    "\"running\",\"attempt\":3,\"scheduled_at\":100,\"started_at\":101}," P "," P "]}",
    "{\"v\":1,\"status\":\"running\",\"current\":1,\"completions\":1,\"steps\":[{\"status\":"
    "\"completed\",\"attempt\":1,\"scheduled_at\":1,\"started_at\":2,\"completed_at\":3,"
    "\"order\":1},{\"status\":\"scheduled\",\"scheduled_at\":3,\"started_at\":3}," P "]}",
    "{\"v\":1,\"status\":\"running\",\"current\":2,\"completions\":2,\"steps\":[{\"status\":"
    "\"completed\",\"attempt\":1,\"order\":1},{\"status\":\"completed\",\"order\":2},{\"status\":"
    "\"waiting\",\"scheduled_at\":5,\"started_at\":5}]}",
    "{\"v\":1,\"status\":\"completed\",\"current\":3,\"completions\":3,\"steps\":[{\"status\":"
    "\"completed\",\"attempt\":2,\"order\":1},{\"status\":\"completed\",\"order\":2},{\"status\":"
    "\"completed\",\"order\":3}]}",
    "{\"v\":1,\"status\":\"failed\",\"current\":0,\"completions\":0,\"steps\":[{\"status\":"
    "\"failed\",\"attempt\":5,\"scheduled_at\":1,\"started_at\":2,\"completed_at\":9},{\"status\":"
    "\"skipped\"},{\"status\":\"skipped\"}]}",
    "{\"v\":1,\"status\":\"failed\",\"current\":2,\"completions\":2,\"steps\":[{\"status\":"
    "\"completed\",\"attempt\":1,\"order\":2},{\"status\":\"completed\",\"order\":1},{\"status\":"
    "\"failed\",\"completed_at\":4}]}",
    /* The output template failed: every step completed, current is past the end. */
    "{\"v\":1,\"status\":\"failed\",\"current\":3,\"completions\":3,\"steps\":[{\"status\":"
    "\"completed\",\"attempt\":1,\"order\":1},{\"status\":\"completed\",\"order\":2},{\"status\":"
    "\"completed\",\"order\":3}]}",
    /* Statuses of later versions are read with the per-step checks only. */
    "{\"v\":1,\"status\":\"cancelled\",\"current\":1,\"completions\":1,\"steps\":[{\"status\":"
    "\"compensated\",\"attempt\":1,\"order\":1},{\"status\":\"skipped\"},{\"status\":"
    "\"skipped\"}]}",
    "{\"v\":1,\"status\":\"terminated\",\"current\":0,\"completions\":0,\"steps\":[{\"status\":"
    "\"failed\",\"attempt\":1}," P "," P "]}",
    /* Times are exact beyond a double's 53 bits. */
    "{\"v\":1,\"status\":\"running\",\"current\":0,\"completions\":0,\"steps\":[{\"status\":"
    "\"scheduled\",\"attempt\":1,\"scheduled_at\":9007199254740993}," P "," P "]}",
};

static void valid_states_round_trip_exactly(void **state)
{
    (void)state;
    struct defn *d = parse_defn(DEFN);
    for (size_t c = 0; c < sizeof valid / sizeof valid[0]; c++) {
        print_message("case %zu\n", c);
        json_t *j = parse_json(valid[c]);
        struct engine_state st;
        assert_int_equal(engine_state_from_json(j, d, &st), 0);
        json_t *back = engine_state_to_json(&st);
        char *text = json_dumps(back, JSON_COMPACT);
        json_t *expected = parse_json(valid[c]);
        char *expected_text = json_dumps(expected, JSON_COMPACT);
        assert_string_equal(text, expected_text);
        free(text);
        free(expected_text);
        json_decref(expected);
        json_decref(back);
        json_decref(j);
        engine_state_free(&st);
    }
    defn_free(d);
}

static void fresh_state_text(void **state)
{
    (void)state;
    struct defn *d = parse_defn(DEFN);
    struct engine_state st;
    engine_state_init(&st, d);
    assert_int_equal(st.n_steps, 3);
    assert_int_equal(st.current, 0);
    assert_int_equal(st.status, ENGINE_EXEC_RUNNING);
    json_t *j = engine_state_to_json(&st);
    char *text = json_dumps(j, JSON_COMPACT);
    assert_string_equal(text, "{\"v\":1,\"status\":\"running\",\"current\":0,\"completions\":0,"
                              "\"steps\":[{\"status\":\"pending\"},{\"status\":\"pending\"},"
                              "{\"status\":\"pending\"}]}");
    free(text);
    json_decref(j);
    engine_state_free(&st);
    assert_null(st.steps);
    engine_state_free(&st); /* twice is harmless */
    engine_state_free(NULL);
    assert_null(engine_state_to_json(NULL));
    defn_free(d);
}

/* Explicit zeros are read like absent members, and written back without them. */
static void explicit_zeros_are_accepted(void **state)
{
    (void)state;
    struct defn *d = parse_defn(DEFN);
    json_t *j = parse_json("{\"v\":1,\"status\":\"running\",\"current\":0,\"completions\":0,"
                           "\"steps\":[{\"status\":\"pending\",\"attempt\":0,\"scheduled_at\":0,"
                           "\"started_at\":0,\"completed_at\":0,\"order\":0}," P "," P "]}");
    struct engine_state st;
    assert_int_equal(engine_state_from_json(j, d, &st), 0);
    json_t *back = engine_state_to_json(&st);
    expect_json(back, valid[0], "states");
    json_decref(back);
    json_decref(j);
    engine_state_free(&st);
    defn_free(d);
}

/* Each is refused. */
static const struct {
    const char *why;
    const char *json;
} invalid[] = {
    {"null", "null"},
    {"an array", "[]"},
    {"a string", "\"state\""},
    {"no version",
     "{\"status\":\"running\",\"current\":0,\"completions\":0,\"steps\":[" P "," P "," P "]}"},
    {"version 2", "{\"v\":2,\"status\":\"running\",\"current\":0,\"completions\":0,\"steps\":[" P
                  "," P "," P "]}"},
    {"version as text", "{\"v\":\"1\",\"status\":\"running\",\"current\":0,\"completions\":0,"
                        "\"steps\":[" P "," P "," P "]}"},
    {"version as a real", "{\"v\":1.0,\"status\":\"running\",\"current\":0,\"completions\":0,"
                          "\"steps\":[" P "," P "," P "]}"},
    {"unknown member", "{\"v\":1,\"status\":\"running\",\"current\":0,\"completions\":0,\"x\":1,"
                       "\"steps\":[" P "," P "," P "]}"},
    {"unknown status",
     "{\"v\":1,\"status\":\"done\",\"current\":0,\"completions\":0,\"steps\":[" P "," P "," P "]}"},
    {"status in capitals", "{\"v\":1,\"status\":\"RUNNING\",\"current\":0,\"completions\":0,"
                           "\"steps\":[" P "," P "," P "]}"},
    {"no status", "{\"v\":1,\"current\":0,\"completions\":0,\"steps\":[" P "," P "," P "]}"},
    {"status as a number",
     "{\"v\":1,\"status\":0,\"current\":0,\"completions\":0,\"steps\":[" P "," P "," P "]}"},
    {"no current",
     "{\"v\":1,\"status\":\"running\",\"completions\":0,\"steps\":[" P "," P "," P "]}"},
    {"negative current", "{\"v\":1,\"status\":\"running\",\"current\":-1,\"completions\":0,"
                         "\"steps\":[" P "," P "," P "]}"},
    {"current past the end", "{\"v\":1,\"status\":\"completed\",\"current\":4,\"completions\":3,"
                             "\"steps\":[{\"status\":\"completed\",\"order\":1},{\"status\":"
                             "\"completed\",\"order\":2},{\"status\":\"completed\",\"order\":3}]}"},
    {"current as text", "{\"v\":1,\"status\":\"running\",\"current\":\"0\",\"completions\":0,"
                        "\"steps\":[" P "," P "," P "]}"},
    {"no completions",
     "{\"v\":1,\"status\":\"running\",\"current\":0,\"steps\":[" P "," P "," P "]}"},
    {"negative completions", "{\"v\":1,\"status\":\"running\",\"current\":0,\"completions\":-1,"
                             "\"steps\":[" P "," P "," P "]}"},
    {"completions without orders", "{\"v\":1,\"status\":\"running\",\"current\":0,"
                                   "\"completions\":1,\"steps\":[" P "," P "," P "]}"},
    {"no steps", "{\"v\":1,\"status\":\"running\",\"current\":0,\"completions\":0}"},
    {"steps not an array", "{\"v\":1,\"status\":\"running\",\"current\":0,\"completions\":0,"
                           "\"steps\":{}}"},
    {"too few steps", "{\"v\":1,\"status\":\"running\",\"current\":0,\"completions\":0,"
                      "\"steps\":[" P "," P "]}"},
    {"too many steps", "{\"v\":1,\"status\":\"running\",\"current\":0,\"completions\":0,"
                       "\"steps\":[" P "," P "," P "," P "]}"},
    {"a step that is not an object", "{\"v\":1,\"status\":\"running\",\"current\":0,"
                                     "\"completions\":0,\"steps\":[\"pending\"," P "," P "]}"},
    {"unknown step member", "{\"v\":1,\"status\":\"running\",\"current\":0,\"completions\":0,"
                            "\"steps\":[{\"status\":\"pending\",\"children\":[]}," P "," P "]}"},
    {"a step without status", "{\"v\":1,\"status\":\"running\",\"current\":0,\"completions\":0,"
                              "\"steps\":[{}," P "," P "]}"},
    {"unknown step status", "{\"v\":1,\"status\":\"running\",\"current\":0,\"completions\":0,"
                            "\"steps\":[{\"status\":\"done\"}," P "," P "]}"},
    {"negative attempt", "{\"v\":1,\"status\":\"running\",\"current\":0,\"completions\":0,"
                         "\"steps\":[{\"status\":\"scheduled\",\"attempt\":-1}," P "," P "]}"},
    {"attempt as a real", "{\"v\":1,\"status\":\"running\",\"current\":0,\"completions\":0,"
                          "\"steps\":[{\"status\":\"scheduled\",\"attempt\":1.0}," P "," P "]}"},
    {"attempt beyond int",
     "{\"v\":1,\"status\":\"running\",\"current\":0,\"completions\":0,"
     "\"steps\":[{\"status\":\"scheduled\",\"attempt\":2147483648}," P "," P "]}"},
    {"time as text", "{\"v\":1,\"status\":\"running\",\"current\":0,\"completions\":0,"
                     "\"steps\":[{\"status\":\"scheduled\",\"attempt\":1,\"scheduled_at\":\"x\"},"
                     "" P "," P "]}"},
    {"order beyond the steps", "{\"v\":1,\"status\":\"completed\",\"current\":3,\"completions\":3,"
                               "\"steps\":[{\"status\":\"completed\",\"order\":1},{\"status\":"
                               "\"completed\",\"order\":2},{\"status\":\"completed\",\"order\":4}"
                               "]}"},
    {"pending with an attempt", "{\"v\":1,\"status\":\"running\",\"current\":0,\"completions\":0,"
                                "\"steps\":[{\"status\":\"pending\",\"attempt\":1}," P "," P "]}"},
    {"pending with a time", "{\"v\":1,\"status\":\"running\",\"current\":0,\"completions\":0,"
                            "\"steps\":[{\"status\":\"pending\",\"scheduled_at\":5}," P "," P "]}"},
    {"an attempt on a sleep", "{\"v\":1,\"status\":\"running\",\"current\":1,\"completions\":1,"
                              "\"steps\":[{\"status\":\"completed\",\"order\":1},{\"status\":"
                              "\"scheduled\",\"attempt\":1}," P "]}"},
    {"a scheduled activity without attempt", "{\"v\":1,\"status\":\"running\",\"current\":0,"
                                             "\"completions\":0,\"steps\":[{\"status\":"
                                             "\"scheduled\"}," P "," P "]}"},
    {"a running sleep", "{\"v\":1,\"status\":\"running\",\"current\":1,\"completions\":1,"
                        "\"steps\":[{\"status\":\"completed\",\"order\":1},{\"status\":"
                        "\"running\"}," P "]}"},
    {"a waiting activity", "{\"v\":1,\"status\":\"running\",\"current\":0,\"completions\":0,"
                           "\"steps\":[{\"status\":\"waiting\",\"attempt\":1}," P "," P "]}"},
    {"a scheduled wait", "{\"v\":1,\"status\":\"running\",\"current\":2,\"completions\":2,"
                         "\"steps\":[{\"status\":\"completed\",\"order\":1},{\"status\":"
                         "\"completed\",\"order\":2},{\"status\":\"scheduled\"}]}"},
    {"completed without order", "{\"v\":1,\"status\":\"running\",\"current\":1,\"completions\":0,"
                                "\"steps\":[{\"status\":\"completed\"},{\"status\":\"scheduled\"}"
                                "," P "]}"},
    {"failed with an order", "{\"v\":1,\"status\":\"failed\",\"current\":0,\"completions\":1,"
                             "\"steps\":[{\"status\":\"failed\",\"order\":1},{\"status\":"
                             "\"skipped\"},{\"status\":\"skipped\"}]}"},
    {"skipped with a time", "{\"v\":1,\"status\":\"failed\",\"current\":0,\"completions\":0,"
                            "\"steps\":[{\"status\":\"failed\"},{\"status\":\"skipped\","
                            "\"completed_at\":1},{\"status\":\"skipped\"}]}"},
    {"scheduled with completed_at", "{\"v\":1,\"status\":\"running\",\"current\":0,"
                                    "\"completions\":0,\"steps\":[{\"status\":\"scheduled\","
                                    "\"attempt\":1,\"completed_at\":3}," P "," P "]}"},
    {"duplicate orders", "{\"v\":1,\"status\":\"running\",\"current\":2,\"completions\":2,"
                         "\"steps\":[{\"status\":\"completed\",\"order\":1},{\"status\":"
                         "\"completed\",\"order\":1},{\"status\":\"waiting\"}]}"},
    {"a gap in the orders", "{\"v\":1,\"status\":\"running\",\"current\":2,\"completions\":2,"
                            "\"steps\":[{\"status\":\"completed\",\"order\":1},{\"status\":"
                            "\"completed\",\"order\":3},{\"status\":\"waiting\"}]}"},
    {"running, current step completed", "{\"v\":1,\"status\":\"running\",\"current\":0,"
                                        "\"completions\":1,\"steps\":[{\"status\":\"completed\","
                                        "\"order\":1}," P "," P "]}"},
    {"running, a step before current pending", "{\"v\":1,\"status\":\"running\",\"current\":1,"
                                               "\"completions\":0,\"steps\":[" P ",{\"status\":"
                                               "\"scheduled\"}," P "]}"},
    {"running, a step after current scheduled", "{\"v\":1,\"status\":\"running\",\"current\":0,"
                                                "\"completions\":0,\"steps\":[{\"status\":"
                                                "\"scheduled\",\"attempt\":1},{\"status\":"
                                                "\"scheduled\"}," P "]}"},
    {"running, current pending after a completion",
     "{\"v\":1,\"status\":\"running\",\"current\":1,\"completions\":1,\"steps\":[{\"status\":"
     "\"completed\",\"order\":1}," P "," P "]}"},
    {"running with nothing left", "{\"v\":1,\"status\":\"running\",\"current\":3,"
                                  "\"completions\":3,\"steps\":[{\"status\":\"completed\","
                                  "\"order\":1},{\"status\":\"completed\",\"order\":2},{\"status\":"
                                  "\"completed\",\"order\":3}]}"},
    {"completed with a pending step",
     "{\"v\":1,\"status\":\"completed\",\"current\":3,"
     "\"completions\":2,\"steps\":[{\"status\":\"completed\","
     "\"order\":1},{\"status\":\"completed\",\"order\":2}," P "]}"},
    {"completed with current inside", "{\"v\":1,\"status\":\"completed\",\"current\":2,"
                                      "\"completions\":3,\"steps\":[{\"status\":\"completed\","
                                      "\"order\":1},{\"status\":\"completed\",\"order\":2},"
                                      "{\"status\":\"completed\",\"order\":3}]}"},
    {"failed, current step not failed", "{\"v\":1,\"status\":\"failed\",\"current\":0,"
                                        "\"completions\":0,\"steps\":[{\"status\":\"scheduled\","
                                        "\"attempt\":1},{\"status\":\"skipped\"},{\"status\":"
                                        "\"skipped\"}]}"},
    {"failed, a later step pending",
     "{\"v\":1,\"status\":\"failed\",\"current\":0,"
     "\"completions\":0,\"steps\":[{\"status\":\"failed\"}," P ",{\"status\":\"skipped\"}]}"},
    {"cancelled with a running step", "{\"v\":1,\"status\":\"cancelled\",\"current\":0,"
                                      "\"completions\":0,\"steps\":[{\"status\":\"running\","
                                      "\"attempt\":1}," P "," P "]}"},
};

static void invalid_states_are_refused(void **state)
{
    (void)state;
    struct defn *d = parse_defn(DEFN);
    for (size_t c = 0; c < sizeof invalid / sizeof invalid[0]; c++) {
        print_message("case: %s\n", invalid[c].why);
        json_t *j = parse_json(invalid[c].json);
        struct engine_state st;
        memset(&st, 0xab, sizeof st);
        assert_int_equal(engine_state_from_json(j, d, &st), -1);
        /* Nothing is left to free, and freeing is safe. */
        assert_null(st.steps);
        assert_int_equal(st.n_steps, 0);
        engine_state_free(&st);
        json_decref(j);
    }
    defn_free(d);
}

static void missing_arguments_are_refused(void **state)
{
    (void)state;
    struct defn *d = parse_defn(DEFN);
    json_t *j = parse_json(valid[0]);
    struct engine_state st;
    assert_int_equal(engine_state_from_json(NULL, d, &st), -1);
    assert_int_equal(engine_state_from_json(j, NULL, &st), -1);
    assert_int_equal(engine_state_from_json(j, d, NULL), -1);
    json_decref(j);
    defn_free(d);
}

/* A state written for one definition does not fit another with a different number of steps,
 * nor one where a step's kind differs. */
static void state_must_fit_its_definition(void **state)
{
    (void)state;
    struct defn *three = parse_defn(DEFN);
    struct defn *two = parse_defn("{\"name\": \"w\", \"steps\": [{\"id\": \"a\", \"activity\": "
                                  "{\"url\": \"http://x\"}}, {\"id\": \"b\", \"sleep\": 0}]}");
    struct defn *kinds = parse_defn(
        "{\"name\": \"w\", \"steps\": [{\"id\": \"a\", \"sleep\": 0}, {\"id\": \"b\", \"sleep\": "
        "0}, {\"id\": \"c\", \"sleep\": 0}]}");
    json_t *j = parse_json(valid[2]); /* step 0 running attempt 3 */
    struct engine_state st;
    assert_int_equal(engine_state_from_json(j, three, &st), 0);
    engine_state_free(&st);
    assert_int_equal(engine_state_from_json(j, two, &st), -1);
    assert_int_equal(engine_state_from_json(j, kinds, &st), -1);
    json_decref(j);
    defn_free(three);
    defn_free(two);
    defn_free(kinds);
}

/* The interpreter refuses a state that does not belong to the definition. */
static void advance_refuses_a_mismatched_state(void **state)
{
    (void)state;
    struct defn *three = parse_defn(DEFN);
    struct defn *two = parse_defn("{\"name\": \"w\", \"steps\": [{\"id\": \"a\", \"activity\": "
                                  "{\"url\": \"http://x\"}}, {\"id\": \"b\", \"sleep\": 0}]}");
    struct engine_state st;
    engine_state_init(&st, two);
    json_t *ctx = json_object();
    struct engine_effects fx = {0};
    struct engine_input in = in_start(T0);
    assert_int_equal(engine_advance(three, &st, ctx, &in, &fx), -1);
    assert_int_equal(fx.n_events, 0);
    /* A context that is not an object is a programming error too. */
    json_t *arr = json_array();
    assert_int_equal(engine_advance(two, &st, arr, &in, &fx), -1);
    /* An empty object is fine: "steps" is created as needed. */
    assert_int_equal(engine_advance(two, &st, ctx, &in, &fx), 0);
    assert_false(fx.stale);
    assert_true(json_is_object(json_object_get(json_object_get(ctx, "steps"), "a")));
    engine_effects_free(&fx);
    engine_effects_free(&fx); /* twice is harmless */
    engine_effects_free(NULL);
    json_decref(arr);
    json_decref(ctx);
    engine_state_free(&st);
    defn_free(three);
    defn_free(two);
}

/* ---- members added for sagas and asynchronous activities --------------------------------- */

/* Steps: 0 and 1 activities with compensations, 2 an activity without. */
static const char *const SAGA_DEFN =
    "{\"name\": \"w\", \"steps\": [{\"id\": \"a\", \"activity\": {\"url\": \"http://x\"}, "
    "\"compensate\": {\"url\": \"http://x/undo\"}}, {\"id\": \"b\", \"activity\": {\"url\": "
    "\"http://y\"}, \"compensate\": {\"url\": \"http://y/undo\"}}, {\"id\": \"c\", \"activity\": "
    "{\"url\": \"http://z\"}}]}";

#define DONE1 "{\"status\":\"completed\",\"attempt\":1,\"order\":1"
#define DONE2 "{\"status\":\"completed\",\"attempt\":1,\"order\":2"
#define SK    "{\"status\":\"skipped\"}"
#define PD    "{\"status\":\"pending\"}"

static const char *const saga_valid[] = {
    /* The saga of b's failure: a's compensation is due. */
    "{\"v\":1,\"status\":\"running\",\"current\":1,\"completions\":1,\"compensating\":true,"
    "\"steps\":[" DONE1 ",\"comp\":{\"status\":\"scheduled\",\"attempt\":1}},{\"status\":"
    "\"failed\",\"attempt\":2}," SK "]}",
    /* The saga of a cancel that interrupted b's backoff: a's compensation accepted, in flight. */
    "{\"v\":1,\"status\":\"running\",\"current\":1,\"completions\":1,\"cancel_requested\":true,"
    "\"compensating\":true,\"steps\":[" DONE1 ",\"comp\":{\"status\":\"running\",\"attempt\":2,"
    "\"started_at\":50,\"accepted\":true}},{\"status\":\"skipped\",\"attempt\":2,"
    "\"scheduled_at\":3,\"started_at\":4}," SK "]}",
    /* A cancel waits for b's accepted attempt (a retry, so its own start). */
    "{\"v\":1,\"status\":\"running\",\"current\":1,\"completions\":1,\"cancel_requested\":true,"
    "\"steps\":[" DONE1 "},{\"status\":\"running\",\"attempt\":2,\"scheduled_at\":3,"
    "\"started_at\":5,\"attempt_started_at\":7,\"accepted\":true}," PD "]}",
    /* Failed after its saga: a undone, b's compensation failed for good. */
    "{\"v\":1,\"status\":\"failed\",\"current\":2,\"completions\":2,\"steps\":[{\"status\":"
    "\"compensated\",\"attempt\":1,\"order\":1}," DONE2 ",\"comp\":{\"status\":\"failed\","
    "\"attempt\":3}},{\"status\":\"failed\",\"attempt\":1}]}",
    /* A compensation that never evaluated has no attempt. */
    "{\"v\":1,\"status\":\"failed\",\"current\":2,\"completions\":2,\"steps\":[" DONE1
    ",\"comp\":{\"status\":\"failed\"}}," DONE2 ",\"comp\":{\"status\":\"failed\",\"attempt\":1}},"
    "{\"status\":\"failed\"}]}",
    /* Terminated during the saga of a cancel. */
    "{\"v\":1,\"status\":\"terminated\",\"current\":1,\"completions\":1,\"cancel_requested\":"
    "true,\"steps\":[" DONE1 ",\"comp\":{\"status\":\"interrupted\",\"attempt\":1}}," SK "," SK
    "]}",
    /* Cancelled with a failed compensation. */
    "{\"v\":1,\"status\":\"cancelled\",\"current\":2,\"completions\":2,\"cancel_requested\":true,"
    "\"steps\":[" DONE1 ",\"comp\":{\"status\":\"failed\",\"attempt\":10}},{\"status\":"
    "\"compensated\",\"attempt\":1,\"order\":2},{\"status\":\"skipped\",\"attempt\":1,"
    "\"scheduled_at\":9}]}",
};

static void saga_states_round_trip_exactly(void **state)
{
    (void)state;
    struct defn *d = parse_defn(SAGA_DEFN);
    for (size_t c = 0; c < sizeof saga_valid / sizeof saga_valid[0]; c++) {
        print_message("case %zu\n", c);
        json_t *j = parse_json(saga_valid[c]);
        struct engine_state st;
        assert_int_equal(engine_state_from_json(j, d, &st), 0);
        json_t *back = engine_state_to_json(&st);
        char *text = json_dumps(back, JSON_COMPACT);
        json_t *expected = parse_json(saga_valid[c]);
        char *expected_text = json_dumps(expected, JSON_COMPACT);
        assert_string_equal(text, expected_text);
        free(text);
        free(expected_text);
        json_decref(expected);
        json_decref(back);
        json_decref(j);
        engine_state_free(&st);
    }
    defn_free(d);
}

/* An attempt_started_at equal to started_at, and explicit false flags, are accepted and left
 * out when written. */
static void saga_members_are_normalised(void **state)
{
    (void)state;
    struct defn *d = parse_defn(SAGA_DEFN);
    json_t *j = parse_json(
        "{\"v\":1,\"status\":\"running\",\"current\":1,\"completions\":1,\"cancel_requested\":"
        "false,\"compensating\":false,\"steps\":[" DONE1 "},{\"status\":\"running\",\"attempt\":"
        "1,\"started_at\":5,\"attempt_started_at\":5,\"accepted\":false}," PD "]}");
    struct engine_state st;
    assert_int_equal(engine_state_from_json(j, d, &st), 0);
    assert_int_equal(st.steps[1].attempt_started_at_ms, 5);
    json_t *back = engine_state_to_json(&st);
    expect_json(back,
                "{\"v\":1,\"status\":\"running\",\"current\":1,\"completions\":1,\"steps\":[" DONE1
                "},{\"status\":\"running\",\"attempt\":1,\"started_at\":5}," PD "]}",
                "states");
    json_decref(back);
    json_decref(j);
    engine_state_free(&st);
    defn_free(d);
}

static const struct {
    const char *why;
    const char *json;
} saga_invalid[] = {
    {"compensating without a compensation under way",
     "{\"v\":1,\"status\":\"running\",\"current\":1,\"completions\":1,\"compensating\":true,"
     "\"steps\":[" DONE1 "},{\"status\":\"failed\"}," SK "]}"},
    {"a compensation under way without compensating",
     "{\"v\":1,\"status\":\"running\",\"current\":1,\"completions\":1,\"steps\":[" DONE1
     ",\"comp\":{\"status\":\"scheduled\",\"attempt\":1}},{\"status\":\"failed\"}," SK "]}"},
    {"two compensations under way",
     "{\"v\":1,\"status\":\"running\",\"current\":2,\"completions\":2,\"compensating\":true,"
     "\"steps\":[" DONE1 ",\"comp\":{\"status\":\"scheduled\",\"attempt\":1}}," DONE2
     ",\"comp\":{\"status\":\"running\",\"attempt\":1}},{\"status\":\"failed\"}]}"},
    {"a compensation on a step that has none",
     "{\"v\":1,\"status\":\"failed\",\"current\":3,\"completions\":3,\"steps\":[" DONE1 "}," DONE2
     "},{\"status\":\"completed\",\"order\":3,\"comp\":{\"status\":\"failed\"}}]}"},
    {"a compensation on a failed step",
     "{\"v\":1,\"status\":\"failed\",\"current\":0,\"completions\":0,\"steps\":[{\"status\":"
     "\"failed\",\"comp\":{\"status\":\"failed\"}}," SK "," SK "]}"},
    {"comp status none",
     "{\"v\":1,\"status\":\"failed\",\"current\":2,\"completions\":2,\"steps\":[" DONE1
     ",\"comp\":{\"status\":\"none\"}}," DONE2 "},{\"status\":\"failed\"}]}"},
    {"comp status completed",
     "{\"v\":1,\"status\":\"failed\",\"current\":2,\"completions\":2,\"steps\":[" DONE1
     ",\"comp\":{\"status\":\"completed\"}}," DONE2 "},{\"status\":\"failed\"}]}"},
    {"comp without status",
     "{\"v\":1,\"status\":\"failed\",\"current\":2,\"completions\":2,\"steps\":[" DONE1
     ",\"comp\":{\"attempt\":1}}," DONE2 "},{\"status\":\"failed\"}]}"},
    {"comp not an object",
     "{\"v\":1,\"status\":\"failed\",\"current\":2,\"completions\":2,\"steps\":[" DONE1
     ",\"comp\":\"failed\"}," DONE2 "},{\"status\":\"failed\"}]}"},
    {"unknown comp member",
     "{\"v\":1,\"status\":\"failed\",\"current\":2,\"completions\":2,\"steps\":[" DONE1
     ",\"comp\":{\"status\":\"failed\",\"error\":{}}}," DONE2 "},{\"status\":\"failed\"}]}"},
    {"a scheduled compensation without attempt",
     "{\"v\":1,\"status\":\"running\",\"current\":1,\"completions\":1,\"compensating\":true,"
     "\"steps\":[" DONE1 ",\"comp\":{\"status\":\"scheduled\"}},{\"status\":\"failed\"}," SK "]}"},
    {"an accepted compensation that is not running",
     "{\"v\":1,\"status\":\"running\",\"current\":1,\"completions\":1,\"compensating\":true,"
     "\"steps\":[" DONE1 ",\"comp\":{\"status\":\"scheduled\",\"attempt\":1,\"accepted\":true}},"
     "{\"status\":\"failed\"}," SK "]}"},
    {"a compensation start while scheduled",
     "{\"v\":1,\"status\":\"running\",\"current\":1,\"completions\":1,\"compensating\":true,"
     "\"steps\":[" DONE1 ",\"comp\":{\"status\":\"scheduled\",\"attempt\":1,\"started_at\":3}},"
     "{\"status\":\"failed\"}," SK "]}"},
    {"accepted on a scheduled step",
     "{\"v\":1,\"status\":\"running\",\"current\":0,\"completions\":0,\"steps\":[{\"status\":"
     "\"scheduled\",\"attempt\":1,\"accepted\":true}," PD "," PD "]}"},
    {"accepted as a number",
     "{\"v\":1,\"status\":\"running\",\"current\":0,\"completions\":0,\"steps\":[{\"status\":"
     "\"running\",\"attempt\":1,\"accepted\":1}," PD "," PD "]}"},
    {"an attempt start on a completed step",
     "{\"v\":1,\"status\":\"running\",\"current\":1,\"completions\":1,\"steps\":[" DONE1
     ",\"attempt_started_at\":4},{\"status\":\"scheduled\",\"attempt\":1}," PD "]}"},
    {"attempt_started_at as text",
     "{\"v\":1,\"status\":\"running\",\"current\":0,\"completions\":0,\"steps\":[{\"status\":"
     "\"running\",\"attempt\":1,\"attempt_started_at\":\"4\"}," PD "," PD "]}"},
    {"cancel_requested as a number",
     "{\"v\":1,\"status\":\"running\",\"current\":0,\"completions\":0,\"cancel_requested\":1,"
     "\"steps\":[{\"status\":\"running\",\"attempt\":1}," PD "," PD "]}"},
    {"cancel_requested on a failed execution",
     "{\"v\":1,\"status\":\"failed\",\"current\":0,\"completions\":0,\"cancel_requested\":true,"
     "\"steps\":[{\"status\":\"failed\"}," SK "," SK "]}"},
    {"a cancel waiting for a step that is not in flight",
     "{\"v\":1,\"status\":\"running\",\"current\":0,\"completions\":0,\"cancel_requested\":true,"
     "\"steps\":[{\"status\":\"scheduled\",\"attempt\":2}," PD "," PD "]}"},
    {"compensating on a failed execution",
     "{\"v\":1,\"status\":\"failed\",\"current\":1,\"completions\":1,\"compensating\":true,"
     "\"steps\":[" DONE1 ",\"comp\":{\"status\":\"scheduled\",\"attempt\":1}},{\"status\":"
     "\"failed\"}," SK "]}"},
    {"a compensated step while running forward",
     "{\"v\":1,\"status\":\"running\",\"current\":1,\"completions\":1,\"steps\":[{\"status\":"
     "\"compensated\",\"order\":1},{\"status\":\"scheduled\",\"attempt\":1}," PD "]}"},
    {"a failure's saga whose current step did not fail",
     "{\"v\":1,\"status\":\"running\",\"current\":1,\"completions\":1,\"compensating\":true,"
     "\"steps\":[" DONE1 ",\"comp\":{\"status\":\"scheduled\",\"attempt\":1}}," SK "," SK "]}"},
    {"a saga with a step still pending",
     "{\"v\":1,\"status\":\"running\",\"current\":1,\"completions\":1,\"compensating\":true,"
     "\"steps\":[" DONE1 ",\"comp\":{\"status\":\"scheduled\",\"attempt\":1}},{\"status\":"
     "\"failed\"}," PD "]}"},
    {"a completed execution with a failed compensation",
     "{\"v\":1,\"status\":\"completed\",\"current\":3,\"completions\":3,\"steps\":[" DONE1
     ",\"comp\":{\"status\":\"failed\"}}," DONE2 "},{\"status\":\"completed\",\"order\":3}]}"},
    {"a skipped step with an order",
     "{\"v\":1,\"status\":\"cancelled\",\"current\":0,\"completions\":1,\"steps\":[{\"status\":"
     "\"skipped\",\"order\":1}," SK "," SK "]}"},
};

static void bad_saga_states_are_refused(void **state)
{
    (void)state;
    struct defn *d = parse_defn(SAGA_DEFN);
    for (size_t c = 0; c < sizeof saga_invalid / sizeof saga_invalid[0]; c++) {
        print_message("case: %s\n", saga_invalid[c].why);
        json_t *j = parse_json(saga_invalid[c].json);
        struct engine_state st;
        memset(&st, 0xab, sizeof st);
        assert_int_equal(engine_state_from_json(j, d, &st), -1);
        assert_null(st.steps);
        engine_state_free(&st);
        json_decref(j);
    }
    defn_free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(valid_states_round_trip_exactly),
        cmocka_unit_test(fresh_state_text),
        cmocka_unit_test(explicit_zeros_are_accepted),
        cmocka_unit_test(invalid_states_are_refused),
        cmocka_unit_test(missing_arguments_are_refused),
        cmocka_unit_test(state_must_fit_its_definition),
        cmocka_unit_test(advance_refuses_a_mismatched_state),
        cmocka_unit_test(saga_states_round_trip_exactly),
        cmocka_unit_test(saga_members_are_normalised),
        cmocka_unit_test(bad_saga_states_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
