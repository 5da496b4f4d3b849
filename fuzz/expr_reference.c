/* Fuzzing only: the expression interpreter as it was before templates were compiled (it parsed
 * every "${...}" at each evaluation), kept frozen as the reference that fuzz_expr.c compares the
 * compiled evaluator with. #included by fuzz_expr.c; not part of keeld. Do not fix it here: a
 * change of the language belongs in src/defn/expr.c and its tests, and shows up as a difference
 * the driver then has to allow for. The one extension since it was frozen is the loop roots of
 * issue 9 (item, index, loops.<id>.item|index), added here in the same simple style, with the
 * same messages, so that the driver compares them too. */
#include "defn/expr.h"

#include "util/alloc.h"
#include "util/buf.h"
#include "util/jsonlimits.h"
#include "util/jsontext.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- paths ------------------------------------------------------------------------------- */

enum seg_kind {
    SEG_NAME,  /* .name or ["quoted key"]; the root is a SEG_NAME too */
    SEG_INDEX, /* [N] */
};

struct seg {
    enum seg_kind kind;
    char *key; /* SEG_NAME: owned, NUL-terminated, may hold other NULs before key_len */
    size_t key_len;
    size_t index; /* SEG_INDEX */
};

struct path {
    struct seg *segs;
    size_t n;
    size_t cap;
};

/* The largest index accepted; larger ones cannot address any array and would overflow. */
#define MAX_INDEX ((size_t)1 << 40)

static void path_free(struct path *p)
{
    for (size_t i = 0; i < p->n; i++)
        free(p->segs[i].key);
    free(p->segs);
    p->segs = NULL;
    p->n = p->cap = 0;
}

static void path_push(struct path *p, struct seg s)
{
    if (p->n == p->cap) {
        p->cap = p->cap ? 2 * p->cap : 4;
        p->segs = xrealloc(p->segs, p->cap * sizeof *p->segs);
    }
    p->segs[p->n++] = s;
}

static bool is_name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}

static bool is_name(const char *s, size_t len)
{
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!is_name_char(s[i]))
            return false;
    return true;
}

static bool seg_is(const struct seg *s, const char *name)
{
    return s->kind == SEG_NAME && s->key_len == strlen(name) &&
           memcmp(s->key, name, s->key_len) == 0;
}

/* Appends the first n segments of p as path text: input.a["b c"][0]. */
static void path_display(struct buf *b, const struct path *p, size_t n)
{
    for (size_t i = 0; i < n && i < p->n; i++) {
        const struct seg *s = &p->segs[i];
        if (s->kind == SEG_INDEX) {
            buf_printf(b, "[%zu]", s->index);
        } else if (is_name(s->key, s->key_len)) {
            if (i)
                buf_putc(b, '.');
            buf_append(b, s->key, s->key_len);
        } else {
            buf_puts(b, "[\"");
            for (size_t k = 0; k < s->key_len; k++) {
                if (s->key[k] == '"' || s->key[k] == '\\')
                    buf_putc(b, '\\');
                buf_putc(b, s->key[k]);
            }
            buf_puts(b, "\"]");
        }
    }
}

/* ---- parsing ----------------------------------------------------------------------------- */

/* Where an expression failed to parse: msg gets "${raw}: reason". */
static void parse_fail(struct buf *msg, const char *s, size_t len, size_t dollar,
                       const char *reason)
{
    /* Show the expression as written, up to its closing brace or 60 bytes, whichever is first. */
    size_t end = dollar;
    while (end < len && s[end] != '}' && end - dollar < 60)
        end++;
    /* Never cut a UTF-8 sequence: the message must stay valid JSON text. */
    while (end < len && ((unsigned char)s[end] & 0xc0) == 0x80)
        end++;
    buf_reset(msg);
    buf_append(msg, s + dollar, end - dollar);
    if (end < len && s[end] == '}')
        buf_putc(msg, '}');
    else if (end < len)
        buf_puts(msg, "...");
    buf_puts(msg, ": ");
    buf_puts(msg, reason);
}

