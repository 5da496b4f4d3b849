/* Definition parsing and validation: every error is collected with its JSON Pointer. */
#include "defn/defn.h"

#include "defn/duration.h"
#include "defn/expr.h"
#include "util/alloc.h"
#include "webhook/destination.h"
#include "util/buf.h"
#include "util/timeutil.h"

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- errors and pointers ----------------------------------------------------------------- */

/* Where each step sits in the tree, recorded in one walk over the document before any step is
 * parsed, so that the references of any step to any other (earlier or later, nested or not)
 * can be checked, and duplicates named, in one parsing pass. The records mirror exactly the
 * step lists that parsing descends into: a parallel's branches (in name order) and a
 * for_each's steps. */
enum rec_kind {
    REC_LEAF,     /* any step that holds no steps (or whose kind is unclear) */
    REC_PARALLEL, /* lists: the branches, in name order */
    REC_FOR_EACH, /* lists: one, the body */
    REC_IF,       /* lists: then and, when there is one, else */
};

struct step_rec;

/* One step list: the definition's steps, a branch, or a for_each's body. */
struct rec_list {
    const char *name;       /* a branch's name (borrowed from the document); NULL otherwise */
    const json_t *steps;    /* borrowed; what the document has there, array or not */
    struct step_rec *items; /* owned; one per element when steps is an array */
    size_t n;
};

struct step_rec {
    char *ptr;                     /* owned; the step's JSON pointer */
    const json_t *json;            /* borrowed; the step as the document has it */
    const char *id;                /* borrowed; NULL when missing or invalid */
    const struct step_rec *parent; /* the step whose list holds this one; NULL at the top */
    size_t list;                   /* which of the parent's lists (a branch, in name order) */
    size_t index;                  /* the position in that list */
    int depth;                     /* 1 for the definition's own steps */
    enum rec_kind kind;
    struct rec_list *lists; /* owned */
    size_t n_lists;
};

struct parser {
    json_t *errors;
    /* Each valid step id -> the position in order[] of the first step with it (in the order
     * parsing visits steps: each step before the steps it holds, branches in name order). A
     * hash, because a 1 MiB body can hold tens of thousands of steps. */
    json_t *ids;
    const struct step_rec **order; /* the first step with each valid id, borrowed */
    size_t n_order, cap_order;
    struct rec_list top; /* the definition's steps */
    bool literal;        /* a step call's body: its strings are data, never templates */
};

/* The first step with this id, or NULL. */
static const struct step_rec *step_rec_of(const struct parser *p, const char *id)
{
    const json_t *i = json_object_get(p->ids, id);
    return i ? p->order[json_integer_value(i)] : NULL;
}

static void add_error(struct parser *p, const char *ptr, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void add_error(struct parser *p, const char *ptr, const char *fmt, ...)
{
    struct buf msg = BUF_INIT;
    va_list ap;
    va_start(ap, fmt);
    buf_vprintf(&msg, fmt, ap);
    va_end(ap);
    json_t *e =
        json_pack("{s:s, s:s%}", "pointer", ptr, "message", msg.data ? msg.data : "", msg.len);
    if (!e) {
        /* Text quoted from the document was cut inside a UTF-8 sequence or held a NUL. The
         * error must not be lost, or a broken definition would pass. */
        for (size_t i = 0; i < msg.len; i++)
            if ((unsigned char)msg.data[i] >= 0x80 || msg.data[i] == '\0')
                msg.data[i] = '?';
        e = json_pack("{s:s?, s:s%}", "pointer", ptr, "message", msg.data ? msg.data : "", msg.len);
    }
    if (!e)
        e = json_pack("{s:s, s:s}", "pointer", "", "message", "invalid definition");
    json_array_append_new(p->errors, e);
    buf_free(&msg);
}

/* A new string: base + "/" + key with RFC 6901 escaping (~ as ~0, / as ~1). Caller frees. */
static char *ptr_key(const char *base, const char *key)
{
    struct buf b = BUF_INIT;
    buf_puts(&b, base);
    buf_putc(&b, '/');
    for (const char *k = key; *k; k++) {
        if (*k == '~')
            buf_puts(&b, "~0");
        else if (*k == '/')
            buf_puts(&b, "~1");
        else
            buf_putc(&b, *k);
    }
    return buf_steal(&b);
}

static char *ptr_index(const char *base, size_t i)
{
    return xasprintf("%s/%zu", base, i);
}

/* ---- small checks ------------------------------------------------------------------------ */

/* Edit distance, for "did you mean" hints on unknown fields. Long keys are not worth it. */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 40 || lb > 40)
        return SIZE_MAX;
    size_t row[41];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

/* Reports every member of obj that is not in allowed (a NULL-terminated list). */
static void check_fields(struct parser *p, const json_t *obj, const char *ptr,
                         const char *const *allowed)
{
    const char *key;
    json_t *value;
    json_object_foreach((json_t *)obj, key, value)
    {
        (void)value;
        const char *hint = NULL;
        size_t best = SIZE_MAX;
        bool known = false;
        for (const char *const *a = allowed; *a; a++) {
            if (strcmp(key, *a) == 0) {
                known = true;
                break;
            }
            /* A typo is a case slip or a few edits that leave most of the name intact. */
            size_t d = strcasecmp(key, *a) == 0 ? 0 : edit_distance(key, *a);
            if (d < best && (d == 0 || (d <= 3 && 2 * d < strlen(key)))) {
                best = d;
                hint = *a;
            }
        }
        if (known)
            continue;
        char *at = ptr_key(ptr, key);
        if (hint) {
            add_error(p, at, "unknown field; did you mean \"%s\"?", hint);
        } else {
            struct buf list = BUF_INIT;
            for (const char *const *a = allowed; *a; a++)
                buf_printf(&list, "%s%s", a == allowed ? "" : ", ", *a);
            add_error(p, at, "unknown field (allowed: %s)", list.data);
            buf_free(&list);
        }
        free(at);
    }
}

/* True when s (len bytes) has 1..max characters, each a letter, digit or one of extra. */
static bool valid_chars(const char *s, size_t len, size_t max, const char *extra)
{
    if (!s || len == 0 || len > max)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  (c != '\0' && strchr(extra, c));
        if (!ok)
            return false;
    }
    return true;
}

/* True when the string value v has 1..max characters, each a letter, digit or one of extra. */
static bool valid_token(const json_t *v, size_t max, const char *extra)
{
    return valid_chars(json_string_value(v), json_string_length(v), max, extra);
}

/* Reads an optional duration member. Returns 1 and sets *ms when present and valid, 0 when
 * absent, -1 (error reported) when invalid. */
static int get_duration(struct parser *p, const json_t *obj, const char *key, const char *ptr,
                        bool positive, int64_t *ms)
{
    const json_t *v = json_object_get(obj, key);
    if (!v)
        return 0;
    char *at = ptr_key(ptr, key);
    const char *why = NULL;
    int64_t n = 0;
    int rc = 1;
    if (!defn_parse_duration(v, &n, &why)) {
        add_error(p, at, "%s", why);
        rc = -1;
    } else if (positive && n == 0) {
        add_error(p, at, "must be greater than zero");
        rc = -1;
    } else {
        *ms = n;
    }
    free(at);
    return rc;
}

/* ---- expressions and step references ----------------------------------------------------- */

enum ref_rule {
    REF_BEFORE,         /* steps that complete before the holding step starts */
    REF_BEFORE_OR_SELF, /* also the holding step itself (its compensate) */
    REF_OUTPUT,         /* any step outside every for_each body (the definition's output) */
};

struct ref_ctx {
    struct parser *p;
    const char *base;            /* pointer of the template */
    const struct step_rec *step; /* the step holding the template; NULL for the output */
    enum ref_rule rule;
};

static void on_expr_error(void *arg, const char *pointer, const char *message)
{
    struct ref_ctx *rc = arg;
    char *at = xasprintf("%s%s", rc->base, pointer);
    add_error(rc->p, at, "%s", message);
    free(at);
}

/* Appends how r is named in messages: its id, or its pointer when it has no valid id. */
static void put_step_name(struct buf *b, const struct step_rec *r)
{
    if (r->id)
        buf_printf(b, "\"%s\"", r->id);
    else
        buf_printf(b, "at %s", r->ptr);
}

/* Fills out[0..n) with r's ancestors from the top down, r last; returns n. Records hold
 * templates, and have ids, only down to DEFN_MAX_STEP_DEPTH, so n is at most that. */
static size_t chain_of(const struct step_rec *r, const struct step_rec *out[DEFN_MAX_STEP_DEPTH])
{
    size_t n = 0;
    for (const struct step_rec *a = r; a && n < DEFN_MAX_STEP_DEPTH; a = a->parent)
        n++;
    size_t i = n;
    for (const struct step_rec *a = r; a && i > 0; a = a->parent)
        out[--i] = a;
    return n;
}

