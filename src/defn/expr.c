/* "${...}" expressions: templates compiled once (parsed and shape-checked) into an immutable
 * tree when a definition is registered or loaded, and evaluated from that tree at run time. */
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

/* Which part of the context a path reads; set once its shape is checked. */
enum path_root {
    ROOT_INPUT,     /* input... */
    ROOT_STEPS,     /* steps.<id>.output... or steps.<id>.error... */
    ROOT_EXECUTION, /* execution.id or execution.workflow */
    ROOT_ITEM,      /* item...: the innermost loop's element */
    ROOT_INDEX,     /* index: the innermost loop's index */
    ROOT_LOOPS,     /* loops.<id>.item... or loops.<id>.index: an enclosing loop's */
};

struct path {
    struct seg *segs;
    size_t n;
    size_t cap;
    enum path_root root;
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

/* ---- the expression tree ----------------------------------------------------------------- */

/* What one "${...}" holds, as a tree. Today an expression is a path; literals, operators
 * (! && || == != < <= > >= + - * / %) and calls (len, exists) are to become further kinds whose
 * operands are child trees, parsed by the same parser and evaluated by expr_node_eval, so that
 * the template nodes around expressions stay as they are. */
enum expr_kind {
    EXPR_PATH, /* a value read from the context: u.path */
};

struct expr {
    enum expr_kind kind;
    union {
        struct path path;
    } u;
};

static void expr_free(struct expr *x)
{
    if (!x)
        return;
    switch (x->kind) {
    case EXPR_PATH:
        path_free(&x->u.path);
        break;
    }
    free(x);
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

/* Checks what a path may look like beyond its syntax and sets p->root. Returns NULL when it is
 * fine, else the reason, written into msg. */
static const char *check_shape(struct path *p, struct buf *msg)
{
    const struct seg *root = &p->segs[0];
    buf_reset(msg);
    if (seg_is(root, "input")) {
        p->root = ROOT_INPUT;
        return NULL;
    }
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
        p->root = ROOT_STEPS;
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
        p->root = ROOT_EXECUTION;
        return NULL;
    }
    if (seg_is(root, "item")) {
        p->root = ROOT_ITEM;
        return NULL;
    }
    if (seg_is(root, "index")) {
        if (p->n > 1) {
            buf_puts(msg, "nothing may follow \"index\"");
            return msg->data;
        }
        p->root = ROOT_INDEX;
        return NULL;
    }
    if (seg_is(root, "loops")) {
        const struct seg *id = p->n > 1 ? &p->segs[1] : NULL;
        if (!id || id->kind != SEG_NAME || !is_name(id->key, id->key_len) || id->key_len > 64) {
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
        p->root = ROOT_LOOPS;
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

/* Parses the expression at s[dollar] and checks its shape. Returns a new tree (freed with
 * expr_free) with *end just past the closing '}', or NULL with msg holding the reason. */
static struct expr *parse_checked(const char *s, size_t len, size_t dollar, size_t *end,
                                  struct buf *msg)
{
    struct path p = {0};
    if (!parse_expr(s, len, dollar, end, &p, msg))
        return NULL;
    if (check_shape(&p, msg)) {
        prefix_with_path(msg, &p);
        path_free(&p);
        return NULL;
    }
    struct expr *x = xcalloc(1, sizeof *x);
    x->kind = EXPR_PATH;
    x->u.path = p;
    return x;
}

bool expr_has_expression(const char *s, size_t len)
{
    if (!s)
        return false;
    for (size_t i = 0; i + 1 < len; i++) {
        if (s[i] != '$')
            continue;
        if (s[i + 1] == '{')
            return true;
        if (s[i + 1] == '$')
            i++;
    }
    return false;
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

/* ---- compiled templates ------------------------------------------------------------------ */

enum node_kind {
    NODE_LITERAL,   /* evaluates to a copy of value: a scalar, a string without expressions, or
                     * an array or object with no expression anywhere in it */
    NODE_VALUE,     /* a string that is exactly "${...}": the expression's value, of any type */
    NODE_TEXT,      /* a string of text and expressions: the expressions' values as text */
    NODE_MALFORMED, /* a string with a malformed expression: evaluating it fails with message */
    NODE_ARRAY,     /* an array with an expression somewhere in it: items */
    NODE_OBJECT,    /* an object with an expression somewhere in it: members and items */
};

/* A piece of a NODE_TEXT string: either text (with "$$" already read as "$") or an
 * expression. */
struct part {
    char *text; /* owned; NULL for an expression */
    size_t len;
    struct expr *expr; /* owned; NULL for text */
};

/* The key of an object member, with what it costs in the budget: its JSON text and the colon. */
struct member {
    char *key; /* owned, NUL-terminated; may hold other NULs before key_len */
    size_t key_len;
    size_t cost;
};

struct node {
    enum node_kind kind;
    /* NODE_LITERAL: a reference to the template's own value (verbatim), or to a new string
     * when "$$" had to be read as "$"; cost is its compact JSON text, counted as the walk over
     * its parts would count it. */
    json_t *value;
    bool verbatim;
    size_t cost;
    struct expr *expr;      /* NODE_VALUE; owned */
    struct part *parts;     /* NODE_TEXT; owned */
    size_t n_parts;         /* NODE_TEXT */
    char *message;          /* NODE_MALFORMED; owned */
    struct node *items;     /* NODE_ARRAY, NODE_OBJECT; owned */
    struct member *members; /* NODE_OBJECT: the key of items[i]; owned */
    size_t n_items;
};

struct expr_template {
    struct node root;
};

static void node_clear(struct node *n)
{
    json_decref(n->value);
    expr_free(n->expr);
    for (size_t i = 0; i < n->n_parts; i++) {
        free(n->parts[i].text);
        expr_free(n->parts[i].expr);
    }
    free(n->parts);
    free(n->message);
    for (size_t i = 0; i < n->n_items; i++) {
        node_clear(&n->items[i]);
        if (n->members)
            free(n->members[i].key);
    }
    free(n->items);
    free(n->members);
    memset(n, 0, sizeof *n);
}

/* ---- compiling --------------------------------------------------------------------------- */

struct compiler {
    expr_step_ref_fn on_step_ref;
    expr_loop_ref_fn on_loop_ref;
    expr_error_fn on_error;
    void *arg;
    int errors;
    struct buf ptr; /* the pointer of the value being compiled */
    struct buf msg;
};

/* Reports each reference to a step's result and each use of a loop's element or index in x,
 * for the definition's checks of which steps and loops a template may use. */
static void report_refs(struct compiler *c, const struct expr *x)
{
    switch (x->kind) {
    case EXPR_PATH: {
        const struct path *p = &x->u.path;
        bool step = p->root == ROOT_STEPS && c->on_step_ref;
        bool loop = (p->root == ROOT_ITEM || p->root == ROOT_INDEX || p->root == ROOT_LOOPS) &&
                    c->on_loop_ref;
        if (!step && !loop)
            break;
        struct buf text = BUF_INIT;
        path_display(&text, p, p->n);
        if (step)
            c->on_step_ref(c->arg, pointer_text(&c->ptr), text.data, p->segs[1].key);
        else
            c->on_loop_ref(c->arg, pointer_text(&c->ptr), text.data,
                           p->root == ROOT_LOOPS ? p->segs[1].key : NULL);
        buf_free(&text);
        break;
    }
    }
}

static void push_part(struct node *n, size_t *cap, struct part part)
{
    if (n->n_parts == *cap) {
        *cap = *cap ? 2 * *cap : 4;
        n->parts = xrealloc(n->parts, *cap * sizeof *n->parts);
    }
    n->parts[n->n_parts++] = part;
}

static void make_literal(struct node *n, json_t *value, bool verbatim)
{
    n->kind = NODE_LITERAL;
    n->value = value;
    n->verbatim = verbatim;
    n->cost = json_encoded_size(value, SIZE_MAX);
}

static void compile_string(struct compiler *c, json_t *v, struct node *n)
{
    const char *s = json_string_value(v);
    size_t len = json_string_length(v);
    struct buf text = BUF_INIT;
    size_t cap = 0;
    size_t i = 0;
    while (i < len) {
        if (s[i] != '$' || i + 1 >= len) {
            buf_putc(&text, s[i++]);
            continue;
        }
        if (s[i + 1] == '$') {
            buf_putc(&text, '$');
            i += 2;
            continue;
        }
        if (s[i + 1] != '{') {
            buf_putc(&text, s[i++]);
            continue;
        }
        size_t end;
        struct expr *x = parse_checked(s, len, i, &end, &c->msg);
        if (!x) {
            /* Where one expression is malformed, the rest of the string cannot be trusted to
             * split into expressions the way the author meant. */
            c->errors++;
            if (c->on_error)
                c->on_error(c->arg, pointer_text(&c->ptr), c->msg.data);
            node_clear(n);
            buf_free(&text);
            n->kind = NODE_MALFORMED;
            n->message = xstrdup(c->msg.data);
            return;
        }
        report_refs(c, x);
        if (text.len) {
            size_t tlen = text.len;
            push_part(n, &cap, (struct part){buf_steal(&text), tlen, NULL});
        }
        push_part(n, &cap, (struct part){NULL, 0, x});
        i = end;
    }

    if (n->n_parts == 0) {
        if (text.len == len) {
            make_literal(n, json_incref(v), true);
        } else {
            json_t *unescaped = json_stringn(text.data ? text.data : "", text.len);
            if (unescaped) {
                make_literal(n, unescaped, false);
            } else {
                /* Unreachable from valid UTF-8 (only a "$" was taken out), but never a crash. */
                n->kind = NODE_MALFORMED;
                n->message = xstrdup("the interpolated text is not valid UTF-8");
            }
        }
    } else if (n->n_parts == 1 && !text.len) {
        n->kind = NODE_VALUE;
        n->expr = n->parts[0].expr;
        free(n->parts);
        n->parts = NULL;
        n->n_parts = 0;
    } else {
        if (text.len) {
            size_t tlen = text.len;
            push_part(n, &cap, (struct part){buf_steal(&text), tlen, NULL});
        }
        n->kind = NODE_TEXT;
    }
    buf_free(&text);
}

/* When every item of an array or object node is its template value verbatim, the node becomes
 * one literal of v, so that evaluating it is one copy instead of a walk. Its cost is what the
 * walk would have counted. */
static void collapse_literal(struct node *n, json_t *v)
{
    size_t cost = 2 + (n->n_items ? n->n_items - 1 : 0);
    for (size_t i = 0; i < n->n_items; i++) {
        if (n->items[i].kind != NODE_LITERAL || !n->items[i].verbatim)
            return;
        cost += n->items[i].cost + (n->members ? n->members[i].cost : 0);
    }
    node_clear(n);
    make_literal(n, json_incref(v), true);
    n->cost = cost;
}

static void compile_value(struct compiler *c, json_t *v, struct node *n)
{
    size_t mark = c->ptr.len;
    if (json_is_string(v)) {
        compile_string(c, v, n);
    } else if (json_is_array(v)) {
        n->kind = NODE_ARRAY;
        n->n_items = json_array_size(v);
        n->items = n->n_items ? xcalloc(n->n_items, sizeof *n->items) : NULL;
        for (size_t i = 0; i < n->n_items; i++) {
            buf_printf(&c->ptr, "/%zu", i);
            compile_value(c, json_array_get(v, i), &n->items[i]);
            c->ptr.len = mark;
            c->ptr.data[mark] = '\0';
        }
        collapse_literal(n, v);
    } else if (json_is_object(v)) {
        n->kind = NODE_OBJECT;
        size_t count = json_object_size(v);
        n->items = count ? xcalloc(count, sizeof *n->items) : NULL;
        n->members = count ? xcalloc(count, sizeof *n->members) : NULL;
        const char *key;
        size_t key_len;
        json_t *child;
        json_object_keylen_foreach(v, key, key_len, child)
        {
            struct member *m = &n->members[n->n_items];
            m->key = xmalloc(key_len + 1);
            memcpy(m->key, key, key_len);
            m->key[key_len] = '\0';
            m->key_len = key_len;
            json_t *key_json = json_stringn_nocheck(key, key_len);
            m->cost = json_encoded_size(key_json, SIZE_MAX) + 1;
            json_decref(key_json);
            pointer_push_key(&c->ptr, key);
            compile_value(c, child, &n->items[n->n_items++]);
            c->ptr.len = mark;
            c->ptr.data[mark] = '\0';
        }
        collapse_literal(n, v);
    } else {
        make_literal(n, json_incref(v), true);
    }
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
    if (p->root == ROOT_STEPS) {
        const struct seg *id = &p->segs[1];
        bool want_output = seg_is(&p->segs[2], "output");
        json_t *entry = json_object_getn(json_object_get(ctx, "steps"), id->key, id->key_len);
        cur = json_object_get(entry, want_output ? "output" : "error");
        if (!cur) {
            buf_reset(msg);
            buf_puts(msg, "steps.");
            buf_append(msg, id->key, id->key_len);
            buf_puts(msg, want_output ? " has no output yet" : " has no error (it has not failed)");
            goto Fail;
        }
        first = 3;
    } else if (p->root == ROOT_ITEM || p->root == ROOT_INDEX) {
        cur = json_object_get(ctx, p->root == ROOT_ITEM ? "item" : "index");
        if (!cur) {
            buf_reset(msg);
            buf_puts(msg, "not inside a for_each");
            goto Fail;
        }
        first = 1;
    } else if (p->root == ROOT_LOOPS) {
        const struct seg *id = &p->segs[1];
        json_t *loop = json_object_getn(json_object_get(ctx, "loops"), id->key, id->key_len);
        cur = json_object_get(loop, seg_is(&p->segs[2], "item") ? "item" : "index");
        if (!cur) {
            buf_reset(msg);
            buf_puts(msg, "not inside for_each \"");
            buf_append(msg, id->key, id->key_len);
            buf_putc(msg, '"');
            goto Fail;
        }
        first = 3;
    } else {
        size_t depth = p->root == ROOT_EXECUTION ? 2 : 1;
        cur = json_object_getn(ctx, p->segs[0].key, p->segs[0].key_len);
        if (cur && depth == 2)
            cur = json_object_getn(cur, p->segs[1].key, p->segs[1].key_len);
        if (!cur) {
            buf_reset(msg);
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
                buf_reset(msg);
                buf_putc(msg, '"');
                path_display(msg, p, i);
                buf_printf(msg, "\" is %s, not an object, so it has no field ", type_name(cur));
                put_quoted(msg, s);
                goto Fail;
            }
            next = json_object_getn(cur, s->key, s->key_len);
            if (!next) {
                buf_reset(msg);
                buf_putc(msg, '"');
                path_display(msg, p, i);
                buf_puts(msg, "\" has no field ");
                put_quoted(msg, s);
                goto Fail;
            }
        } else {
            if (!json_is_array(cur)) {
                buf_reset(msg);
                buf_putc(msg, '"');
                path_display(msg, p, i);
                buf_printf(msg, "\" is %s, not an array, so it has no index %zu", type_name(cur),
                           s->index);
                goto Fail;
            }
            next = json_array_get(cur, s->index);
            if (!next) {
                buf_reset(msg);
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

/* Evaluates the expression x in ctx. Returns a new reference (which, for a path, is the
 * context's own value: the caller must not change it), or NULL with msg set to
 * "${...}: reason". */
static json_t *expr_node_eval(const struct expr *x, const json_t *ctx, struct buf *msg)
{
    switch (x->kind) {
    case EXPR_PATH: {
        json_t *v = eval_path(&x->u.path, ctx, msg);
        return v ? json_incref(v) : NULL;
    }
    }
    buf_reset(msg);
    buf_puts(msg, "unknown kind of expression");
    return NULL;
}

struct evaluator {
    const json_t *ctx;
    struct buf ptr; /* after a failure: the pointer of the failing value, built on the way out */
    struct buf msg;
    size_t budget; /* the largest compact JSON text the result may have */
    size_t used;   /* the compact JSON text of what has been evaluated so far */
};

/* Puts the segment of an array item or object member in front of the failure's pointer, as
 * the failure travels up from the value that failed. Only failures pay for pointers. */
static void fail_in(struct evaluator *e, const char *key, size_t index)
{
    struct buf ptr = BUF_INIT;
    if (key)
        pointer_push_key(&ptr, key);
    else
        buf_printf(&ptr, "/%zu", index);
    if (e->ptr.len)
        buf_append(&ptr, e->ptr.data, e->ptr.len);
    buf_free(&e->ptr);
    e->ptr = ptr;
}

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

/* Counts a literal that does not fit what is left of the budget the way its items would be
 * counted one by one, so that the failure names the same place as for any other value. */
static bool spend_walking(struct evaluator *e, const json_t *v)
{
    if (json_is_array(v)) {
        size_t n = json_array_size(v);
        if (!spend(e, 2 + (n ? n - 1 : 0)))
            return false;
        for (size_t i = 0; i < n; i++) {
            if (!spend_walking(e, json_array_get(v, i))) {
                fail_in(e, NULL, i);
                return false;
            }
        }
        return true;
    }
    if (json_is_object(v)) {
        size_t n = json_object_size(v);
        if (!spend(e, 2 + (n ? n - 1 : 0)))
            return false;
        const char *key;
        size_t key_len;
        json_t *child;
        json_object_keylen_foreach((json_t *)v, key, key_len, child)
        {
            json_t *key_json = json_stringn_nocheck(key, key_len);
            bool fits = spend_value(e, key_json) && spend(e, 1) && spend_walking(e, child);
            json_decref(key_json);
            if (!fits) {
                fail_in(e, key, 0);
                return false;
            }
        }
        return true;
    }
    return spend_value(e, v);
}

static json_t *eval_literal(struct evaluator *e, const struct node *n)
{
    if (n->cost <= e->budget - e->used)
        e->used += n->cost;
    else if (!spend_walking(e, n->value))
        return NULL;
    return json_deep_copy(n->value);
}

/* A string of text and expressions. The text is measured as it grows, before anything is
 * appended; its quotes and escapes are counted at the end. */
static json_t *eval_text(struct evaluator *e, const struct node *n)
{
    size_t left = e->budget - e->used;
    struct buf out = BUF_INIT;
    json_t *v = NULL, *result = NULL;
    for (size_t k = 0; k < n->n_parts; k++) {
        const struct part *part = &n->parts[k];
        size_t room = left - out.len;
        if (!part->expr) {
            if (part->len > room) {
                over_budget(e);
                goto Exit;
            }
            buf_append(&out, part->text, part->len);
            continue;
        }
        v = expr_node_eval(part->expr, e->ctx, &e->msg);
        if (!v)
            goto Exit;
        if (json_is_string(v)) {
            if (json_string_length(v) > room) {
                over_budget(e);
                goto Exit;
            }
            buf_append(&out, json_string_value(v), json_string_length(v));
        } else {
            if (json_encoded_size(v, room) > room) {
                over_budget(e);
                goto Exit;
            }
            if (!json_text_append(&out, v, false)) {
                buf_reset(&e->msg);
                buf_puts(&e->msg, "the interpolated text is not valid UTF-8");
                goto Exit;
            }
        }
        json_decref(v);
        v = NULL;
    }
    result = json_stringn(out.data ? out.data : "", out.len);
    if (!result) {
        /* Only reachable when a quoted key or value carried invalid UTF-8 into the text. */
        buf_reset(&e->msg);
        buf_puts(&e->msg, "the interpolated text is not valid UTF-8");
        goto Exit;
    }
    if (!spend_value(e, result)) {
        json_decref(result);
        result = NULL;
    }
Exit:
    json_decref(v);
    buf_free(&out);
    return result;
}

/* Evaluates one node. Returns a new value or NULL with e->msg set (and e->ptr, relative to this
 * node). */
static json_t *eval_node(struct evaluator *e, const struct node *n)
{
    switch (n->kind) {
    case NODE_LITERAL:
        return eval_literal(e, n);
    case NODE_VALUE: {
        json_t *v = expr_node_eval(n->expr, e->ctx, &e->msg);
        /* Measured before it is copied: the copy is never made when it does not fit. */
        json_t *out = v && spend_value(e, v) ? json_deep_copy(v) : NULL;
        json_decref(v);
        return out;
    }
    case NODE_TEXT:
        return eval_text(e, n);
    case NODE_MALFORMED:
        buf_reset(&e->msg);
        buf_puts(&e->msg, n->message);
        return NULL;
    case NODE_ARRAY: {
        if (!spend(e, 2 + (n->n_items ? n->n_items - 1 : 0)))
            return NULL;
        json_t *out = json_array();
        for (size_t i = 0; i < n->n_items; i++) {
            json_t *item = eval_node(e, &n->items[i]);
            if (!item) {
                fail_in(e, NULL, i);
                json_decref(out);
                return NULL;
            }
            json_array_append_new(out, item);
        }
        return out;
    }
    case NODE_OBJECT: {
        if (!spend(e, 2 + (n->n_items ? n->n_items - 1 : 0)))
            return NULL;
        json_t *out = json_object();
        for (size_t i = 0; i < n->n_items; i++) {
            const struct member *m = &n->members[i];
            json_t *item = spend(e, m->cost) ? eval_node(e, &n->items[i]) : NULL;
            if (!item) {
                fail_in(e, m->key, 0);
                json_decref(out);
                return NULL;
            }
            json_object_setn_new_nocheck(out, m->key, m->key_len, item);
        }
        return out;
    }
    }
    buf_reset(&e->msg);
    buf_puts(&e->msg, "unknown kind of template node");
    return NULL;
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

/* ---- entry points ------------------------------------------------------------------------ */

struct expr_template *expr_compile(const json_t *tmpl, expr_step_ref_fn on_step_ref,
                                   expr_error_fn on_error, void *arg, int *n_malformed)
{
    struct expr_reporter r = {on_step_ref, NULL, on_error, arg};
    return expr_compile_reporting(tmpl, &r, n_malformed);
}

struct expr_template *expr_compile_reporting(const json_t *tmpl, const struct expr_reporter *r,
                                             int *n_malformed)
{
    if (n_malformed)
        *n_malformed = 0;
    if (!tmpl)
        return NULL;
    const struct expr_reporter none = {NULL, NULL, NULL, NULL};
    if (!r)
        r = &none;
    struct compiler c = {.on_step_ref = r->on_step_ref,
                         .on_loop_ref = r->on_loop_ref,
                         .on_error = r->on_error,
                         .arg = r->arg,
                         .ptr = BUF_INIT,
                         .msg = BUF_INIT};
    struct expr_template *t = xcalloc(1, sizeof *t);
    /* Literal parts are kept by reference, never changed (see expr.h). */
    compile_value(&c, (json_t *)tmpl, &t->root);
    buf_free(&c.ptr);
    buf_free(&c.msg);
    if (n_malformed)
        *n_malformed = c.errors;
    return t;
}

json_t *expr_template_eval(const struct expr_template *t, const json_t *ctx, size_t max_bytes,
                           struct expr_error *err)
{
    struct evaluator e = {ctx, BUF_INIT, BUF_INIT, max_bytes, 0};
    json_t *result = NULL;
    if (!t) {
        buf_puts(&e.msg, "no template");
        goto Exit;
    }
    result = eval_node(&e, &t->root);
Exit:
    if (!result && err) {
        copy_truncated(err->pointer, sizeof err->pointer, pointer_text(&e.ptr));
        copy_truncated(err->message, sizeof err->message, e.msg.data ? e.msg.data : "");
    }
    buf_free(&e.ptr);
    buf_free(&e.msg);
    return result;
}

bool expr_template_is_value(const struct expr_template *t)
{
    return t && t->root.kind == NODE_VALUE;
}

void expr_template_free(struct expr_template *t)
{
    if (!t)
        return;
    node_clear(&t->root);
    free(t);
}

int expr_check_template(const json_t *tmpl, expr_step_ref_fn on_step_ref, expr_error_fn on_error,
                        void *arg)
{
    int errors;
    expr_template_free(expr_compile(tmpl, on_step_ref, on_error, arg, &errors));
    return errors;
}

json_t *expr_eval_template(const json_t *tmpl, const json_t *ctx, struct expr_error *err)
{
    return expr_eval_template_bounded(tmpl, ctx, SIZE_MAX, err);
}

json_t *expr_eval_template_bounded(const json_t *tmpl, const json_t *ctx, size_t max_bytes,
                                   struct expr_error *err)
{
    struct expr_template *t = expr_compile(tmpl, NULL, NULL, NULL, NULL);
    json_t *result = expr_template_eval(t, ctx, max_bytes, err);
    expr_template_free(t);
    return result;
}