static void skip_spaces(const char *s, size_t len, size_t *i)
{
    while (*i < len && (s[*i] == ' ' || s[*i] == '\t'))
        (*i)++;
}

/* Parses the quoted key of ["..."] with s[*i] just after the opening quote. */
static bool parse_quoted(const char *s, size_t len, size_t *i, struct buf *key, const char **why)
{
    while (*i < len) {
        char c = s[*i];
        if (c == '"') {
            (*i)++;
            return true;
        }
        if (c == '\\') {
            if (*i + 1 < len && (s[*i + 1] == '"' || s[*i + 1] == '\\')) {
                buf_putc(key, s[*i + 1]);
                *i += 2;
                continue;
            }
            *why = "only \\\" and \\\\ may be escaped in a quoted key";
            return false;
        }
        buf_putc(key, c);
        (*i)++;
    }
    *why = "missing closing quote in a quoted key";
    return false;
}

/* Parses one expression of s. s[dollar] is the '$' of "${"; on success *end is just past the
 * closing '}'. On failure msg holds the reason and p is freed. */
static bool parse_expr(const char *s, size_t len, size_t dollar, size_t *end, struct path *p,
                       struct buf *msg)
{
    size_t i = dollar + 2;
    const char *why = NULL;
    struct buf key = BUF_INIT;

    skip_spaces(s, len, &i);
    if (i < len && s[i] == '}') {
        why = "empty expression";
        goto Exit;
    }
    if (i >= len) {
        why = "missing \"}\" to close the expression";
        goto Exit;
    }
    size_t start = i;
    while (i < len && is_name_char(s[i]))
        i++;
    if (i == start) {
        why = "expected a name (input, steps, execution, item, index or loops) after \"${\"";
        goto Exit;
    }
    path_push(p, (struct seg){SEG_NAME, xstrndup(s + start, i - start), i - start, 0});

    for (;;) {
        if (i >= len) {
            why = "missing \"}\" to close the expression";
            goto Exit;
        }
        char c = s[i];
        if (c == '.') {
            start = ++i;
            while (i < len && is_name_char(s[i]))
                i++;
            if (i == start) {
                why = "expected a field name ([A-Za-z0-9_-]) after \".\"; use [\"...\"] for "
                      "other keys";
                goto Exit;
            }
            path_push(p, (struct seg){SEG_NAME, xstrndup(s + start, i - start), i - start, 0});
        } else if (c == '[') {
            i++;
            if (i < len && s[i] == '"') {
                i++;
                buf_reset(&key);
                if (!parse_quoted(s, len, &i, &key, &why))
                    goto Exit;
                size_t klen = key.len;
                char *k = key.data ? buf_steal(&key) : xstrdup("");
                path_push(p, (struct seg){SEG_NAME, k, klen, 0});
            } else if (i < len && s[i] >= '0' && s[i] <= '9') {
                size_t n = 0;
                while (i < len && s[i] >= '0' && s[i] <= '9') {
                    if (n > MAX_INDEX) {
                        why = "index is too large";
                        goto Exit;
                    }
                    n = n * 10 + (size_t)(s[i] - '0');
                    i++;
                }
                if (n > MAX_INDEX) {
                    why = "index is too large";
                    goto Exit;
                }
                path_push(p, (struct seg){SEG_INDEX, NULL, 0, n});
            } else if (i < len && s[i] == '-') {
                why = "an index must be a non-negative integer";
                goto Exit;
            } else {
                why = "expected an index or a quoted key after \"[\"";
                goto Exit;
            }
            if (i >= len || s[i] != ']') {
                why = "expected \"]\"";
                goto Exit;
            }
            i++;
        } else {
            size_t after = i;
            skip_spaces(s, len, &i);
            if (i < len && s[i] == '}') {
                *end = i + 1;
                buf_free(&key);
                return true;
            }
            if (i >= len) {
                why = "missing \"}\" to close the expression";
                goto Exit;
            }
            buf_reset(msg);
            buf_puts(msg, "unexpected ");
            unsigned char u = (unsigned char)s[after];
            if (u > 0x20 && u < 0x7f)
                buf_printf(msg, "\"%c\"", u);
            else if (u == ' ' || u == '\t')
                buf_puts(msg, "space");
            else
                buf_puts(msg, "character");
            buf_puts(msg, " after \"");
            path_display(msg, p, p->n);
            buf_puts(msg, "\"; expected \".\", \"[\" or \"}\"");
            char *reason = buf_steal(msg);
            parse_fail(msg, s, len, dollar, reason);
            free(reason);
            buf_free(&key);
            path_free(p);
            return false;
        }
    }

Exit:
    parse_fail(msg, s, len, dollar, why);
    buf_free(&key);
    path_free(p);
    return false;
}