/* The outermost for_each among x's ancestors from out[from] down (x itself excluded), or
 * NULL: the loop outside which x's result is that loop's output. */
static const struct step_rec *loop_around(const struct step_rec *const *chain, size_t n,
                                          size_t from)
{
    for (size_t i = from; i + 1 < n; i++)
        if (chain[i]->kind == REC_FOR_EACH)
            return chain[i];
    return NULL;
}

static void put_inside_loop(struct buf *msg, const char *step_id, const struct step_rec *loop)
{
    buf_printf(msg, "step \"%s\" is inside for_each ", step_id);
    put_step_name(msg, loop);
    if (loop->id)
        buf_printf(msg, ": use ${steps.%s.output} from outside the loop", loop->id);
    else
        buf_puts(msg, ": use that for_each's output from outside the loop");
}

/* Appends to msg why the template of step a (NULL: the definition's output) may not use the
 * result of step x under rule, or nothing when it may. A step may use another's result when
 * that step completes before it starts on every run: x is an earlier sibling of a or of one of
 * a's ancestors, or inside such a sibling, but not inside a for_each body there (from outside
 * a loop, its steps' results are the loop's output), and never in another branch of a
 * parallel that holds both. */
static void explain_step_ref(const struct step_rec *x, const struct step_rec *a, enum ref_rule rule,
                             const char *step_id, struct buf *msg)
{
    const struct step_rec *cx[DEFN_MAX_STEP_DEPTH], *ca[DEFN_MAX_STEP_DEPTH];
    size_t nx = chain_of(x, cx);
    if (rule == REF_OUTPUT || !a) {
        const struct step_rec *loop = loop_around(cx, nx, 0);
        if (loop)
            put_inside_loop(msg, step_id, loop);
        return;
    }
    if (x == a) {
        if (rule != REF_BEFORE_OR_SELF)
            buf_puts(msg, "a step cannot use its own result (only its compensate can)");
        return;
    }
    size_t na = chain_of(a, ca);
    size_t k = 0;
    while (k < nx && k < na && cx[k] == ca[k])
        k++;
    if (k == nx) {
        buf_printf(msg, "step \"%s\" holds this step, so it has not completed while this step runs",
                   step_id);
        return;
    }
    if (k == na) {
        buf_printf(msg,
                   "step \"%s\" is inside this step, so it has not completed when this step "
                   "starts",
                   step_id);
        return;
    }
    const struct step_rec *s = cx[k], *t = ca[k];
    if (k > 0 && cx[k - 1]->kind == REC_PARALLEL && s->list != t->list) {
        buf_printf(msg, "step \"%s\" is in another branch of parallel ", step_id);
        put_step_name(msg, cx[k - 1]);
        buf_puts(msg, "; branches run at once");
        return;
    }
    if (k > 0 && cx[k - 1]->kind == REC_IF && s->list != t->list) {
        buf_printf(msg, "step \"%s\" is in the %s of if ", step_id, s->list == 0 ? "then" : "else");
        put_step_name(msg, cx[k - 1]);
        buf_printf(msg, ", and this step in its %s; only one of them runs",
                   t->list == 0 ? "then" : "else");
        return;
    }
    if (s->index > t->index) {
        buf_printf(msg,
                   "step \"%s\" comes after this step; a step can only use the results of the "
                   "steps before it",
                   step_id);
        return;
    }
    const struct step_rec *loop = loop_around(cx, nx, k);
    if (loop)
        put_inside_loop(msg, step_id, loop);
}

static void on_step_ref(void *arg, const char *pointer, const char *expr, const char *step_id)
{
    struct ref_ctx *rc = arg;
    const struct step_rec *found = step_rec_of(rc->p, step_id);
    struct buf msg = BUF_INIT;
    buf_printf(&msg, "${%s}: ", expr);
    size_t prefix = msg.len;
    if (!found)
        buf_printf(&msg, "no step \"%s\" in this definition", step_id);
    else
        explain_step_ref(found, rc->step, rc->rule, step_id, &msg);
    if (msg.len > prefix) {
        char *at = xasprintf("%s%s", rc->base, pointer);
        add_error(rc->p, at, "%s", msg.data);
        free(at);
    }
    buf_free(&msg);
}

/* Appends to msg why the template of step a (NULL: the definition's output) may not use a
 * loop's element or index (loop_id NULL: the innermost loop's), or nothing when it may: only
 * the steps inside a for_each's body (at any depth) are inside that loop; its own items are
 * evaluated before it starts. */
static void explain_loop_ref(const struct parser *p, const struct step_rec *a, const char *loop_id,
                             struct buf *msg)
{
    if (!loop_id) {
        for (const struct step_rec *r = a ? a->parent : NULL; r; r = r->parent)
            if (r->kind == REC_FOR_EACH)
                return;
        buf_puts(msg, "not inside a for_each");
        if (a && a->kind == REC_FOR_EACH) {
            buf_puts(msg, "; the items of for_each ");
            put_step_name(msg, a);
            buf_puts(msg, " are evaluated before its loop starts");
        } else {
            buf_puts(msg, "; item and index are only available in the steps of a for_each");
        }
        return;
    }
    const struct step_rec *x = step_rec_of(p, loop_id);
    if (!x) {
        buf_printf(msg, "no step \"%s\" in this definition", loop_id);
        return;
    }
    if (x->kind != REC_FOR_EACH) {
        buf_printf(msg, "step \"%s\" is not a for_each", loop_id);
        return;
    }
    if (x == a) {
        buf_printf(msg, "the items of for_each \"%s\" are evaluated before its loop starts",
                   loop_id);
        return;
    }
    for (const struct step_rec *r = a ? a->parent : NULL; r; r = r->parent)
        if (r == x)
            return;
    buf_printf(msg, "for_each \"%s\" does not enclose %s", loop_id,
               a ? "this step" : "the definition's output");
}

static void on_loop_ref(void *arg, const char *pointer, const char *expr, const char *loop_id)
{
    struct ref_ctx *rc = arg;
    struct buf msg = BUF_INIT;
    buf_printf(&msg, "${%s}: ", expr);
    size_t prefix = msg.len;
    explain_loop_ref(rc->p, rc->step, loop_id, &msg);
    if (msg.len > prefix) {
        char *at = xasprintf("%s%s", rc->base, pointer);
        add_error(rc->p, at, "%s", msg.data);
        free(at);
    }
    buf_free(&msg);
}

/* Compiles tmpl (a template the definition owns, so that the compiled form may keep references
 * into it), adding an error for each malformed expression and each step or loop it may not
 * use. Returns the compiled template, which the definition owns too. */
static struct expr_template *compile_template_counting(struct parser *p, const json_t *tmpl,
                                                       const char *ptr, const struct step_rec *step,
                                                       enum ref_rule rule, int *n_malformed)
{
    if (p->literal) {
        if (n_malformed)
            *n_malformed = 0;
        return expr_template_literal(tmpl);
    }
    struct ref_ctx rc = {p, ptr, step, rule};
    struct expr_reporter r = {on_step_ref, on_loop_ref, on_expr_error, &rc};
    return expr_compile_reporting(tmpl, &r, n_malformed);
}

static struct expr_template *compile_template(struct parser *p, const json_t *tmpl, const char *ptr,
                                              const struct step_rec *step, enum ref_rule rule)
{
    return compile_template_counting(p, tmpl, ptr, step, rule, NULL);
}

/* True when s (len bytes) is a template that evaluates something: never in a literal body. */
static bool has_expression(const struct parser *p, const char *s, size_t len)
{
    return !p->literal && expr_has_expression(s, len);
}

/* A template without expressions, compiled once ("$$" read as "$" unless the body is
 * literal). */
static struct expr_template *compile_plain(const struct parser *p, const json_t *tmpl)
{
    return p->literal ? expr_template_literal(tmpl) : expr_compile(tmpl, NULL, NULL, NULL, NULL);
}

/* Checks the url member of an activity or compensate object at ptr. */
static void check_url(struct parser *p, const json_t *obj, const char *ptr,
                      const struct step_rec *step, enum ref_rule rule, struct defn_activity *a)
{
    const json_t *url = json_object_get(obj, "url");
    if (!url) {
        add_error(p, ptr, "missing required field \"url\"");
        return;
    }
    char *at = ptr_key(ptr, "url");
    const char *s = json_string_value(url);
    size_t len = json_string_length(url);
    if (!s) {
        add_error(p, at, "must be a string");
    } else if (len == 0) {
        add_error(p, at, "must not be empty");
    } else if (has_expression(p, s, len)) {
        a->url = json_deep_copy(url);
        a->url_expr = compile_template(p, a->url, at, step, rule);
    } else {
        /* Scheme, host syntax and port range; what the destination policy refuses is checked
         * by defn_check_destinations, at registration only. */
        bool ok = strlen(s) == len;
        for (size_t i = 0; ok && i < len; i++)
            if ((unsigned char)s[i] <= 0x20 || s[i] == 0x7f)
                ok = false;
        char *why = NULL;
        const char *or_expr = p->literal ? "" : " (or contain a ${...} expression)";
        if (!ok)
            add_error(p, at, "must be an http:// or https:// URL with a host and no spaces%s",
                      or_expr);
        else if (wh_dest_check_url(NULL, s, NULL, &why) == WH_DEST_INVALID)
            add_error(p, at,
                      "must be an http:// or https:// URL with a host, a port from 1 to 65535 "
                      "if any, and no spaces%s; this one %s",
                      or_expr, why);
        else {
            a->url = json_deep_copy(url);
            a->url_expr = compile_plain(p, a->url);
        }
        free(why);
    }
    free(at);
}