/* Checks what a path may look like beyond its syntax. Returns NULL when it is fine, else the
 * reason, written into msg. */
static const char *check_shape(const struct path *p, struct buf *msg)
{
    const struct seg *root = &p->segs[0];
    buf_reset(msg);
    if (seg_is(root, "input"))
        return NULL;
    if (seg_is(root, "steps")) {
        if (p->n < 2) {
            buf_puts(msg, "\"steps\" must be followed by a step id and .output or .error, e.g. "
                          "steps.charge.output");
            return msg->data;
        }
        const struct seg *id = &p->segs[1];
        if (id->kind != SEG_NAME || !is_name(id->key, id->key_len) || id->key_len > 64) {
            buf_puts(msg, "\"steps\" must be followed by a step id ([A-Za-z0-9_-]{1,64}), e.g. "
                          "steps.charge.output");
            return msg->data;
        }
        if (p->n < 3 || !(seg_is(&p->segs[2], "output") || seg_is(&p->segs[2], "error"))) {
            buf_puts(msg, "only .output or .error may follow \"");
            path_display(msg, p, 2);
            buf_puts(msg, "\"");
            return msg->data;
        }
        return NULL;
    }
    if (seg_is(root, "execution")) {
        if (p->n < 2 || !(seg_is(&p->segs[1], "id") || seg_is(&p->segs[1], "workflow"))) {
            buf_puts(msg, "\"execution\" must be followed by .id or .workflow");
            return msg->data;
        }
        if (p->n > 2) {
            buf_puts(msg, "nothing may follow \"");
            path_display(msg, p, 2);
            buf_puts(msg, "\"");
            return msg->data;
        }
        return NULL;
    }
    if (seg_is(root, "item"))
        return NULL;
    if (seg_is(root, "index")) {
        if (p->n == 1)
            return NULL;
        buf_puts(msg, "nothing may follow \"index\"");
        return msg->data;
    }
    if (seg_is(root, "loops")) {
        if (p->n < 2 || p->segs[1].kind != SEG_NAME ||
            !is_name(p->segs[1].key, p->segs[1].key_len) || p->segs[1].key_len > 64) {
            buf_puts(msg, "\"loops\" must be followed by a for_each id ([A-Za-z0-9_-]{1,64}) "
                          "and .item or .index, e.g. loops.orders.item");
            return msg->data;
        }
        if (p->n < 3 || !(seg_is(&p->segs[2], "item") || seg_is(&p->segs[2], "index"))) {
            buf_puts(msg, "only .item or .index may follow \"");
            path_display(msg, p, 2);
            buf_puts(msg, "\"");
            return msg->data;
        }
        if (seg_is(&p->segs[2], "index") && p->n > 3) {
            buf_puts(msg, "nothing may follow \"");
            path_display(msg, p, 3);
            buf_puts(msg, "\"");
            return msg->data;
        }
        return NULL;
    }
    buf_puts(msg, "unknown root \"");
    buf_append(msg, root->key, root->key_len);
    buf_puts(msg, "\"; a path starts with input, steps.<id>, execution, item, index or "
                  "loops.<id>");
    return msg->data;
}

/* Rewrites msg as "${path}: reason". */
static void prefix_with_path(struct buf *msg, const struct path *p)
{
    char *reason = buf_steal(msg);
    buf_puts(msg, "${");
    path_display(msg, p, p->n);
    buf_puts(msg, "}: ");
    buf_puts(msg, reason);
    free(reason);
}

/* Parses the expression at s[dollar] and checks its shape. */
static bool parse_checked(const char *s, size_t len, size_t dollar, size_t *end, struct path *p,
                          struct buf *msg)
{
    if (!parse_expr(s, len, dollar, end, p, msg))
        return false;
    if (check_shape(p, msg)) {
        prefix_with_path(msg, p);
        path_free(p);
        return false;
    }
    return true;
}

/* ---- JSON pointers ----------------------------------------------------------------------- */

static void pointer_push_key(struct buf *ptr, const char *key)
{
    buf_putc(ptr, '/');
    for (const char *k = key; *k; k++) {
        if (*k == '~')
            buf_puts(ptr, "~0");
        else if (*k == '/')
            buf_puts(ptr, "~1");
        else
            buf_putc(ptr, *k);
    }
}

static const char *pointer_text(const struct buf *ptr)
{
    return ptr->data ? ptr->data : "";
}

/* ---- checking ---------------------------------------------------------------------------- */

struct checker {
    expr_step_ref_fn on_step_ref;
    expr_loop_ref_fn on_loop_ref;
    expr_error_fn on_error;
    void *arg;
    int errors;
    struct buf ptr;
    struct buf msg;
};

static void check_string(struct checker *c, const char *s, size_t len)
{
    for (size_t i = 0; i + 1 < len; i++) {
        if (s[i] != '$')
            continue;
        if (s[i + 1] == '$') {
            i++;
            continue;
        }
        if (s[i + 1] != '{')
            continue;
        struct path p = {0};
        size_t end;
        if (!parse_checked(s, len, i, &end, &p, &c->msg)) {
            c->errors++;
            if (c->on_error)
                c->on_error(c->arg, pointer_text(&c->ptr), c->msg.data);
            /* Where one expression is malformed, the rest of the string cannot be trusted to
             * split into expressions the way the author meant. */
            return;
        }
        if (seg_is(&p.segs[0], "steps") && c->on_step_ref) {
            struct buf text = BUF_INIT;
            path_display(&text, &p, p.n);
            c->on_step_ref(c->arg, pointer_text(&c->ptr), text.data, p.segs[1].key);
            buf_free(&text);
        }
        bool loops = seg_is(&p.segs[0], "loops");
        if ((seg_is(&p.segs[0], "item") || seg_is(&p.segs[0], "index") || loops) &&
            c->on_loop_ref) {
            struct buf text = BUF_INIT;
            path_display(&text, &p, p.n);
            c->on_loop_ref(c->arg, pointer_text(&c->ptr), text.data, loops ? p.segs[1].key : NULL);
            buf_free(&text);
        }
        path_free(&p);
        i = end - 1;
    }
}

static void check_value(struct checker *c, const json_t *v)
{
    size_t mark = c->ptr.len;
    if (json_is_string(v)) {
        check_string(c, json_string_value(v), json_string_length(v));
    } else if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++) {
            buf_printf(&c->ptr, "/%zu", i);
            check_value(c, json_array_get(v, i));
            c->ptr.len = mark;
            c->ptr.data[mark] = '\0';
        }
    } else if (json_is_object(v)) {
        const char *key;
        json_t *child;
        json_object_foreach((json_t *)v, key, child)
        {
            pointer_push_key(&c->ptr, key);
            check_value(c, child);
            c->ptr.len = mark;
            c->ptr.data[mark] = '\0';
        }
    }
}