/* Adds an error when url is a literal URL that the destination policy refuses. step is the
 * pointer of the step, member "activity" or "compensate". */
static void check_destination(json_t *errors, const json_t *url, const char *step,
                              const char *member)
{
    const char *s = json_string_value(url);
    if (!s || expr_has_expression(s, json_string_length(url)))
        return;
    char *why = NULL;
    if (wh_dest_check_url(wh_dest_global(), s, NULL, &why) == WH_DEST_REFUSED) {
        char *ptr = xasprintf("%s/%s/url", step, member);
        json_array_append_new(errors, json_pack("{s:s, s:s+}", "pointer", ptr, "message",
                                                "destination refused: ", why ? why : ""));
        free(ptr);
    }
    free(why);
}

typedef void (*step_visit_fn)(void *arg, const struct defn_step *st, const char *ptr);

/* Calls visit(arg, step, its JSON Pointer) for every step of the list at ptr and every step
 * they hold, each before the steps it holds, in definition order (a parallel's branches in
 * name order; an if's then before its else). Definitions nest at most DEFN_MAX_STEP_DEPTH
 * levels, which bounds the recursion. */
static void each_step(const struct defn_step *steps, size_t n, const char *ptr, step_visit_fn visit,
                      void *arg)
{
    for (size_t i = 0; i < n; i++) {
        const struct defn_step *st = &steps[i];
        char *at = ptr_index(ptr, i);
        visit(arg, st, at);
        for (size_t b = 0; b < st->n_branches; b++) {
            /* An if's lists are fields of the step itself: /then, /else. */
            char *list =
                st->kind == DEFN_STEP_IF ? xstrdup(at) : xasprintf("%s/parallel/branches", at);
            char *bat = ptr_key(list, st->branches[b].name);
            each_step(st->branches[b].steps, st->branches[b].n_steps, bat, visit, arg);
            free(bat);
            free(list);
        }
        if (st->n_children) {
            char *body = xasprintf("%s/for_each/steps", at);
            each_step(st->children, st->n_children, body, visit, arg);
            free(body);
        }
        free(at);
    }
}

static void check_step_destinations(void *found, const struct defn_step *st, const char *ptr)
{
    if (st->kind == DEFN_STEP_ACTIVITY) {
        check_destination(found, st->activity.url, ptr, "activity");
        if (st->compensate)
            check_destination(found, st->compensate->url, ptr, "compensate");
    }
}

int defn_check_destinations(struct defn **d, json_t **errors)
{
    json_t *found = json_array();
    each_step((*d)->steps, (*d)->n_steps, "/steps", check_step_destinations, found);
    if (json_array_size(found) == 0) {
        json_decref(found);
        return 0;
    }
    defn_free(*d);
    *d = NULL;
    *errors = found;
    return -1;
}

/* ---- retry policies ---------------------------------------------------------------------- */

/* The fields one retry object gives; the rest come from defaults.retry or the built-ins. */
struct retry_spec {
    bool has_max_attempts, has_initial, has_coef, has_max, has_nre;
    int max_attempts;
    int64_t initial_ms;
    double coef;
    int64_t max_ms;
    const json_t *nre; /* borrowed from the document */
    char *ptr;         /* owned pointer of the retry object; NULL when there is none */
};

static void retry_spec_free(struct retry_spec *s)
{
    free(s->ptr);
    s->ptr = NULL;
}

static void parse_retry_spec(struct parser *p, const json_t *v, const char *ptr,
                             struct retry_spec *s)
{
    static const char *const fields[] = {"max_attempts",         "initial_interval",
                                         "backoff_coefficient",  "max_interval",
                                         "non_retryable_errors", NULL};
    s->ptr = xstrdup(ptr);
    if (!json_is_object(v)) {
        add_error(p, ptr, "must be an object");
        return;
    }
    check_fields(p, v, ptr, fields);

    const json_t *m = json_object_get(v, "max_attempts");
    if (m) {
        char *at = ptr_key(ptr, "max_attempts");
        if (!json_is_integer(m))
            add_error(p, at, "must be an integer");
        else if (json_integer_value(m) < 1)
            add_error(p, at, "must be at least 1 (1 means no retry)");
        else if (json_integer_value(m) > INT_MAX)
            add_error(p, at, "must be at most %d", INT_MAX);
        else {
            s->has_max_attempts = true;
            s->max_attempts = (int)json_integer_value(m);
        }
        free(at);
    }

    s->has_initial = get_duration(p, v, "initial_interval", ptr, true, &s->initial_ms) == 1;

    const json_t *c = json_object_get(v, "backoff_coefficient");
    if (c) {
        char *at = ptr_key(ptr, "backoff_coefficient");
        if (!json_is_number(c))
            add_error(p, at, "must be a number");
        else if (!(json_number_value(c) >= 1.0))
            add_error(p, at, "must be at least 1.0");
        else {
            s->has_coef = true;
            s->coef = json_number_value(c);
        }
        free(at);
    }

    s->has_max = get_duration(p, v, "max_interval", ptr, true, &s->max_ms) == 1;

    const json_t *n = json_object_get(v, "non_retryable_errors");
    if (n) {
        char *at = ptr_key(ptr, "non_retryable_errors");
        if (!json_is_array(n)) {
            add_error(p, at, "must be an array of error type strings");
        } else {
            bool ok = true;
            for (size_t i = 0; i < json_array_size(n); i++) {
                const json_t *e = json_array_get(n, i);
                if (!json_is_string(e) || json_string_length(e) == 0) {
                    char *eat = ptr_index(at, i);
                    add_error(p, eat, "must be a non-empty string");
                    free(eat);
                    ok = false;
                }
            }
            if (ok) {
                s->has_nre = true;
                s->nre = n;
            }
        }
        free(at);
    }
}

/* Resolves own over base over the built-ins, then checks that max_interval is not below
 * initial_interval, reporting it where own set one of them (base's own check reports the rest). */
static void resolve_retry(struct parser *p, const struct retry_spec *base,
                          const struct retry_spec *own, int default_attempts,
                          struct defn_retry *out)
{
    const struct retry_spec none = {0};
    if (!base)
        base = &none;
    if (!own)
        own = &none;
    out->max_attempts = own->has_max_attempts    ? own->max_attempts
                        : base->has_max_attempts ? base->max_attempts
                                                 : default_attempts;
    out->initial_interval_ms = own->has_initial    ? own->initial_ms
                               : base->has_initial ? base->initial_ms
                                                   : DEFN_DEFAULT_INITIAL_INTERVAL_MS;
    out->backoff_coefficient = own->has_coef    ? own->coef
                               : base->has_coef ? base->coef
                                                : DEFN_DEFAULT_BACKOFF_COEFFICIENT;
    out->max_interval_ms = own->has_max ? own->max_ms
                           : base->has_max
                               ? base->max_ms
                               : out->initial_interval_ms * DEFN_DEFAULT_MAX_INTERVAL_FACTOR;
    const json_t *nre = own->has_nre ? own->nre : base->has_nre ? base->nre : NULL;
    out->n_non_retryable_errors = json_array_size(nre);
    out->non_retryable_errors =
        out->n_non_retryable_errors
            ? xcalloc(out->n_non_retryable_errors, sizeof *out->non_retryable_errors)
            : NULL;
    for (size_t i = 0; i < out->n_non_retryable_errors; i++)
        out->non_retryable_errors[i] = xstrdup(json_string_value(json_array_get(nre, i)));

    if (out->max_interval_ms >= out->initial_interval_ms || !own->ptr)
        return;
    if (!own->has_max && !own->has_initial)
        return;
    char max_text[32], initial_text[32];
    defn_format_duration(out->max_interval_ms, max_text);
    defn_format_duration(out->initial_interval_ms, initial_text);
    char *at = ptr_key(own->ptr, own->has_max ? "max_interval" : "initial_interval");
    add_error(p, at, "max_interval (%s) must be at least initial_interval (%s)", max_text,
              initial_text);
    free(at);
}

static void retry_free(struct defn_retry *r)
{
    for (size_t i = 0; i < r->n_non_retryable_errors; i++)
        free(r->non_retryable_errors[i]);
    free(r->non_retryable_errors);
    r->non_retryable_errors = NULL;
    r->n_non_retryable_errors = 0;
}

/* ---- defaults ---------------------------------------------------------------------------- */

struct defaults {
    bool has_timeout, has_s2c, has_heartbeat;
    int64_t timeout_ms, s2c_ms, heartbeat_ms;
    struct retry_spec retry;
};

static void parse_defaults(struct parser *p, const json_t *v, struct defaults *d)
{
    static const char *const fields[] = {"timeout", "retry", "schedule_to_close",
                                         "heartbeat_timeout", NULL};
    if (!json_is_object(v)) {
        add_error(p, "/defaults", "must be an object");
        return;
    }
    check_fields(p, v, "/defaults", fields);
    d->has_timeout = get_duration(p, v, "timeout", "/defaults", true, &d->timeout_ms) == 1;
    d->has_s2c = get_duration(p, v, "schedule_to_close", "/defaults", true, &d->s2c_ms) == 1;
    d->has_heartbeat =
        get_duration(p, v, "heartbeat_timeout", "/defaults", true, &d->heartbeat_ms) == 1;
    const json_t *r = json_object_get(v, "retry");
    if (r) {
        parse_retry_spec(p, r, "/defaults/retry", &d->retry);
        /* Checks defaults.retry's own intervals once, so each step need not repeat it. */
        struct defn_retry check = {0};
        resolve_retry(p, NULL, &d->retry, DEFN_DEFAULT_MAX_ATTEMPTS, &check);
        retry_free(&check);
    }
}

/* ---- steps ------------------------------------------------------------------------------- */

/* Indexed by enum defn_step_kind. */
static const char *const KIND_NAMES[] = {"activity", "sleep", "sleep_until", "wait", "parallel",
                                         "for_each", "set",   "fail",        "if",   "workflow"};
#define N_KINDS (sizeof KIND_NAMES / sizeof KIND_NAMES[0])

static void activity_free(struct defn_activity *a)
{
    json_decref(a->url);
    json_decref(a->input);
    expr_template_free(a->url_expr);
    expr_template_free(a->input_expr);
    retry_free(&a->retry);
    memset(a, 0, sizeof *a);
}

static void step_free(struct defn_step *st)
{
    free(st->id);
    activity_free(&st->activity);
    if (st->compensate) {
        activity_free(st->compensate);
        free(st->compensate);
    }
    json_decref(st->sleep_until);
    expr_template_free(st->sleep_until_expr);
    json_decref(st->set);
    expr_template_free(st->set_expr);
    json_decref(st->fail);
    expr_template_free(st->fail_expr);
    free(st->signal);
    for (size_t i = 0; i < st->n_any; i++)
        free(st->any[i]);
    free(st->any);
    for (size_t b = 0; b < st->n_branches; b++) {
        free(st->branches[b].name);
        for (size_t i = 0; i < st->branches[b].n_steps; i++)
            step_free(&st->branches[b].steps[i]);
        free(st->branches[b].steps);
    }
    free(st->branches);
    json_decref(st->items);
    expr_template_free(st->items_expr);
    json_decref(st->cond);
    expr_template_free(st->cond_expr);
    free(st->child_workflow);
    json_decref(st->child_input);
    expr_template_free(st->child_input_expr);
    for (size_t i = 0; i < st->n_children; i++)
        step_free(&st->children[i]);
    free(st->children);
    memset(st, 0, sizeof *st);
}

/* Reads url and input of an activity-like object (activity or compensate). */
static void parse_call(struct parser *p, const json_t *v, const char *ptr,
                       const struct step_rec *step, enum ref_rule rule, struct defn_activity *a)
{
    check_url(p, v, ptr, step, rule, a);
    const json_t *input = json_object_get(v, "input");
    if (input) {
        char *at = ptr_key(ptr, "input");
        a->input = json_deep_copy(input);
        a->input_expr = compile_template(p, a->input, at, step, rule);
        free(at);
    } else {
        a->input = json_null();
        a->input_expr = compile_plain(p, a->input);
    }
}

static void parse_compensate(struct parser *p, const json_t *v, const char *ptr,
                             const struct step_rec *step, const struct defaults *dflt,
                             struct defn_step *st)
{
    static const char *const fields[] = {"url", "input", "retry", "timeout", NULL};
    if (!json_is_object(v)) {
        add_error(p, ptr, "must be an object");
        return;
    }
    check_fields(p, v, ptr, fields);
    struct defn_activity *c = xcalloc(1, sizeof *c);
    st->compensate = c;
    parse_call(p, v, ptr, step, REF_BEFORE_OR_SELF, c);

    c->timeout_ms = dflt->has_timeout ? dflt->timeout_ms : DEFN_DEFAULT_TIMEOUT_MS;
    (void)get_duration(p, v, "timeout", ptr, true, &c->timeout_ms);
    c->schedule_to_close_ms = 0;
    c->heartbeat_timeout_ms = dflt->has_heartbeat ? dflt->heartbeat_ms : 0;

    struct retry_spec own = {0};
    const json_t *r = json_object_get(v, "retry");
    if (r) {
        char *at = ptr_key(ptr, "retry");
        parse_retry_spec(p, r, at, &own);
        free(at);
    }
    int attempts = DEFN_DEFAULT_COMPENSATE_MAX_ATTEMPTS;
    if (dflt->retry.has_max_attempts && dflt->retry.max_attempts > attempts)
        attempts = dflt->retry.max_attempts;
    /* The built-in count here must beat defaults.retry's, so it goes in as the base's own. */
    struct retry_spec base = dflt->retry;
    base.has_max_attempts = true;
    base.max_attempts = attempts;
    resolve_retry(p, &base, &own, attempts, &c->retry);
    retry_spec_free(&own);
}

static bool valid_signal(const json_t *v)
{
    return json_is_string(v) && valid_token(v, 128, "_.:-");
}

#define SIGNAL_NAME_RULE "must be 1 to 128 characters of A-Z, a-z, 0-9, _, ., : and -"

/* {"signal": name} or {"any": [names]}, and an optional timeout. */
static void parse_wait(struct parser *p, const json_t *v, const char *ptr, struct defn_step *st)
{
    static const char *const fields[] = {"signal", "any", "timeout", NULL};
    if (!json_is_object(v)) {
        add_error(p, ptr, "must be an object such as {\"signal\": \"approve\"}");
        return;
    }
    check_fields(p, v, ptr, fields);
    const json_t *sig = json_object_get(v, "signal");
    const json_t *any = json_object_get(v, "any");
    if (!sig && !any) {
        add_error(p, ptr, "missing required field \"signal\" (or \"any\" for several)");
    } else if (sig && any) {
        add_error(p, ptr,
                  "has both \"signal\" and \"any\": wait for one signal, or any of several");
    } else if (sig) {
        char *at = ptr_key(ptr, "signal");
        if (!json_is_string(sig))
            add_error(p, at, "must be a string");
        else if (!valid_signal(sig))
            add_error(p, at, SIGNAL_NAME_RULE);
        else
            st->signal = xstrdup(json_string_value(sig));
        free(at);
    } else {
        char *at = ptr_key(ptr, "any");
        size_t n = json_array_size(any);
        if (!json_is_array(any) || n == 0 || n > DEFN_WAIT_MAX_ANY) {
            add_error(p, at, "must be an array of 1 to %d signal names", DEFN_WAIT_MAX_ANY);
        } else {
            bool ok = true;
            for (size_t i = 0; i < n; i++) {
                const json_t *name = json_array_get(any, i);
                char *nat = ptr_index(at, i);
                if (!valid_signal(name)) {
                    add_error(p, nat, SIGNAL_NAME_RULE);
                    ok = false;
                } else {
                    for (size_t k = 0; k < i; k++)
                        if (json_equal(name, json_array_get(any, k))) {
                            add_error(p, nat, "\"%s\" is already in the list",
                                      json_string_value(name));
                            ok = false;
                            break;
                        }
                }
                free(nat);
            }
            if (ok) {
                st->any = xcalloc(n, sizeof *st->any);
                for (size_t i = 0; i < n; i++)
                    st->any[i] = xstrdup(json_string_value(json_array_get(any, i)));
                st->n_any = n;
            }
        }
        free(at);
    }
    (void)get_duration(p, v, "timeout", ptr, true, &st->wait_timeout_ms);
}

struct child_visit {
    void (*fn)(void *arg, const char *pointer, const char *name);
    void *arg;
};

static void visit_child(void *arg, const struct defn_step *st, const char *ptr)
{
    const struct child_visit *v = arg;
    if (st->kind != DEFN_STEP_WORKFLOW || !st->child_workflow)
        return;
    char *name_at = xasprintf("%s/workflow/name", ptr);
    v->fn(v->arg, name_at, st->child_workflow);
    free(name_at);
}