static int ref_check_template(const json_t *tmpl, expr_step_ref_fn on_step_ref,
                              expr_loop_ref_fn on_loop_ref, expr_error_fn on_error, void *arg)
{
    if (!tmpl)
        return 0;
    struct checker c = {on_step_ref, on_loop_ref, on_error, arg, 0, BUF_INIT, BUF_INIT};
    check_value(&c, tmpl);
    buf_free(&c.ptr);
    buf_free(&c.msg);
    return c.errors;
}

/* ---- evaluation -------------------------------------------------------------------------- */

static const char *type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
    case JSON_REAL:
        return "a number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    case JSON_NULL:
        return "null";
    }
    return "a value";
}

static void put_quoted(struct buf *b, const struct seg *s)
{
    buf_putc(b, '"');
    for (size_t k = 0; k < s->key_len; k++) {
        if (s->key[k] == '"' || s->key[k] == '\\')
            buf_putc(b, '\\');
        buf_putc(b, s->key[k]);
    }
    buf_putc(b, '"');
}

/* Resolves a checked path in ctx. Returns a borrowed value, or NULL with msg set to
 * "${path}: reason". */
static json_t *eval_path(const struct path *p, const json_t *ctx, struct buf *msg)
{
    json_t *cur;
    size_t first; /* the first segment the generic walk below handles */
    buf_reset(msg);
    const struct seg *root = &p->segs[0];
    if (seg_is(root, "steps")) {
        const struct seg *id = &p->segs[1];
        bool want_output = seg_is(&p->segs[2], "output");
        json_t *entry = json_object_getn(json_object_get(ctx, "steps"), id->key, id->key_len);
        cur = json_object_get(entry, want_output ? "output" : "error");
        if (!cur) {
            buf_puts(msg, "steps.");
            buf_append(msg, id->key, id->key_len);
            buf_puts(msg, want_output ? " has no output yet" : " has no error (it has not failed)");
            goto Fail;
        }
        first = 3;
    } else if (seg_is(root, "item") || seg_is(root, "index")) {
        cur = json_object_getn(ctx, root->key, root->key_len);
        if (!cur) {
            buf_puts(msg, "not inside a for_each");
            goto Fail;
        }
        first = 1;
    } else if (seg_is(root, "loops")) {
        const struct seg *id = &p->segs[1];
        json_t *loop = json_object_getn(json_object_get(ctx, "loops"), id->key, id->key_len);
        cur = json_object_getn(loop, p->segs[2].key, p->segs[2].key_len);
        if (!cur) {
            buf_puts(msg, "not inside for_each \"");
            buf_append(msg, id->key, id->key_len);
            buf_putc(msg, '"');
            goto Fail;
        }
        first = 3;
    } else {
        size_t depth = seg_is(root, "execution") ? 2 : 1;
        cur = json_object_getn(ctx, root->key, root->key_len);
        if (cur && depth == 2)
            cur = json_object_getn(cur, p->segs[1].key, p->segs[1].key_len);
        if (!cur) {
            buf_putc(msg, '"');
            path_display(msg, p, depth);
            buf_puts(msg, "\" is not available");
            goto Fail;
        }
        first = depth;
    }

    for (size_t i = first; i < p->n; i++) {
        const struct seg *s = &p->segs[i];
        json_t *next;
        if (s->kind == SEG_NAME) {
            if (!json_is_object(cur)) {
                buf_putc(msg, '"');
                path_display(msg, p, i);
                buf_printf(msg, "\" is %s, not an object, so it has no field ", type_name(cur));
                put_quoted(msg, s);
                goto Fail;
            }
            next = json_object_getn(cur, s->key, s->key_len);
            if (!next) {
                buf_putc(msg, '"');
                path_display(msg, p, i);
                buf_puts(msg, "\" has no field ");
                put_quoted(msg, s);
                goto Fail;
            }
        } else {
            if (!json_is_array(cur)) {
                buf_putc(msg, '"');
                path_display(msg, p, i);
                buf_printf(msg, "\" is %s, not an array, so it has no index %zu", type_name(cur),
                           s->index);
                goto Fail;
            }
            next = json_array_get(cur, s->index);
            if (!next) {
                buf_putc(msg, '"');
                path_display(msg, p, i);
                buf_printf(msg, "\": index %zu out of range (array of %zu)", s->index,
                           json_array_size(cur));
                goto Fail;
            }
        }
        cur = next;
    }
    return cur;

Fail:
    prefix_with_path(msg, p);
    return NULL;
}