const struct defn *defn_code(void)
{
    static struct defn_step root = {.id = "", .kind = DEFN_STEP_CODE};
    static const struct defn code = {.name = "", .steps = &root, .n_steps = 1};
    return &code;
}

void defn_each_child_workflow(const struct defn *d,
                              void (*fn)(void *arg, const char *pointer, const char *name),
                              void *arg)
{
    struct child_visit v = {fn, arg};
    if (d && fn)
        each_step(d->steps, d->n_steps, "/steps", visit_child, &v);
}

bool defn_wait_accepts(const struct defn_step *st, const char *name)
{
    if (!name)
        return false;
    if (st->signal)
        return !strcmp(st->signal, name);
    for (size_t i = 0; i < st->n_any; i++)
        if (!strcmp(st->any[i], name))
            return true;
    return false;
}

static void parse_sleep_until(struct parser *p, const json_t *v, const char *ptr,
                              const struct step_rec *step, struct defn_step *st)
{
    const char *s = json_string_value(v);
    int64_t ms;
    if (s && has_expression(p, s, json_string_length(v))) {
        st->sleep_until = json_deep_copy(v);
        st->sleep_until_expr = compile_template(p, st->sleep_until, ptr, step, REF_BEFORE);
    } else if (s && strlen(s) == json_string_length(v) && time_parse_rfc3339(s, &ms)) {
        st->sleep_until = json_deep_copy(v);
        st->sleep_until_expr = compile_plain(p, st->sleep_until);
    } else if (p->literal) {
        add_error(p, ptr, "must be an RFC 3339 time such as \"2030-01-31T09:00:00Z\"");
    } else {
        add_error(p, ptr,
                  "must be an RFC 3339 time such as \"2030-01-31T09:00:00Z\" or an expression "
                  "such as \"${input.deliver_at}\"");
    }
}

static void parse_list(struct parser *p, const struct rec_list *l, const char *ptr,
                       const struct defaults *dflt, struct defn_step **out, size_t *n_out);

/* A parallel: {"branches": {"<name>": [steps], ...}}, stored sorted by name. */
static void parse_parallel(struct parser *p, const struct step_rec *rec, const json_t *v,
                           const char *ptr, const struct defaults *dflt, struct defn_step *st)
{
    static const char *const fields[] = {"branches", NULL};
    if (!json_is_object(v)) {
        add_error(p, ptr,
                  "must be an object such as {\"branches\": {\"email\": [steps], \"sms\": "
                  "[steps]}}");
        return;
    }
    check_fields(p, v, ptr, fields);
    const json_t *branches = json_object_get(v, "branches");
    char *at = ptr_key(ptr, "branches");
    if (!branches) {
        add_error(p, ptr, "missing required field \"branches\"");
    } else if (!json_is_object(branches)) {
        add_error(p, at,
                  "must be an object of named step lists such as {\"email\": [steps], \"sms\": "
                  "[steps]}");
    } else if (json_object_size(branches) == 0) {
        add_error(p, at, "must have at least one branch");
    } else {
        /* The records hold the branches in name order, as they are stored. */
        st->n_branches = rec->n_lists;
        st->branches = xcalloc(st->n_branches, sizeof *st->branches);
        for (size_t b = 0; b < rec->n_lists; b++) {
            const struct rec_list *l = &rec->lists[b];
            char *bat = ptr_key(at, l->name);
            if (!valid_chars(l->name, strlen(l->name), 64, "_-"))
                add_error(p, bat,
                          "a branch name must be 1 to 64 characters of A-Z, a-z, 0-9, _ and -");
            st->branches[b].name = xstrdup(l->name);
            parse_list(p, l, bat, dflt, &st->branches[b].steps, &st->branches[b].n_steps);
            free(bat);
        }
    }
    free(at);
}

/* A for_each: {"items": template, "concurrency"?: 1..1000, "steps": [steps]}. */
static void parse_for_each(struct parser *p, const struct step_rec *rec, const json_t *v,
                           const char *ptr, const struct defaults *dflt, struct defn_step *st)
{
    static const char *const fields[] = {"items", "concurrency", "steps", NULL};
    st->concurrency = DEFN_FOR_EACH_DEFAULT_CONCURRENCY;
    if (!json_is_object(v)) {
        add_error(p, ptr,
                  "must be an object such as {\"items\": \"${input.orders}\", \"steps\": [steps]}");
        return;
    }
    check_fields(p, v, ptr, fields);

    const json_t *items = json_object_get(v, "items");
    if (!items) {
        add_error(p, ptr, "missing required field \"items\"");
    } else {
        char *at = ptr_key(ptr, "items");
        const char *s = json_string_value(items);
        if (json_is_array(items) || (s && expr_has_expression(s, json_string_length(items)))) {
            /* The items are evaluated before the loop starts: outside it, like the step's
             * other fields. */
            st->items = json_deep_copy(items);
            st->items_expr = compile_template(p, st->items, at, rec, REF_BEFORE);
        } else {
            add_error(p, at,
                      "must be an array, or an expression such as \"${input.orders}\" that "
                      "evaluates to one");
        }
        free(at);
    }

    const json_t *c = json_object_get(v, "concurrency");
    if (c) {
        json_int_t n = json_is_integer(c) ? json_integer_value(c) : 0;
        if (n < 1 || n > DEFN_FOR_EACH_MAX_CONCURRENCY) {
            char *at = ptr_key(ptr, "concurrency");
            add_error(p, at, "must be an integer from 1 to %d", DEFN_FOR_EACH_MAX_CONCURRENCY);
            free(at);
        } else {
            st->concurrency = (int)n;
        }
    }

    if (!json_object_get(v, "steps")) {
        add_error(p, ptr, "missing required field \"steps\"");
    } else {
        char *at = ptr_key(ptr, "steps");
        parse_list(p, &rec->lists[0], at, dflt, &st->children, &st->n_children);
        free(at);
    }
}

/* {"type": "Rejected", "message"?: "..."}: the type is what non_retryable_errors and a
 * reader match on, so it is a literal; the message may be a template. */
static void parse_fail(struct parser *p, const json_t *v, const char *ptr,
                       const struct step_rec *step, struct defn_step *st)
{
    if (!json_is_object(v)) {
        add_error(p, ptr,
                  "must be an object such as {\"type\": \"Rejected\", \"message\": \"...\"}");
        return;
    }
    static const char *const fields[] = {"type", "message", NULL};
    check_fields(p, v, ptr, fields);
    bool ok = true;
    const json_t *type = json_object_get(v, "type");
    char *at = ptr_key(ptr, "type");
    if (!type) {
        add_error(p, ptr, "missing required field \"type\"");
        ok = false;
    } else if (!json_is_string(type) || json_string_length(type) == 0 ||
               json_string_length(type) > 128) {
        add_error(p, at, "must be a string of 1 to 128 characters");
        ok = false;
    } else if (expr_has_expression(json_string_value(type), json_string_length(type))) {
        add_error(p, at, "must be a literal string (error types are matched as written)");
        ok = false;
    }
    free(at);
    const json_t *message = json_object_get(v, "message");
    if (message && !json_is_string(message)) {
        at = ptr_key(ptr, "message");
        add_error(p, at, "must be a string");
        free(at);
        ok = false;
    }
    if (!ok)
        return;
    st->fail = json_deep_copy(v);
    st->fail_expr = compile_template(p, st->fail, ptr, step, REF_BEFORE);
}

/* {"name": workflow, "version"?: n, "input"?: template}: the child execution a workflow step
 * starts. */
static void parse_child(struct parser *p, const struct step_rec *rec, const json_t *v,
                        const char *ptr, struct defn_step *st)
{
    static const char *const fields[] = {"name", "version", "input", NULL};
    if (!json_is_object(v)) {
        add_error(p, ptr, "must be an object such as {\"name\": \"shipping\", \"input\": {...}}");
        return;
    }
    check_fields(p, v, ptr, fields);
    const json_t *name = json_object_get(v, "name");
    char *at = ptr_key(ptr, "name");
    if (!name)
        add_error(p, ptr, "missing required field \"name\" (the workflow to start)");
    else if (!json_is_string(name) || !valid_token(name, 128, "_.-") ||
             !strcmp(json_string_value(name), ".") || !strcmp(json_string_value(name), ".."))
        add_error(p, at,
                  "must be a workflow name: 1 to 128 characters of A-Z, a-z, 0-9, _, . and - "
                  "(written as is, no expressions)");
    else
        st->child_workflow = xstrdup(json_string_value(name));
    free(at);
    const json_t *version = json_object_get(v, "version");
    if (version) {
        json_int_t n = json_is_integer(version) ? json_integer_value(version) : 0;
        if (n < 1 || n > INT_MAX) {
            at = ptr_key(ptr, "version");
            add_error(p, at, "must be a positive integer (leave it out for the latest version)");
            free(at);
        } else {
            st->child_version = (int)n;
        }
    }
    const json_t *input = json_object_get(v, "input");
    st->child_input = input ? json_deep_copy(input) : json_null();
    at = ptr_key(ptr, "input");
    st->child_input_expr = compile_template(p, st->child_input, at, rec, REF_BEFORE);
    free(at);
}

/* An if: the condition (the step's "if"), "then" and the optional "else", both step lists of
 * the step itself. */
static void parse_if(struct parser *p, const struct step_rec *rec, const json_t *cond,
                     const char *ptr, const struct defaults *dflt, struct defn_step *st)
{
    char *at = ptr_key(ptr, "if");
    const char *s = json_string_value(cond);
    if (!s || !expr_has_expression(s, json_string_length(cond))) {
        add_error(p, at, "must be a condition such as \"${input.total > 1000}\"");
    } else {
        st->cond = json_deep_copy(cond);
        int malformed = 0;
        st->cond_expr = compile_template_counting(p, st->cond, at, rec, REF_BEFORE, &malformed);
        /* A malformed condition has its own error; "one expression" would only repeat it. */
        if (!malformed && !expr_template_is_value(st->cond_expr))
            add_error(p, at,
                      "must be exactly one ${...} expression, with no text around it (text "
                      "makes it a string, never true or false)");
    }
    free(at);
    static const char *const lists[] = {"then", "else"};
    st->n_branches = rec->n_lists;
    st->branches = rec->n_lists ? xcalloc(rec->n_lists, sizeof *st->branches) : NULL;
    for (size_t b = 0; b < rec->n_lists; b++) {
        char *bat = ptr_key(ptr, lists[b]);
        st->branches[b].name = xstrdup(lists[b]);
        if (rec->lists[b].steps)
            parse_list(p, &rec->lists[b], bat, dflt, &st->branches[b].steps,
                       &st->branches[b].n_steps);
        free(bat);
    }
    if (!json_object_get(rec->json, "then"))
        add_error(p, ptr,
                  "missing required field \"then\" (the steps to run when the condition "
                  "is true)");
}

static void parse_step(struct parser *p, const struct step_rec *rec, const struct defaults *dflt,
                       struct defn_step *st)
{
    static const char *const fields[] = {"id",
                                         "activity",
                                         "sleep",
                                         "sleep_until",
                                         "wait",
                                         "parallel",
                                         "for_each",
                                         "set",
                                         "fail",
                                         "if",
                                         "then",
                                         "else",
                                         "workflow",
                                         "on_timeout",
                                         "timeout",
                                         "schedule_to_close",
                                         "heartbeat_timeout",
                                         "retry",
                                         "compensate",
                                         NULL};
    const json_t *v = rec->json;
    const char *ptr = rec->ptr;
    if (rec->depth > DEFN_MAX_STEP_DEPTH) {
        /* Checked before anything else, so that nothing recurses deeper. */
        add_error(p, ptr, "steps are nested too deeply (at most %d levels)", DEFN_MAX_STEP_DEPTH);
        return;
    }
    if (!json_is_object(v)) {
        add_error(p, ptr, "a step must be an object");
        return;
    }
    check_fields(p, v, ptr, fields);

    const json_t *id = json_object_get(v, "id");
    if (!id) {
        add_error(p, ptr, "missing required field \"id\"");
    } else {
        char *at = ptr_key(ptr, "id");
        if (!json_is_string(id)) {
            add_error(p, at, "must be a string");
        } else if (!valid_token(id, 64, "_-")) {
            add_error(p, at, "must be 1 to 64 characters of A-Z, a-z, 0-9, _ and -");
        } else {
            st->id = xstrdup(json_string_value(id));
            const struct step_rec *first = step_rec_of(p, st->id);
            if (first && first != rec)
                add_error(p, at, "duplicate step id \"%s\" (also used by %s)", st->id, first->ptr);
        }
        free(at);
    }

    /* The kind decides which other fields apply. */
    size_t n_kinds = 0, kind = 0;
    for (size_t k = 0; k < N_KINDS; k++) {
        if (json_object_get(v, KIND_NAMES[k])) {
            if (n_kinds == 1)
                add_error(p, ptr, "a step has exactly one kind, but this one has both %s and %s",
                          KIND_NAMES[kind], KIND_NAMES[k]);
            if (n_kinds == 0)
                kind = k;
            n_kinds++;
        }
    }
    if (n_kinds == 0)
        add_error(p, ptr,
                  "a step needs one of activity, sleep, sleep_until, wait, parallel, for_each, "
                  "set, fail, if or workflow");
    bool known = n_kinds == 1;
    st->kind = (enum defn_step_kind)kind;

    if (known) {
        char *at = ptr_key(ptr, KIND_NAMES[kind]);
        const json_t *body = json_object_get(v, KIND_NAMES[kind]);
        switch (st->kind) {
        case DEFN_STEP_ACTIVITY:
            if (!json_is_object(body)) {
                add_error(p, at, "must be an object such as {\"url\": \"https://...\"}");
            } else {
                static const char *const afields[] = {"url", "input", NULL};
                check_fields(p, body, at, afields);
                parse_call(p, body, at, rec, REF_BEFORE, &st->activity);
            }
            break;
        case DEFN_STEP_SLEEP: {
            const char *why = NULL;
            if (!defn_parse_duration(body, &st->sleep_ms, &why))
                add_error(p, at, "%s", why);
            break;
        }
        case DEFN_STEP_SLEEP_UNTIL:
            parse_sleep_until(p, body, at, rec, st);
            break;
        case DEFN_STEP_WAIT:
            parse_wait(p, body, at, st);
            break;
        case DEFN_STEP_PARALLEL:
            parse_parallel(p, rec, body, at, dflt, st);
            break;
        case DEFN_STEP_FOR_EACH:
            parse_for_each(p, rec, body, at, dflt, st);
            break;
        case DEFN_STEP_SET:
            st->set = json_deep_copy(body);
            st->set_expr = compile_template(p, st->set, at, rec, REF_BEFORE);
            break;
        case DEFN_STEP_FAIL:
            parse_fail(p, body, at, rec, st);
            break;
        case DEFN_STEP_IF:
            parse_if(p, rec, body, ptr, dflt, st);
            break;
        case DEFN_STEP_WORKFLOW:
            parse_child(p, rec, body, at, st);
            break;
        case DEFN_STEP_CODE:
            break; /* not in KIND_NAMES: never parsed */
        }
        free(at);
    }
    /* then and else belong to an if; elsewhere their steps would silently never run. */
    static const char *const if_only[] = {"then", "else"};
    for (size_t k = 0; k < 2; k++) {
        if (known && st->kind != DEFN_STEP_IF && json_object_get(v, if_only[k])) {
            char *at = ptr_key(ptr, if_only[k]);
            add_error(p, at, "applies only to if steps");
            free(at);
        }
    }
    bool activity = known && st->kind == DEFN_STEP_ACTIVITY;

    /* Fields that only activities have: checked for their values whenever the kind is unclear,
     * so that one mistake does not hide another. */
    static const char *const activity_only[] = {"timeout", "schedule_to_close", "heartbeat_timeout",
                                                "retry", "compensate"};
    for (size_t k = 0; k < sizeof activity_only / sizeof activity_only[0]; k++) {
        if (known && !activity && json_object_get(v, activity_only[k])) {
            char *at = ptr_key(ptr, activity_only[k]);
            add_error(p, at, "applies only to activity steps%s",
                      st->kind == DEFN_STEP_WAIT && k == 0
                          ? "; a wait's timeout goes in wait.timeout"
                          : "");
            free(at);
        }
    }
    if (!known || activity) {
        struct defn_activity *a = &st->activity;
        a->timeout_ms = dflt->has_timeout ? dflt->timeout_ms : DEFN_DEFAULT_TIMEOUT_MS;
        a->schedule_to_close_ms = dflt->has_s2c ? dflt->s2c_ms : 0;
        a->heartbeat_timeout_ms = dflt->has_heartbeat ? dflt->heartbeat_ms : 0;
        (void)get_duration(p, v, "timeout", ptr, true, &a->timeout_ms);
        (void)get_duration(p, v, "schedule_to_close", ptr, true, &a->schedule_to_close_ms);
        (void)get_duration(p, v, "heartbeat_timeout", ptr, true, &a->heartbeat_timeout_ms);

        struct retry_spec own = {0};
        const json_t *r = json_object_get(v, "retry");
        if (r) {
            char *at = ptr_key(ptr, "retry");
            parse_retry_spec(p, r, at, &own);
            free(at);
        }
        if (activity)
            resolve_retry(p, &dflt->retry, &own, DEFN_DEFAULT_MAX_ATTEMPTS, &a->retry);
        retry_spec_free(&own);

        const json_t *c = json_object_get(v, "compensate");
        if (c) {
            char *at = ptr_key(ptr, "compensate");
            parse_compensate(p, c, at, rec, dflt, st);
            free(at);
        }
    }