/* True when every expression in s parses and has a valid shape; else msg holds the first
 * problem. Run before evaluating so that a malformed expression is reported as such even when
 * an earlier one in the same string would fail for a missing value. */
static bool string_well_formed(const char *s, size_t len, struct buf *msg)
{
    for (size_t i = 0; i + 1 < len; i++) {
        if (s[i] != '$')
            continue;
        if (s[i + 1] == '$') {
            i++;
            continue;
        }
        if (s[i + 1] != '{')
            continue;
        struct path p = {0};
        size_t end;
        if (!parse_checked(s, len, i, &end, &p, msg))
            return false;
        path_free(&p);
        i = end - 1;
    }
    return true;
}

struct evaluator {
    const json_t *ctx;
    struct buf ptr;
    struct buf msg;
    size_t budget; /* the largest compact JSON text the result may have */
    size_t used;   /* the compact JSON text of what has been evaluated so far */
};

/* Sets msg to the budget error, naming the limit. */
static void over_budget(struct evaluator *e)
{
    buf_reset(&e->msg);
    buf_printf(&e->msg,
               "the evaluated template is larger than the limit of %zu bytes (its JSON text); "
               "reference smaller values or fewer copies of them",
               e->budget);
}

/* Counts n more bytes of result. Returns false (msg set) when they do not fit the budget. */
static bool spend(struct evaluator *e, size_t n)
{
    if (n > e->budget - e->used) {
        over_budget(e);
        return false;
    }
    e->used += n;
    return true;
}

/* Counts v's JSON text. Never measures past what is left of the budget, so a huge value costs
 * no more than the budget to refuse. */
static bool spend_value(struct evaluator *e, const json_t *v)
{
    size_t left = e->budget - e->used;
    return spend(e, json_encoded_size(v, left));
}

/* Evaluates one string template. Returns a new value or NULL with e->msg set. */
static json_t *eval_string(struct evaluator *e, const char *s, size_t len)
{
    struct buf *msg = &e->msg;
    const json_t *ctx = e->ctx;
    struct path p = {0};
    size_t end;
    if (!string_well_formed(s, len, msg))
        return NULL;
    if (len >= 2 && s[0] == '$' && s[1] == '{') {
        if (!parse_checked(s, len, 0, &end, &p, msg))
            return NULL;
        if (end == len) {
            json_t *v = eval_path(&p, ctx, msg);
            path_free(&p);
            /* Measured before it is copied: the copy is never made when it does not fit. */
            if (!v || !spend_value(e, v))
                return NULL;
            return json_deep_copy(v);
        }
        path_free(&p);
    }

    /* The text is measured as it grows; its quotes and escapes are counted at the end. */
    size_t left = e->budget - e->used;
    struct buf out = BUF_INIT;
    size_t i = 0;
    while (i < len) {
        if (out.len > left) {
            over_budget(e);
            goto Fail;
        }
        if (s[i] != '$' || i + 1 >= len) {
            buf_putc(&out, s[i++]);
            continue;
        }
        if (s[i + 1] == '$') {
            buf_putc(&out, '$');
            i += 2;
            continue;
        }
        if (s[i + 1] != '{') {
            buf_putc(&out, s[i++]);
            continue;
        }
        if (!parse_checked(s, len, i, &end, &p, msg))
            goto Fail;
        json_t *v = eval_path(&p, ctx, msg);
        path_free(&p);
        if (!v)
            goto Fail;
        size_t room = left - out.len;
        if (json_is_string(v)) {
            if (json_string_length(v) > room) {
                over_budget(e);
                goto Fail;
            }
            buf_append(&out, json_string_value(v), json_string_length(v));
        } else {
            if (json_encoded_size(v, room) > room) {
                over_budget(e);
                goto Fail;
            }
            if (!json_text_append(&out, v, false)) {
                buf_reset(msg);
                buf_puts(msg, "the interpolated text is not valid UTF-8");
                goto Fail;
            }
        }
        i = end;
    }
    json_t *result = json_stringn(out.data ? out.data : "", out.len);
    buf_free(&out);
    if (!result) {
        /* Only reachable when a quoted key or value carried invalid UTF-8 into the text. */
        buf_reset(msg);
        buf_puts(msg, "the interpolated text is not valid UTF-8");
        return NULL;
    }
    if (!spend_value(e, result)) {
        json_decref(result);
        return NULL;
    }
    return result;

Fail:
    buf_free(&out);
    return NULL;
}