    const json_t *ot = json_object_get(v, "on_timeout");
    if (ot) {
        char *at = ptr_key(ptr, "on_timeout");
        const char *s = json_string_value(ot);
        if (known && st->kind != DEFN_STEP_WAIT)
            add_error(p, at, "applies only to wait steps");
        else if (!s || (strcmp(s, "fail") != 0 && strcmp(s, "continue") != 0))
            add_error(p, at, "must be \"fail\" or \"continue\"");
        else if (known && !json_object_get(json_object_get(v, "wait"), "timeout"))
            add_error(p, at, "has no effect without a wait.timeout");
        else
            st->on_timeout =
                strcmp(s, "continue") == 0 ? DEFN_ON_TIMEOUT_CONTINUE : DEFN_ON_TIMEOUT_FAIL;
        free(at);
    }
}

/* A step list (the definition's steps, a branch, a for_each's steps) at ptr: a non-empty array
 * of steps, parsed into a new array *out of *n_out. */
static void parse_list(struct parser *p, const struct rec_list *l, const char *ptr,
                       const struct defaults *dflt, struct defn_step **out, size_t *n_out)
{
    if (!json_is_array(l->steps)) {
        add_error(p, ptr, "must be an array of steps");
    } else if (l->n == 0) {
        add_error(p, ptr, "must have at least one step");
    } else {
        *n_out = l->n;
        *out = xcalloc(l->n, sizeof **out);
        for (size_t i = 0; i < l->n; i++)
            parse_step(p, &l->items[i], dflt, &(*out)[i]);
    }
}

/* ---- the step tree ----------------------------------------------------------------------- */

static int compare_keys(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void record_step(struct parser *p, struct step_rec *r);

/* Records the steps of the list l (steps, at ptr) held by parent (NULL at the top). */
static void record_list(struct parser *p, struct rec_list *l, const json_t *steps, const char *ptr,
                        const struct step_rec *parent, size_t list, int depth)
{
    l->steps = steps;
    l->n = json_is_array(steps) ? json_array_size(steps) : 0;
    l->items = l->n ? xcalloc(l->n, sizeof *l->items) : NULL;
    for (size_t i = 0; i < l->n; i++) {
        struct step_rec *r = &l->items[i];
        r->ptr = ptr_index(ptr, i);
        r->json = json_array_get(steps, i);
        r->parent = parent;
        r->list = list;
        r->index = i;
        r->depth = depth;
        record_step(p, r);
    }
}

/* Records r's id (the first step with an id owns it) and, when r holds steps, its lists, as
 * parsing will walk them: the kind is the first one the step has, in KIND_NAMES order. Steps
 * deeper than DEFN_MAX_STEP_DEPTH are recorded for their pointer only, which bounds the
 * recursion. */
static void record_step(struct parser *p, struct step_rec *r)
{
    if (r->depth > DEFN_MAX_STEP_DEPTH || !json_is_object(r->json))
        return;
    const json_t *id = json_object_get(r->json, "id");
    if (json_is_string(id) && valid_token(id, 64, "_-")) {
        r->id = json_string_value(id);
        if (!json_object_get(p->ids, r->id)) {
            if (p->n_order == p->cap_order) {
                p->cap_order = p->cap_order ? 2 * p->cap_order : 64;
                p->order = xrealloc(p->order, p->cap_order * sizeof *p->order);
            }
            json_object_set_new(p->ids, r->id, json_integer((json_int_t)p->n_order));
            p->order[p->n_order++] = r;
        }
    }
    size_t kind = N_KINDS;
    for (size_t k = 0; k < N_KINDS && kind == N_KINDS; k++)
        if (json_object_get(r->json, KIND_NAMES[k]))
            kind = k;
    const json_t *body = kind < N_KINDS ? json_object_get(r->json, KIND_NAMES[kind]) : NULL;
    if (kind == DEFN_STEP_PARALLEL) {
        r->kind = REC_PARALLEL;
        const json_t *branches = json_object_get(body, "branches");
        size_t n = json_is_object(branches) ? json_object_size(branches) : 0;
        if (n == 0)
            return;
        const char **names = xcalloc(n, sizeof *names);
        const char *key;
        json_t *value;
        size_t k = 0;
        json_object_foreach((json_t *)branches, key, value)
        {
            (void)value;
            names[k++] = key;
        }
        qsort(names, n, sizeof *names, compare_keys);
        r->n_lists = n;
        r->lists = xcalloc(n, sizeof *r->lists);
        char *at = xasprintf("%s/parallel/branches", r->ptr);
        for (size_t b = 0; b < n; b++) {
            char *bat = ptr_key(at, names[b]);
            r->lists[b].name = names[b];
            record_list(p, &r->lists[b], json_object_get(branches, names[b]), bat, r, b,
                        r->depth + 1);
            free(bat);
        }
        free(at);
        free(names);
    } else if (kind == DEFN_STEP_IF) {
        r->kind = REC_IF;
        /* then is list 0 even when missing, so that else is always list 1. */
        bool has_else = json_object_get(r->json, "else") != NULL;
        r->n_lists = has_else ? 2 : 1;
        r->lists = xcalloc(r->n_lists, sizeof *r->lists);
        static const char *const names[] = {"then", "else"};
        for (size_t b = 0; b < r->n_lists; b++) {
            char *at = ptr_key(r->ptr, names[b]);
            r->lists[b].name = names[b];
            record_list(p, &r->lists[b], json_object_get(r->json, names[b]), at, r, b,
                        r->depth + 1);
            free(at);
        }
    } else if (kind == DEFN_STEP_FOR_EACH) {
        r->kind = REC_FOR_EACH;
        r->n_lists = 1;
        r->lists = xcalloc(1, sizeof *r->lists);
        char *at = xasprintf("%s/for_each/steps", r->ptr);
        record_list(p, &r->lists[0], json_object_get(body, "steps"), at, r, 0, r->depth + 1);
        free(at);
    }
}

static void rec_list_free(struct rec_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        struct step_rec *r = &l->items[i];
        free(r->ptr);
        for (size_t b = 0; b < r->n_lists; b++)
            rec_list_free(&r->lists[b]);
        free(r->lists);
    }
    free(l->items);
    memset(l, 0, sizeof *l);
}

/* ---- the definition ---------------------------------------------------------------------- */

static void parse_doc(struct parser *p, const json_t *doc, struct defn *d)
{
    static const char *const fields[] = {"name",  "description", "defaults",
                                         "steps", "output",      NULL};
    struct defaults dflt = {0};
    if (!json_is_object(doc)) {
        add_error(p, "", "a definition must be a JSON object");
        return;
    }
    check_fields(p, doc, "", fields);

    const json_t *name = json_object_get(doc, "name");
    if (!name)
        add_error(p, "", "missing required field \"name\"");
    else if (!json_is_string(name))
        add_error(p, "/name", "must be a string");
    else if (!valid_token(name, 128, "_.-"))
        add_error(p, "/name", "must be 1 to 128 characters of A-Z, a-z, 0-9, _, . and -");
    else if (strcmp(json_string_value(name), ".") == 0 ||
             strcmp(json_string_value(name), "..") == 0)
        add_error(p, "/name", "must not be \".\" or \"..\"");
    else
        d->name = xstrdup(json_string_value(name));

    const json_t *desc = json_object_get(doc, "description");
    if (desc && !json_is_string(desc))
        add_error(p, "/description", "must be a string");
    else if (desc)
        d->description = xstrdup(json_string_value(desc));

    const json_t *defaults = json_object_get(doc, "defaults");
    if (defaults)
        parse_defaults(p, defaults, &dflt);

    const json_t *steps = json_object_get(doc, "steps");
    if (!steps) {
        add_error(p, "", "missing required field \"steps\"");
    } else {
        record_list(p, &p->top, steps, "/steps", NULL, 0, 1);
        parse_list(p, &p->top, "/steps", &dflt, &d->steps, &d->n_steps);
    }

    const json_t *output = json_object_get(doc, "output");
    if (output) {
        d->output = json_deep_copy(output);
        d->output_expr = compile_template(p, d->output, "/output", NULL, REF_OUTPUT);
    }
    retry_spec_free(&dflt.retry);
}

int defn_parse(const json_t *doc, struct defn **out, json_t **errors)
{
    if (!out || !errors)
        return -1;
    struct parser p = {json_array(), json_object(), NULL, 0, 0, {0}, false};
    struct defn *d = xcalloc(1, sizeof *d);
    parse_doc(&p, doc, d);
    json_decref(p.ids);
    free(p.order);
    rec_list_free(&p.top);
    if (json_array_size(p.errors) > 0) {
        defn_free(d);
        *out = NULL;
        *errors = p.errors;
        return -1;
    }
    json_decref(p.errors);
    *out = d;
    *errors = NULL;
    return 0;
}

/* ---- step calls -------------------------------------------------------------------------- */

/* The kinds a step call may have, as the body names them. */
static const char *const CALL_KINDS[] = {"activity", "output", "sleep", "sleep_until", "wait"};
#define N_CALL_KINDS (sizeof CALL_KINDS / sizeof CALL_KINDS[0])

/* Members of a step call's "activity" that a definition writes on the step itself. */
static const char *const CALL_ACTIVITY_SETTINGS[] = {"timeout", "schedule_to_close",
                                                     "heartbeat_timeout", "retry"};
#define N_CALL_ACTIVITY_SETTINGS (sizeof CALL_ACTIVITY_SETTINGS / sizeof CALL_ACTIVITY_SETTINGS[0])

const char *defn_step_call_kind(const json_t *body)
{
    const char *kind = NULL;
    for (size_t k = 0; k < N_CALL_KINDS; k++) {
        if (json_object_get(body, CALL_KINDS[k])) {
            if (kind)
                return NULL;
            kind = CALL_KINDS[k];
        }
    }
    return kind;
}

/* The pointer of a step call's body that the definition-shaped step's pointer ptr stands for
 * (the step's "set" is the call's "output"; its activity settings sit in "activity"). New
 * string. */
static char *call_pointer(const char *ptr)
{
    static const char *const moved[][2] = {
        {"/set", "/output"},
        {"/timeout", "/activity/timeout"},
        {"/schedule_to_close", "/activity/schedule_to_close"},
        {"/heartbeat_timeout", "/activity/heartbeat_timeout"},
        {"/retry", "/activity/retry"},
    };
    for (size_t k = 0; k < sizeof moved / sizeof moved[0]; k++) {
        size_t n = strlen(moved[k][0]);
        if (!strncmp(ptr, moved[k][0], n) && (ptr[n] == '\0' || ptr[n] == '/'))
            return xasprintf("%s%s", moved[k][1], ptr + n);
    }
    return xstrdup(ptr);
}

/* The step a definition would write for a step call's body, or NULL after adding errors for
 * what no definition step can say (the body's own shape). */
static json_t *call_as_step(struct parser *p, const json_t *body)
{
    static const char *const fields[] = {"activity", "output",     "sleep",      "sleep_until",
                                         "wait",     "compensate", "on_timeout", NULL};
    if (!json_is_object(body)) {
        add_error(p, "",
                  "the body must be a JSON object with one of activity, output, sleep, "
                  "sleep_until or wait, such as {\"output\": 42}");
        return NULL;
    }
    check_fields(p, body, "", fields);
    const char *kind = NULL;
    for (size_t k = 0; k < N_CALL_KINDS; k++) {
        if (!json_object_get(body, CALL_KINDS[k]))
            continue;
        if (kind)
            add_error(p, "", "a step call has exactly one kind, but this one has both %s and %s",
                      kind, CALL_KINDS[k]);
        else
            kind = CALL_KINDS[k];
    }
    if (!kind)
        add_error(p, "", "a step call needs one of activity, output, sleep, sleep_until or wait");
    const json_t *activity = json_object_get(body, "activity");
    if (json_object_get(body, "compensate") && kind && strcmp(kind, "activity") != 0)
        add_error(p, "/compensate", "applies only to activity step calls");
    if (json_object_get(body, "on_timeout") && kind && strcmp(kind, "wait") != 0)
        add_error(p, "/on_timeout", "applies only to wait step calls");
    if (activity && !json_is_object(activity))
        add_error(p, "/activity",
                  "must be an object such as {\"url\": \"https://...\", \"input\": {...}}");
    else if (activity) {
        static const char *const afields[] = {
            "url", "input", "timeout", "schedule_to_close", "heartbeat_timeout", "retry", NULL};
        check_fields(p, activity, "/activity", afields);
    }
    if (json_array_size(p->errors) > 0)
        return NULL;

    json_t *step = json_pack("{s:s}", "id", "call");
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)body, key, v)
    {
        if (!strcmp(key, "output")) {
            json_object_set(step, "set", v);
        } else if (!strcmp(key, "activity")) {
            json_t *call = json_object();
            const char *k2;
            json_t *v2;
            json_object_foreach(v, k2, v2)
            {
                bool setting = false;
                for (size_t k = 0; k < N_CALL_ACTIVITY_SETTINGS; k++)
                    setting = setting || !strcmp(k2, CALL_ACTIVITY_SETTINGS[k]);
                json_object_set(setting ? step : call, k2, v2);
            }
            json_object_set_new(step, "activity", call);
        } else {
            json_object_set(step, key, v);
        }
    }
    return step;
}

int defn_parse_step_call(const json_t *body, const char *key, struct defn_step **out,
                         json_t **errors)
{
    if (!out || !errors)
        return -1;
    *out = NULL;
    *errors = NULL;
    struct parser p = {json_array(), json_object(), NULL, 0, 0, {0}, true};
    json_t *step = call_as_step(&p, body);
    struct defn_step *st = NULL;
    size_t own_errors = json_array_size(p.errors);
    if (step) {
        struct step_rec rec = {.ptr = "", .json = step, .id = "call", .depth = 1};
        struct defaults dflt = {0};
        st = xcalloc(1, sizeof *st);
        parse_step(&p, &rec, &dflt, st);
        json_decref(step);
    }
    json_decref(p.ids);
    free(p.order);
    if (json_array_size(p.errors) > 0) {
        /* The step parser's pointers are those of the definition-shaped step. */
        for (size_t i = own_errors; i < json_array_size(p.errors); i++) {
            json_t *e = json_array_get(p.errors, i);
            char *ptr = call_pointer(json_string_value(json_object_get(e, "pointer")));
            json_object_set_new(e, "pointer", json_string(ptr));
            free(ptr);
        }
        defn_step_free(st);
        *errors = p.errors;
        return -1;
    }
    json_decref(p.errors);
    free(st->id);
    st->id = xstrdup(key ? key : "");
    *out = st;
    return 0;
}

void defn_step_free(struct defn_step *st)
{
    if (!st)
        return;
    step_free(st);
    free(st);
}

void defn_free(struct defn *d)
{
    if (d == defn_code())
        return; /* shared and static */
    if (!d)
        return;
    free(d->name);
    free(d->description);
    for (size_t i = 0; i < d->n_steps; i++)
        step_free(&d->steps[i]);
    free(d->steps);
    json_decref(d->output);
    expr_template_free(d->output_expr);
    free(d);
}

int defn_step_index(const struct defn *d, const char *id)
{
    if (!d || !id)
        return -1;
    for (size_t i = 0; i < d->n_steps && i < INT_MAX; i++)
        if (d->steps[i].id && strcmp(d->steps[i].id, id) == 0)
            return (int)i;
    return -1;
}

/* The step with this id in steps[0..n) or anything they hold, or NULL. Definitions nest at
 * most DEFN_MAX_STEP_DEPTH levels, which bounds the recursion. */
static const struct defn_step *find_in(const struct defn_step *steps, size_t n, const char *id)
{
    for (size_t i = 0; i < n; i++) {
        const struct defn_step *st = &steps[i];
        if (st->id && strcmp(st->id, id) == 0)
            return st;
        for (size_t b = 0; b < st->n_branches; b++) {
            const struct defn_step *f = find_in(st->branches[b].steps, st->branches[b].n_steps, id);
            if (f)
                return f;
        }
        const struct defn_step *f = find_in(st->children, st->n_children, id);
        if (f)
            return f;
    }
    return NULL;
}

const struct defn_step *defn_find_step(const struct defn *d, const char *id)
{
    if (!d || !id)
        return NULL;
    return find_in(d->steps, d->n_steps, id);
}

/* ---- retry arithmetic -------------------------------------------------------------------- */

int64_t defn_retry_interval_ms(const struct defn_retry *r, int attempt)
{
    if (!r)
        return 0;
    if (attempt < 1)
        attempt = 1;
    double d = (double)r->initial_interval_ms * pow(r->backoff_coefficient, (double)(attempt - 1));
    /* !(d < max) also catches inf and NaN. */
    if (!(d < (double)r->max_interval_ms))
        return r->max_interval_ms;
    return d < 0 ? 0 : (int64_t)d;
}

bool defn_retry_is_non_retryable(const struct defn_retry *r, const char *error_type)
{
    if (!r || !error_type)
        return false;
    for (size_t i = 0; i < r->n_non_retryable_errors; i++)
        if (strcmp(r->non_retryable_errors[i], error_type) == 0)
            return true;
    return false;
}