static json_t *eval_value(struct evaluator *e, const json_t *v)
{
    size_t mark = e->ptr.len;
    if (json_is_string(v))
        return eval_string(e, json_string_value(v), json_string_length(v));
    if (json_is_array(v)) {
        size_t n = json_array_size(v);
        if (!spend(e, 2 + (n ? n - 1 : 0)))
            return NULL;
        json_t *out = json_array();
        for (size_t i = 0; i < n; i++) {
            buf_printf(&e->ptr, "/%zu", i);
            json_t *item = eval_value(e, json_array_get(v, i));
            if (!item) {
                json_decref(out);
                return NULL;
            }
            json_array_append_new(out, item);
            e->ptr.len = mark;
            e->ptr.data[mark] = '\0';
        }
        return out;
    }
    if (json_is_object(v)) {
        size_t n = json_object_size(v);
        if (!spend(e, 2 + (n ? n - 1 : 0)))
            return NULL;
        json_t *out = json_object();
        const char *key;
        size_t key_len;
        json_t *child;
        json_object_keylen_foreach((json_t *)v, key, key_len, child)
        {
            pointer_push_key(&e->ptr, key);
            /* The key as JSON text (quotes and escapes included), and the colon. */
            json_t *key_json = json_stringn_nocheck(key, key_len);
            bool fits = spend_value(e, key_json) && spend(e, 1);
            json_decref(key_json);
            if (!fits) {
                json_decref(out);
                return NULL;
            }
            json_t *item = eval_value(e, child);
            if (!item) {
                json_decref(out);
                return NULL;
            }
            json_object_setn_new_nocheck(out, key, key_len, item);
            e->ptr.len = mark;
            e->ptr.data[mark] = '\0';
        }
        return out;
    }
    if (!spend_value(e, v))
        return NULL;
    return json_deep_copy(v);
}

/* Copies src into dst[size], cutting at a UTF-8 character boundary when it does not fit. */
static void copy_truncated(char *dst, size_t size, const char *src)
{
    size_t n = strlen(src);
    if (n >= size) {
        n = size - 1;
        while (n > 0 && ((unsigned char)src[n] & 0xc0) == 0x80)
            n--;
    }
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static json_t *ref_eval_template_bounded(const json_t *tmpl, const json_t *ctx, size_t max_bytes,
                                         struct expr_error *err)
{
    struct evaluator e = {ctx, BUF_INIT, BUF_INIT, max_bytes, 0};
    json_t *result = NULL;
    if (!tmpl) {
        buf_puts(&e.msg, "no template");
        goto Exit;
    }
    result = eval_value(&e, tmpl);
Exit:
    if (!result && err) {
        copy_truncated(err->pointer, sizeof err->pointer, pointer_text(&e.ptr));
        copy_truncated(err->message, sizeof err->message, e.msg.data ? e.msg.data : "");
    }
    buf_free(&e.ptr);
    buf_free(&e.msg);
    return result;
}
