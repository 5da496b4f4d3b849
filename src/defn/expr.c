/* "${...}" expressions: templates compiled once (parsed, shape-checked and their constants
 * folded) into an immutable tree when a definition is registered or loaded, and evaluated from
 * that tree at run time. */
#include "defn/expr.h"

#include "util/alloc.h"
#include "util/buf.h"
#include "util/jsonlimits.h"
#include "util/jsontext.h"

#include <math.h>
#include <stdarg.h>
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

/* How deep an expression may nest: operators and calls above a value, and parentheses, unary
 * operators and calls open at once while parsing. It bounds the recursion of parsing, folding,
 * reporting, evaluating and freeing, whatever the input. */
#define EXPR_MAX_DEPTH 64

/* What one node of an expression is. Operands are child nodes: a, and b for binary ones. */
enum expr_kind {
    EXPR_PATH,    /* a value read from the context: path */
    EXPR_LITERAL, /* a number, 'text', true, false or null, or a folded constant: value */
    EXPR_EXISTS,  /* exists(path): whether path leads to a value */
    EXPR_LEN,     /* len(a) */
    EXPR_NOT,     /* !a */
    EXPR_NEG,     /* -a */
    EXPR_OR,      /* a || b; b is evaluated only when a is false */
    EXPR_AND,     /* a && b; b is evaluated only when a is true */
    EXPR_EQ,      /* a == b */
    EXPR_NE,      /* a != b */
    EXPR_LT,      /* a < b */
    EXPR_LE,      /* a <= b */
    EXPR_GT,      /* a > b */
    EXPR_GE,      /* a >= b */
    EXPR_ADD,     /* a + b: numbers, or strings joined */
    EXPR_SUB,     /* a - b */
    EXPR_MUL,     /* a * b */
    EXPR_DIV,     /* a / b */
    EXPR_MOD,     /* a % b: integers */
};

struct expr_node {
    enum expr_kind kind;
    size_t start, len;         /* its text: src[start..start + len) of its expression */
    size_t ext_start, ext_len; /* the same with the parentheses around it, when there are */
    unsigned depth;   /* 0 for a path, a literal or exists(); else 1 + its operands' deepest */
    struct path path; /* EXPR_PATH, EXPR_EXISTS */
    json_t *value;    /* EXPR_LITERAL; owned */
    struct expr_node *a, *b; /* operands; owned */
};

/* What one "${...}" holds. */
struct expr {
    char *src; /* owned: the text between "${" and "}" without the spaces around it, for messages */
    size_t src_len;
    struct expr_node *root;
};

static void enode_free(struct expr_node *n)
{
    if (!n)
        return;
    path_free(&n->path);
    json_decref(n->value);
    enode_free(n->a);
    enode_free(n->b);
    free(n);
}

static void expr_free(struct expr *x)
{
    if (!x)
        return;
    enode_free(x->root);
    free(x->src);
    free(x);
}

/* The operator as written, for messages. */
static const char *op_text(enum expr_kind k)
{
    switch (k) {
    case EXPR_OR:
        return "||";
    case EXPR_AND:
        return "&&";
    case EXPR_EQ:
        return "==";
    case EXPR_NE:
        return "!=";
    case EXPR_LT:
        return "<";
    case EXPR_LE:
        return "<=";
    case EXPR_GT:
        return ">";
    case EXPR_GE:
        return ">=";
    case EXPR_ADD:
        return "+";
    case EXPR_SUB:
    case EXPR_NEG:
        return "-";
    case EXPR_MUL:
        return "*";
    case EXPR_DIV:
        return "/";
    case EXPR_MOD:
        return "%";
    case EXPR_NOT:
        return "!";
    case EXPR_LEN:
        return "len()";
    case EXPR_EXISTS:
        return "exists()";
    case EXPR_PATH:
    case EXPR_LITERAL:
        break;
    }
    return "?";
}

/* Appends at most max bytes of text[0..len), cut on a UTF-8 character boundary, with "..." when
 * cut: expressions are quoted in messages, and a message has a bounded size. */
static void put_excerpt(struct buf *b, const char *text, size_t len, size_t max)
{
    if (len <= max) {
        buf_append(b, text, len);
        return;
    }
    size_t n = max;
    while (n > 0 && ((unsigned char)text[n] & 0xc0) == 0x80)
        n--;
    buf_append(b, text, n);
    buf_puts(b, "...");
}

/* The longest part of an expression quoted in a message. */
#define EXCERPT_MAX 100

/* ---- resolving paths --------------------------------------------------------------------- */

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

/* Resolves a checked path in ctx. Returns a borrowed value, or NULL with msg set to the reason
 * (without the expression: the caller puts it in front). */
static json_t *resolve_path(const struct path *p, const json_t *ctx, struct buf *msg)
{
    json_t *cur;
    size_t first; /* the first segment the generic walk below handles */
    buf_reset(msg);
    if (p->root == ROOT_STEPS) {
        const struct seg *id = &p->segs[1];
        bool want_output = seg_is(&p->segs[2], "output");
        json_t *entry = json_object_getn(json_object_get(ctx, "steps"), id->key, id->key_len);
        cur = json_object_get(entry, want_output ? "output" : "error");
        if (!cur) {
            buf_puts(msg, "steps.");
            buf_append(msg, id->key, id->key_len);
            buf_puts(msg, want_output ? " has no output yet" : " has no error (it has not failed)");
            return NULL;
        }
        first = 3;
    } else if (p->root == ROOT_ITEM || p->root == ROOT_INDEX) {
        cur = json_object_get(ctx, p->root == ROOT_ITEM ? "item" : "index");
        if (!cur) {
            buf_puts(msg, "not inside a for_each");
            return NULL;
        }
        first = 1;
    } else if (p->root == ROOT_LOOPS) {
        const struct seg *id = &p->segs[1];
        json_t *loop = json_object_getn(json_object_get(ctx, "loops"), id->key, id->key_len);
        cur = json_object_get(loop, seg_is(&p->segs[2], "item") ? "item" : "index");
        if (!cur) {
            buf_puts(msg, "not inside for_each \"");
            buf_append(msg, id->key, id->key_len);
            buf_putc(msg, '"');
            return NULL;
        }
        first = 3;
    } else {
        size_t depth = p->root == ROOT_EXECUTION ? 2 : 1;
        cur = json_object_getn(ctx, p->segs[0].key, p->segs[0].key_len);
        if (cur && depth == 2)
            cur = json_object_getn(cur, p->segs[1].key, p->segs[1].key_len);
        if (!cur) {
            buf_putc(msg, '"');
            path_display(msg, p, depth);
            buf_puts(msg, "\" is not available");
            return NULL;
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
                return NULL;
            }
            next = json_object_getn(cur, s->key, s->key_len);
            if (!next) {
                buf_putc(msg, '"');
                path_display(msg, p, i);
                buf_puts(msg, "\" has no field ");
                put_quoted(msg, s);
                return NULL;
            }
        } else {
            if (!json_is_array(cur)) {
                buf_putc(msg, '"');
                path_display(msg, p, i);
                buf_printf(msg, "\" is %s, not an array, so it has no index %zu", type_name(cur),
                           s->index);
                return NULL;
            }
            next = json_array_get(cur, s->index);
            if (!next) {
                buf_putc(msg, '"');
                path_display(msg, p, i);
                buf_printf(msg, "\": index %zu out of range (array of %zu)", s->index,
                           json_array_size(cur));
                return NULL;
            }
        }
        cur = next;
    }
    return cur;
}

/* ---- operators --------------------------------------------------------------------------- */

/* What operators may still build and read in one evaluation of a template (see expr.h), so that
 * no expression costs more than its evaluation's size budget allows, however often it repeats
 * a large value. */
struct op_limits {
    size_t build_max, build_left; /* bytes of the strings "+" builds */
    size_t read_max, read_left;   /* bytes (and values) that comparisons and len() read */
};

/* The reads allowed per byte of size budget. */
#define READS_PER_BUDGET_BYTE 16

static void op_limits_init(struct op_limits *l, size_t max_bytes)
{
    l->build_max = l->build_left = max_bytes;
    l->read_max =
        max_bytes > SIZE_MAX / READS_PER_BUDGET_BYTE ? SIZE_MAX : max_bytes * READS_PER_BUDGET_BYTE;
    l->read_left = l->read_max;
}

/* An intermediate value: borrowed from the context or the compiled expression, or owned. */
struct xval {
    json_t *v;
    bool owned;
};

static void xval_drop(struct xval *v)
{
    if (v->owned)
        json_decref(v->v);
    v->v = NULL;
    v->owned = false;
}

/* One evaluation of one expression. */
struct opctx {
    const json_t *ctx;
    const struct expr *x;  /* for the text of the part that fails */
    struct op_limits *lim; /* shared by the template's expressions */
    struct buf *msg;       /* on failure: "reason in \"part\"" */
};

static bool op_fail(struct opctx *o, const struct expr_node *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Sets o->msg to the reason and the part of the expression that failed; returns false. */
static bool op_fail(struct opctx *o, const struct expr_node *n, const char *fmt, ...)
{
    va_list ap;
    buf_reset(o->msg);
    va_start(ap, fmt);
    buf_vprintf(o->msg, fmt, ap);
    va_end(ap);
    buf_puts(o->msg, " in \"");
    put_excerpt(o->msg, o->x->src + n->start, n->len, EXCERPT_MAX);
    buf_putc(o->msg, '"');
    return false;
}

/* The JSON type of v without an article, for operator messages. */
static const char *type_word(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "object";
    case JSON_ARRAY:
        return "array";
    case JSON_STRING:
        return "string";
    case JSON_INTEGER:
    case JSON_REAL:
        return "number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "boolean";
    case JSON_NULL:
        return "null";
    }
    return "value";
}

/* Counts n more units read; false (nothing counted) when they are over the limit. */
static bool charge_read(struct opctx *o, size_t n)
{
    if (n > o->lim->read_left)
        return false;
    o->lim->read_left -= n;
    return true;
}

static bool read_limit_fail(struct opctx *o, const struct expr_node *n)
{
    return op_fail(o, n, "the values compared or measured are larger than the limit of %zu bytes",
                   o->lim->read_max);
}

/* Compares integer i with the finite real d exactly (a double cannot hold every int64). */
static int int_real_cmp(json_int_t i, double d)
{
    if (d >= 9223372036854775808.0)
        return -1;
    if (d < -9223372036854775808.0)
        return 1;
    double t = trunc(d); /* within [-2^63, 2^63): converts exactly */
    json_int_t ti = (json_int_t)t;
    if (i != ti)
        return i < ti ? -1 : 1;
    return t < d ? -1 : t > d ? 1 : 0;
}

/* Compares two numbers by value: -1, 0 or 1. */
static int num_cmp(const json_t *a, const json_t *b)
{
    if (json_is_integer(a) && json_is_integer(b)) {
        json_int_t i = json_integer_value(a), j = json_integer_value(b);
        return (i > j) - (i < j);
    }
    if (json_is_real(a) && json_is_real(b)) {
        double x = json_real_value(a), y = json_real_value(b);
        return (x > y) - (x < y);
    }
    if (json_is_real(a))
        return -int_real_cmp(json_integer_value(b), json_real_value(a));
    return int_real_cmp(json_integer_value(a), json_real_value(b));
}

/* The kinds that == and != compare: integers and reals are one kind, true and false another. */
static int value_kind(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_INTEGER:
    case JSON_REAL:
        return 1;
    case JSON_TRUE:
    case JSON_FALSE:
        return 2;
    default:
        return 3 + (int)json_typeof(v);
    }
}

/* Deep equality with numbers compared by value (1 == 1.0, also inside arrays and objects);
 * values of different kinds inside arrays and objects are simply unequal. Counts what it reads:
 * one per value and the bytes of strings and keys. Sets *over when that is over the limit. */
static bool same_value(struct opctx *o, const json_t *a, const json_t *b, bool *over)
{
    if (!charge_read(o, 1)) {
        *over = true;
        return false;
    }
    if (value_kind(a) != value_kind(b))
        return false;
    switch (json_typeof(a)) {
    case JSON_NULL:
        return true;
    case JSON_TRUE:
    case JSON_FALSE:
        return json_typeof(a) == json_typeof(b);
    case JSON_INTEGER:
    case JSON_REAL:
        return num_cmp(a, b) == 0;
    case JSON_STRING: {
        size_t la = json_string_length(a);
        if (la != json_string_length(b))
            return false;
        if (!charge_read(o, la)) {
            *over = true;
            return false;
        }
        return memcmp(json_string_value(a), json_string_value(b), la) == 0;
    }
    case JSON_ARRAY: {
        size_t n = json_array_size(a);
        if (n != json_array_size(b))
            return false;
        for (size_t i = 0; i < n; i++)
            if (!same_value(o, json_array_get(a, i), json_array_get(b, i), over))
                return false;
        return true;
    }
    case JSON_OBJECT: {
        if (json_object_size(a) != json_object_size(b))
            return false;
        const char *key;
        size_t key_len;
        json_t *va;
        json_object_keylen_foreach((json_t *)a, key, key_len, va)
        {
            if (!charge_read(o, key_len)) {
                *over = true;
                return false;
            }
            json_t *vb = json_object_getn(b, key, key_len);
            if (!vb || !same_value(o, va, vb, over))
                return false;
        }
        return true;
    }
    }
    return false;
}

static bool set_bool(struct xval *out, bool b)
{
    out->v = json_boolean(b);
    out->owned = false; /* jansson's singletons */
    return true;
}

static bool eval_equality(struct opctx *o, const struct expr_node *n, const json_t *a,
                          const json_t *b, struct xval *out)
{
    bool equal;
    if (json_is_null(a) || json_is_null(b)) {
        equal = json_is_null(a) && json_is_null(b);
    } else if (value_kind(a) != value_kind(b)) {
        return op_fail(o, n, "cannot compare %s with %s", type_word(a), type_word(b));
    } else {
        bool over = false;
        equal = same_value(o, a, b, &over);
        if (over)
            return read_limit_fail(o, n);
    }
    return set_bool(out, n->kind == EXPR_EQ ? equal : !equal);
}

static bool eval_order(struct opctx *o, const struct expr_node *n, const json_t *a, const json_t *b,
                       struct xval *out)
{
    int cmp;
    if (json_is_number(a) && json_is_number(b)) {
        cmp = num_cmp(a, b);
    } else if (json_is_string(a) && json_is_string(b)) {
        size_t la = json_string_length(a), lb = json_string_length(b);
        size_t common = la < lb ? la : lb;
        if (!charge_read(o, common))
            return read_limit_fail(o, n);
        cmp = memcmp(json_string_value(a), json_string_value(b), common);
        if (cmp == 0)
            cmp = (la > lb) - (la < lb);
    } else {
        return op_fail(o, n, "cannot compare %s with %s", type_word(a), type_word(b));
    }
    switch (n->kind) {
    case EXPR_LT:
        return set_bool(out, cmp < 0);
    case EXPR_LE:
        return set_bool(out, cmp <= 0);
    case EXPR_GT:
        return set_bool(out, cmp > 0);
    default:
        return set_bool(out, cmp >= 0);
    }
}

static bool set_owned(struct xval *out, json_t *v)
{
    out->v = v;
    out->owned = true;
    return true;
}

/* "integer" or "real number" for %'s message, else the type. */
static const char *int_word(const json_t *v)
{
    return json_is_integer(v) ? "integer" : json_is_real(v) ? "real number" : type_word(v);
}

static bool eval_arith(struct opctx *o, const struct expr_node *n, const json_t *a, const json_t *b,
                       struct xval *out)
{
    if (n->kind == EXPR_ADD && json_is_string(a) && json_is_string(b)) {
        size_t la = json_string_length(a), lb = json_string_length(b);
        struct op_limits *l = o->lim;
        if (la > l->build_left || lb > l->build_left - la)
            return op_fail(o, n,
                           "the strings built by \"+\" are longer than the limit of %zu bytes",
                           l->build_max);
        l->build_left -= la + lb;
        char *joined = xmalloc(la + lb + 1);
        memcpy(joined, json_string_value(a), la);
        memcpy(joined + la, json_string_value(b), lb);
        joined[la + lb] = '\0';
        /* Two valid UTF-8 strings make a valid one. */
        json_t *s = json_stringn_nocheck(joined, la + lb);
        free(joined);
        return set_owned(out, s);
    }
    if (n->kind == EXPR_MOD && !(json_is_integer(a) && json_is_integer(b)))
        return op_fail(o, n, "cannot apply \"%%\" to %s and %s (it takes integers)", int_word(a),
                       int_word(b));
    if (!json_is_number(a) || !json_is_number(b)) {
        if (n->kind == EXPR_ADD)
            return op_fail(o, n,
                           "cannot apply \"+\" to %s and %s (it takes two numbers or two strings)",
                           type_word(a), type_word(b));
        return op_fail(o, n, "cannot apply \"%s\" to %s and %s (it takes numbers)",
                       op_text(n->kind), type_word(a), type_word(b));
    }
    if (json_is_integer(a) && json_is_integer(b)) {
        json_int_t i = json_integer_value(a), j = json_integer_value(b), r;
        bool overflow = false;
        switch (n->kind) {
        case EXPR_ADD:
            overflow = __builtin_add_overflow(i, j, &r);
            break;
        case EXPR_SUB:
            overflow = __builtin_sub_overflow(i, j, &r);
            break;
        case EXPR_MUL:
            overflow = __builtin_mul_overflow(i, j, &r);
            break;
        case EXPR_DIV:
            if (j == 0)
                return op_fail(o, n, "division by zero");
            if (j == -1) {
                overflow = __builtin_sub_overflow((json_int_t)0, i, &r);
                break;
            }
            if (i % j != 0)
                return set_owned(out, json_real((double)i / (double)j));
            r = i / j;
            break;
        default: /* EXPR_MOD */
            if (j == 0)
                return op_fail(o, n, "division by zero");
            /* INT64_MIN % -1 is undefined behaviour in C; its value is 0. */
            r = j == -1 ? 0 : i % j;
            break;
        }
        if (overflow)
            return op_fail(o, n, "integer overflow (the result does not fit in 64 bits)");
        return set_owned(out, json_integer(r));
    }
    double x = json_number_value(a), y = json_number_value(b), r;
    switch (n->kind) {
    case EXPR_ADD:
        r = x + y;
        break;
    case EXPR_SUB:
        r = x - y;
        break;
    case EXPR_MUL:
        r = x * y;
        break;
    default: /* EXPR_DIV */
        if (y == 0)
            return op_fail(o, n, "division by zero");
        r = x / y;
        break;
    }
    json_t *v = isfinite(r) ? json_real(r) : NULL;
    if (!v)
        return op_fail(o, n, "the result is not a finite number");
    return set_owned(out, v);
}

/* The number of Unicode code points of a valid UTF-8 string: the bytes that start one. */
static size_t utf8_length(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += ((unsigned char)s[i] & 0xc0) != 0x80;
    return n;
}

static bool op_eval(struct opctx *o, const struct expr_node *n, struct xval *out);

/* Evaluates a boolean operand of &&, || or !. */
static bool eval_bool(struct opctx *o, const struct expr_node *n, const struct expr_node *operand,
                      bool *b)
{
    struct xval v = {NULL, false};
    if (!op_eval(o, operand, &v))
        return false;
    if (!json_is_boolean(v.v)) {
        bool ok = op_fail(o, n, "cannot apply \"%s\" to %s (it takes %s)", op_text(n->kind),
                          type_word(v.v), n->kind == EXPR_NOT ? "a boolean" : "booleans");
        xval_drop(&v);
        return ok;
    }
    *b = json_is_true(v.v);
    xval_drop(&v);
    return true;
}

/* Evaluates node n. Returns true with *out set (the caller drops it), or false with o->msg
 * set. */
static bool op_eval(struct opctx *o, const struct expr_node *n, struct xval *out)
{
    switch (n->kind) {
    case EXPR_PATH: {
        json_t *v = resolve_path(&n->path, o->ctx, o->msg);
        if (!v) {
            buf_puts(o->msg, " in \"");
            put_excerpt(o->msg, o->x->src + n->start, n->len, EXCERPT_MAX);
            buf_putc(o->msg, '"');
            return false;
        }
        out->v = v;
        out->owned = false;
        return true;
    }
    case EXPR_LITERAL:
        out->v = n->value;
        out->owned = false;
        return true;
    case EXPR_EXISTS: {
        struct buf ignored = BUF_INIT;
        bool there = resolve_path(&n->path, o->ctx, &ignored) != NULL;
        buf_free(&ignored);
        return set_bool(out, there);
    }
    case EXPR_NOT: {
        bool b;
        return eval_bool(o, n, n->a, &b) && set_bool(out, !b);
    }
    case EXPR_AND:
    case EXPR_OR: {
        bool b;
        if (!eval_bool(o, n, n->a, &b))
            return false;
        /* Short-circuit: false && ..., true || ... never look at their right operand. */
        if (b == (n->kind == EXPR_OR))
            return set_bool(out, b);
        return eval_bool(o, n, n->b, &b) && set_bool(out, b);
    }
    default:
        break;
    }

    /* The rest evaluate every operand first. */
    struct xval a = {NULL, false}, b = {NULL, false};
    bool ok = false;
    if (!op_eval(o, n->a, &a) || (n->b && !op_eval(o, n->b, &b)))
        goto Exit;
    switch (n->kind) {
    case EXPR_NEG:
        if (json_is_integer(a.v)) {
            json_int_t r;
            if (__builtin_sub_overflow((json_int_t)0, json_integer_value(a.v), &r))
                ok = op_fail(o, n, "integer overflow (the result does not fit in 64 bits)");
            else
                ok = set_owned(out, json_integer(r));
        } else if (json_is_real(a.v)) {
            ok = set_owned(out, json_real(-json_real_value(a.v)));
        } else {
            ok = op_fail(o, n, "cannot apply \"-\" to %s (it takes a number)", type_word(a.v));
        }
        break;
    case EXPR_LEN:
        if (json_is_string(a.v)) {
            size_t la = json_string_length(a.v);
            if (!charge_read(o, la))
                ok = read_limit_fail(o, n);
            else
                ok = set_owned(out,
                               json_integer((json_int_t)utf8_length(json_string_value(a.v), la)));
        } else if (json_is_array(a.v)) {
            ok = set_owned(out, json_integer((json_int_t)json_array_size(a.v)));
        } else if (json_is_object(a.v)) {
            ok = set_owned(out, json_integer((json_int_t)json_object_size(a.v)));
        } else {
            ok =
                op_fail(o, n, "cannot apply len() to %s (it takes a string, an array or an object)",
                        type_word(a.v));
        }
        break;
    case EXPR_EQ:
    case EXPR_NE:
        ok = eval_equality(o, n, a.v, b.v, out);
        break;
    case EXPR_LT:
    case EXPR_LE:
    case EXPR_GT:
    case EXPR_GE:
        ok = eval_order(o, n, a.v, b.v, out);
        break;
    case EXPR_ADD:
    case EXPR_SUB:
    case EXPR_MUL:
    case EXPR_DIV:
    case EXPR_MOD:
        ok = eval_arith(o, n, a.v, b.v, out);
        break;
    default:
        buf_reset(o->msg);
        buf_puts(o->msg, "unknown kind of expression");
        break;
    }
Exit:
    xval_drop(&a);
    xval_drop(&b);
    return ok;
}

/* Evaluates the expression x in ctx. Returns true with *out set (the caller drops it; a
 * borrowed value is the context's or the compiled template's own and must not change), or false
 * with msg set to "${...}: reason". */
static bool expr_eval(const struct expr *x, const json_t *ctx, struct op_limits *lim,
                      struct buf *msg, struct xval *out)
{
    if (x->root->kind == EXPR_PATH) {
        /* A lone path is named as it always was: "${input.a}: ...", however it was spaced. */
        json_t *v = resolve_path(&x->root->path, ctx, msg);
        if (!v) {
            prefix_with_path(msg, &x->root->path);
            return false;
        }
        out->v = v;
        out->owned = false;
        return true;
    }
    struct opctx o = {ctx, x, lim, msg};
    if (op_eval(&o, x->root, out))
        return true;
    char *reason = buf_steal(msg);
    buf_puts(msg, "${");
    put_excerpt(msg, x->src, x->src_len, EXCERPT_MAX);
    buf_puts(msg, "}: ");
    buf_puts(msg, reason);
    free(reason);
    return false;
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

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
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

/* One expression being parsed: s[dollar] is the '$' of its "${". */
struct parser {
    const char *s;
    size_t len;
    size_t dollar;
    size_t i;                 /* where the next token starts (before any spaces) */
    size_t src_start;         /* where the expression's text starts: node spans count from here */
    size_t prev_at, prev_len; /* the last token read, for "after ..." in messages */
    unsigned nesting;         /* parentheses, calls and unary operators open */
    struct buf *msg;
};

enum token_kind {
    TOK_END,    /* "}" */
    TOK_EOF,    /* the end of the string, without "}" */
    TOK_LPAREN, /* "(" */
    TOK_RPAREN, /* ")" */
    TOK_COMMA,  /* "," */
    TOK_OP,     /* an operator: op */
    TOK_NUMBER, /* a digit */
    TOK_STRING, /* "'" */
    TOK_NAME,   /* [A-Za-z_]: a path, true, false, null or a function */
    TOK_BAD,    /* anything else */
};

struct token {
    enum token_kind kind;
    size_t at;  /* where it starts in s */
    size_t len; /* TOK_OP: 1 or 2 */
    enum expr_kind op;
};

/* Skips spaces and tells what comes next, without consuming it. */
static void peek(struct parser *p, struct token *t)
{
    const char *s = p->s;
    while (p->i < p->len && is_space(s[p->i]))
        p->i++;
    t->at = p->i;
    t->len = 1;
    t->op = EXPR_LITERAL;
    if (p->i >= p->len) {
        t->kind = TOK_EOF;
        return;
    }
    char c = s[p->i], next = p->i + 1 < p->len ? s[p->i + 1] : '\0';
    t->kind = TOK_OP;
    switch (c) {
    case '}':
        t->kind = TOK_END;
        return;
    case '(':
        t->kind = TOK_LPAREN;
        return;
    case ')':
        t->kind = TOK_RPAREN;
        return;
    case ',':
        t->kind = TOK_COMMA;
        return;
    case '\'':
        t->kind = TOK_STRING;
        return;
    case '|':
    case '&':
    case '=':
        if (next != c) {
            t->kind = TOK_BAD;
            return;
        }
        t->len = 2;
        t->op = c == '|' ? EXPR_OR : c == '&' ? EXPR_AND : EXPR_EQ;
        return;
    case '!':
        t->op = next == '=' ? EXPR_NE : EXPR_NOT;
        t->len = next == '=' ? 2 : 1;
        return;
    case '<':
    case '>':
        t->len = next == '=' ? 2 : 1;
        t->op = c == '<' ? (next == '=' ? EXPR_LE : EXPR_LT) : (next == '=' ? EXPR_GE : EXPR_GT);
        return;
    case '+':
        t->op = EXPR_ADD;
        return;
    case '-':
        t->op = EXPR_SUB;
        return;
    case '*':
        t->op = EXPR_MUL;
        return;
    case '/':
        t->op = EXPR_DIV;
        return;
    case '%':
        t->op = EXPR_MOD;
        return;
    default:
        break;
    }
    if (is_digit(c))
        t->kind = TOK_NUMBER;
    else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_')
        t->kind = TOK_NAME;
    else
        t->kind = TOK_BAD;
}

static void take(struct parser *p, size_t at, size_t len)
{
    p->i = at + len;
    p->prev_at = at;
    p->prev_len = len;
}

/* Binary operators bind by level, lowest first; 0 for what is not one. */
static int binary_level(enum expr_kind op)
{
    switch (op) {
    case EXPR_OR:
        return 1;
    case EXPR_AND:
        return 2;
    case EXPR_EQ:
    case EXPR_NE:
        return 3;
    case EXPR_LT:
    case EXPR_LE:
    case EXPR_GT:
    case EXPR_GE:
        return 4;
    case EXPR_ADD:
    case EXPR_SUB:
        return 5;
    case EXPR_MUL:
    case EXPR_DIV:
    case EXPR_MOD:
        return 6;
    default:
        return 0;
    }
}
#define MAX_LEVEL 6

static void *syntax_error(struct parser *p, size_t at, const char *tail, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* A syntax error at s[at]: msg gets "${raw}: reason at offset N" and then tail (when not NULL),
 * N counted from just after "${". Returns NULL. */
static void *syntax_error(struct parser *p, size_t at, const char *tail, const char *fmt, ...)
{
    struct buf reason = BUF_INIT;
    va_list ap;
    va_start(ap, fmt);
    buf_vprintf(&reason, fmt, ap);
    va_end(ap);
    buf_printf(&reason, " at offset %zu", at - (p->dollar + 2));
    if (tail)
        buf_puts(&reason, tail);
    parse_fail(p->msg, p->s, p->len, p->dollar, reason.data);
    buf_free(&reason);
    return NULL;
}

/* A hint for the characters people carry over from other languages, or NULL. */
static const char *char_hint(const struct parser *p, size_t at)
{
    if (at >= p->len)
        return NULL;
    char c = p->s[at], next = at + 1 < p->len ? p->s[at + 1] : '\0';
    if (c == '"')
        return "; text is written in single quotes: 'text'";
    if (c == '=' && next != '=')
        return "; use \"==\" to compare";
    if (c == '&' && next != '&')
        return "; use \"&&\"";
    if (c == '|' && next != '|')
        return "; use \"||\"";
    return NULL;
}

static void *missing_brace(struct parser *p)
{
    parse_fail(p->msg, p->s, p->len, p->dollar, "missing \"}\" to close the expression");
    return NULL;
}

/* Appends how the character at s[at] is named in a message. */
static void put_char_name(struct buf *b, const char *s, size_t at)
{
    unsigned char u = (unsigned char)s[at];
    if (u > 0x20 && u < 0x7f)
        buf_printf(b, "\"%c\"", u);
    else
        buf_puts(b, "character");
}

/* The last token read, quoted, for messages. */
static void put_prev(struct parser *p, struct buf *b)
{
    buf_putc(b, '"');
    put_excerpt(b, p->s + p->prev_at, p->prev_len, 40);
    buf_putc(b, '"');
}

/* An operand was expected at t. */
static void *expected_operand(struct parser *p, const struct token *t)
{
    if (t->kind == TOK_EOF)
        return missing_brace(p);
    bool first = p->prev_at == p->dollar; /* nothing read yet but "${" */
    if (t->kind == TOK_END && first) {
        parse_fail(p->msg, p->s, p->len, p->dollar, "empty expression");
        return NULL;
    }
    struct buf prev = BUF_INIT;
    put_prev(p, &prev);
    syntax_error(p, t->at, char_hint(p, t->at), "%s after %s",
                 first ? "expected a path (input, steps, execution, item, index or loops), a "
                         "literal or \"(\""
                       : "expected an operand",
                 prev.data);
    buf_free(&prev);
    return NULL;
}

/* Something else than an operator or what closes came after an operand. closer: "\"}\"" or
 * "\")\""; open: where the "(" it closes is. */
static void *unexpected_after_operand(struct parser *p, const struct token *t, const char *closer,
                                      size_t open)
{
    if (t->kind == TOK_EOF)
        return missing_brace(p);
    if (t->kind == TOK_END && closer[1] == ')')
        return syntax_error(p, open, NULL, "missing \")\" to close the \"(\"");
    struct buf what = BUF_INIT, tail = BUF_INIT;
    put_char_name(&what, p->s, t->at);
    buf_puts(&what, " after ");
    put_prev(p, &what);
    const char *hint = char_hint(p, t->at);
    buf_printf(&tail, "; expected an operator or %s%s", closer, hint ? hint : "");
    syntax_error(p, t->at, tail.data, "unexpected %s", what.data);
    buf_free(&what);
    buf_free(&tail);
    return NULL;
}

static struct expr_node *new_node(struct parser *p, enum expr_kind kind, size_t at, size_t end)
{
    struct expr_node *n = xcalloc(1, sizeof *n);
    n->kind = kind;
    n->start = n->ext_start = at - p->src_start;
    n->len = n->ext_len = end - at;
    return n;
}

/* An operator node over a (and b); frees them and fails when it would nest too deeply. at is
 * where the operator is written. */
static struct expr_node *make_op(struct parser *p, enum expr_kind kind, struct expr_node *a,
                                 struct expr_node *b, size_t at, size_t start, size_t end)
{
    unsigned depth = 1 + (b && b->depth > a->depth ? b->depth : a->depth);
    if (depth > EXPR_MAX_DEPTH) {
        enode_free(a);
        enode_free(b);
        return syntax_error(p, at, NULL, "the expression nests more than %d levels deep",
                            EXPR_MAX_DEPTH);
    }
    struct expr_node *n = new_node(p, kind, start, end);
    n->depth = depth;
    n->a = a;
    n->b = b;
    return n;
}

/* Where n ends in s, the parentheses around it included. */
static size_t node_end(const struct parser *p, const struct expr_node *n)
{
    return p->src_start + n->ext_start + n->ext_len;
}

/* Parses a path whose root name starts at s[p->i], with its old messages. */
static bool parse_path(struct parser *p, struct path *path)
{
    const char *s = p->s;
    size_t len = p->len, i = p->i, start = i;
    const char *why = NULL;
    struct buf key = BUF_INIT;

    while (i < len && is_name_char(s[i]))
        i++;
    path_push(path, (struct seg){SEG_NAME, xstrndup(s + start, i - start), i - start, 0});
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
            path_push(path, (struct seg){SEG_NAME, xstrndup(s + start, i - start), i - start, 0});
        } else if (c == '[') {
            i++;
            if (i < len && s[i] == '"') {
                i++;
                buf_reset(&key);
                if (!parse_quoted(s, len, &i, &key, &why))
                    goto Exit;
                size_t klen = key.len;
                char *k = key.data ? buf_steal(&key) : xstrdup("");
                path_push(path, (struct seg){SEG_NAME, k, klen, 0});
            } else if (i < len && is_digit(s[i])) {
                size_t n = 0;
                while (i < len && is_digit(s[i])) {
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
                path_push(path, (struct seg){SEG_INDEX, NULL, 0, n});
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
            break;
        }
    }
    buf_free(&key);
    take(p, p->i, i - p->i);
    return true;

Exit:
    parse_fail(p->msg, s, len, p->dollar, why);
    buf_free(&key);
    path_free(path);
    return false;
}

/* Parses a number; s[digits] is its first digit, s[at] its "-" when negative. */
static struct expr_node *parse_number(struct parser *p, size_t at, size_t digits)
{
    const char *s = p->s;
    size_t len = p->len, j = digits;
    bool real = false, bad = false;
    if (s[j] == '0') {
        j++;
    } else {
        while (j < len && is_digit(s[j]))
            j++;
    }
    if (j < len && s[j] == '.') {
        if (j + 1 < len && is_digit(s[j + 1])) {
            j++;
            while (j < len && is_digit(s[j]))
                j++;
            real = true;
        } else {
            bad = true;
        }
    }
    if (!bad && j < len && (s[j] == 'e' || s[j] == 'E')) {
        size_t k = j + 1;
        if (k < len && (s[k] == '+' || s[k] == '-'))
            k++;
        if (k < len && is_digit(s[k])) {
            while (k < len && is_digit(s[k]))
                k++;
            j = k;
            real = true;
        } else {
            bad = true;
        }
    }
    if (bad || (j < len && ((is_name_char(s[j]) && s[j] != '-') || s[j] == '.'))) {
        size_t end = j;
        while (end < len && ((is_name_char(s[end]) && s[end] != '-') || s[end] == '.'))
            end++;
        struct buf text = BUF_INIT;
        put_excerpt(&text, s + digits, end - digits, 40);
        syntax_error(p, digits, NULL, "malformed number \"%s\"", text.data);
        buf_free(&text);
        return NULL;
    }
    bool negative = at != digits;
    json_t *value;
    if (!real) {
        uint64_t mag = 0;
        bool over = false;
        for (size_t k = digits; k < j && !over; k++)
            over = __builtin_mul_overflow(mag, 10, &mag) ||
                   __builtin_add_overflow(mag, (uint64_t)(s[k] - '0'), &mag);
        uint64_t limit = negative ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
        if (over || mag > limit) {
            struct buf text = BUF_INIT;
            put_excerpt(&text, s + digits, j - digits, 40);
            syntax_error(p, digits, NULL, "the integer %s%s does not fit in 64 bits",
                         negative ? "-" : "", text.data);
            buf_free(&text);
            return NULL;
        }
        json_int_t v = negative ? (mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(json_int_t)mag)
                                : (json_int_t)mag;
        value = json_integer(v);
    } else {
        char *text = xmalloc(j - digits + 2);
        text[0] = '-';
        memcpy(text + 1, s + digits, j - digits);
        text[j - digits + 1] = '\0';
        double d = strtod(negative ? text : text + 1, NULL);
        value = isfinite(d) ? json_real(d) : NULL;
        if (!value) {
            syntax_error(p, digits, NULL, "the number %s is out of range", text + !negative);
            free(text);
            return NULL;
        }
        free(text);
    }
    take(p, at, j - at);
    struct expr_node *n = new_node(p, EXPR_LITERAL, at, j);
    n->value = value;
    return n;
}

/* Parses 'text' with s[p->i] at the opening quote. */
static struct expr_node *parse_string(struct parser *p)
{
    const char *s = p->s;
    size_t at = p->i, j = at + 1;
    struct buf text = BUF_INIT;
    for (;;) {
        if (j >= p->len) {
            buf_free(&text);
            return syntax_error(p, at, NULL, "missing closing quote in a string");
        }
        char c = s[j];
        if (c == '\'')
            break;
        if (c == '\\') {
            if (j + 1 < p->len && (s[j + 1] == '\'' || s[j + 1] == '\\')) {
                buf_putc(&text, s[j + 1]);
                j += 2;
                continue;
            }
            buf_free(&text);
            return syntax_error(p, j, NULL, "only \\' and \\\\ may be escaped in a string");
        }
        buf_putc(&text, c);
        j++;
    }
    json_t *value = json_stringn(text.data ? text.data : "", text.len);
    buf_free(&text);
    if (!value) /* only from a template that is not valid UTF-8 */
        return syntax_error(p, at, NULL, "the string is not valid UTF-8");
    take(p, at, j + 1 - at);
    struct expr_node *n = new_node(p, EXPR_LITERAL, at, j + 1);
    n->value = value;
    return n;
}

static struct expr_node *parse_level(struct parser *p, int level);

/* Opens a parenthesis, a call or a unary operator at s[at]; fails beyond the nesting bound. */
static bool nest(struct parser *p, size_t at)
{
    if (++p->nesting <= EXPR_MAX_DEPTH)
        return true;
    syntax_error(p, at, NULL, "the expression nests more than %d levels deep", EXPR_MAX_DEPTH);
    return false;
}

/* Parses len(x) or exists(path): s[at..name_end) is the name, s[open] the "(". */
static struct expr_node *parse_call(struct parser *p, size_t at, size_t name_end, size_t open)
{
    const char *s = p->s;
    size_t name_len = name_end - at;
    enum expr_kind fn;
    if (name_len == 3 && memcmp(s + at, "len", 3) == 0) {
        fn = EXPR_LEN;
    } else if (name_len == 6 && memcmp(s + at, "exists", 6) == 0) {
        fn = EXPR_EXISTS;
    } else {
        struct buf name = BUF_INIT;
        put_excerpt(&name, s + at, name_len, 40);
        syntax_error(p, at, "; the functions are len() and exists()", "unknown function \"%s\"",
                     name.data);
        buf_free(&name);
        return NULL;
    }
    if (!nest(p, open))
        return NULL;
    take(p, open, 1);
    struct token t;
    peek(p, &t);
    if (t.kind == TOK_RPAREN)
        return syntax_error(p, at, NULL, "%s takes one argument", op_text(fn));
    struct expr_node *arg = parse_level(p, 1);
    if (!arg)
        return NULL;
    peek(p, &t);
    if (t.kind != TOK_RPAREN) {
        enode_free(arg);
        if (t.kind == TOK_COMMA)
            return syntax_error(p, t.at, NULL, "%s takes one argument", op_text(fn));
        return unexpected_after_operand(p, &t, "\")\"", open);
    }
    p->nesting--;
    take(p, t.at, 1);
    if (fn == EXPR_EXISTS) {
        if (arg->kind != EXPR_PATH) {
            struct buf text = BUF_INIT;
            put_excerpt(&text, s + p->src_start + arg->start, arg->len, 40);
            syntax_error(p, p->src_start + arg->start, NULL,
                         "exists() takes a path, such as exists(input.x), not \"%s\"", text.data);
            buf_free(&text);
            enode_free(arg);
            return NULL;
        }
        arg->kind = EXPR_EXISTS;
        arg->start = arg->ext_start = at - p->src_start;
        arg->len = arg->ext_len = t.at + 1 - at;
        return arg;
    }
    return make_op(p, EXPR_LEN, arg, NULL, at, at, t.at + 1);
}

/* A path, a literal, a call or a parenthesised expression. */
static struct expr_node *parse_primary(struct parser *p)
{
    const char *s = p->s;
    struct token t;
    peek(p, &t);
    switch (t.kind) {
    case TOK_NUMBER:
        return parse_number(p, t.at, t.at);
    case TOK_STRING:
        return parse_string(p);
    case TOK_LPAREN: {
        if (!nest(p, t.at))
            return NULL;
        take(p, t.at, 1);
        struct expr_node *inner = parse_level(p, 1);
        if (!inner)
            return NULL;
        struct token close;
        peek(p, &close);
        if (close.kind != TOK_RPAREN) {
            enode_free(inner);
            return unexpected_after_operand(p, &close, "\")\"", t.at);
        }
        p->nesting--;
        take(p, close.at, 1);
        inner->ext_start = t.at - p->src_start;
        inner->ext_len = close.at + 1 - t.at;
        return inner;
    }
    case TOK_NAME: {
        size_t end = t.at;
        while (end < p->len && is_name_char(s[end]))
            end++;
        size_t after = end;
        while (after < p->len && is_space(s[after]))
            after++;
        if (after < p->len && s[after] == '(')
            return parse_call(p, t.at, end, after);
        bool segment = end < p->len && (s[end] == '.' || s[end] == '[');
        static const char *const words[] = {"true", "false", "null"};
        for (size_t k = 0; k < 3 && !segment; k++) {
            if (end - t.at == strlen(words[k]) && memcmp(s + t.at, words[k], end - t.at) == 0) {
                take(p, t.at, end - t.at);
                struct expr_node *n = new_node(p, EXPR_LITERAL, t.at, end);
                n->value = k == 0 ? json_true() : k == 1 ? json_false() : json_null();
                return n;
            }
        }
        struct path path = {0};
        if (!parse_path(p, &path))
            return NULL;
        struct expr_node *n = new_node(p, EXPR_PATH, t.at, p->i);
        n->path = path;
        return n;
    }
    default:
        return expected_operand(p, &t);
    }
}

static struct expr_node *parse_unary(struct parser *p)
{
    struct token t;
    peek(p, &t);
    if (t.kind != TOK_OP || (t.op != EXPR_NOT && t.op != EXPR_SUB))
        return parse_primary(p);
    if (!nest(p, t.at))
        return NULL;
    take(p, t.at, 1);
    struct expr_node *operand;
    struct token next;
    peek(p, &next);
    if (t.op == EXPR_SUB && next.kind == TOK_NUMBER) {
        /* -5 is one literal, so that -9223372036854775808 can be written. */
        p->nesting--;
        return parse_number(p, t.at, next.at);
    }
    operand = parse_unary(p);
    p->nesting--;
    if (!operand)
        return NULL;
    return make_op(p, t.op == EXPR_SUB ? EXPR_NEG : EXPR_NOT, operand, NULL, t.at, t.at,
                   node_end(p, operand));
}

/* Parses the binary operators of level and above (left-associative), then unary ones. */
static struct expr_node *parse_level(struct parser *p, int level)
{
    if (level > MAX_LEVEL)
        return parse_unary(p);
    struct expr_node *left = parse_level(p, level + 1);
    while (left) {
        struct token t;
        peek(p, &t);
        if (t.kind != TOK_OP || binary_level(t.op) != level)
            return left;
        take(p, t.at, t.len);
        struct expr_node *right = parse_level(p, level + 1);
        if (!right) {
            enode_free(left);
            return NULL;
        }
        left =
            make_op(p, t.op, left, right, t.at, p->src_start + left->ext_start, node_end(p, right));
    }
    return NULL;
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
    if (memchr(root->key, '-', root->key_len)) {
        /* "-" is part of a name: index-1 is the root "index-1", not index minus 1. */
        buf_puts(msg, "; to subtract, put spaces around \"-\": ");
        for (size_t k = 0; k < root->key_len; k++) {
            if (root->key[k] == '-')
                buf_puts(msg, " - ");
            else
                buf_putc(msg, root->key[k]);
        }
    }
    return msg->data;
}

/* Rewrites msg, holding a reason about node n of x, as "${src}: reason in \"part\"". */
static void prefix_with_expr(struct buf *msg, const struct expr *x, const struct expr_node *n)
{
    char *reason = buf_steal(msg);
    buf_puts(msg, "${");
    put_excerpt(msg, x->src, x->src_len, EXCERPT_MAX);
    buf_puts(msg, "}: ");
    buf_puts(msg, reason);
    if (n) {
        buf_puts(msg, " in \"");
        put_excerpt(msg, x->src + n->start, n->len, EXCERPT_MAX);
        buf_putc(msg, '"');
    }
    free(reason);
}

/* Checks the shape of every path of n, in the order they are written. */
static bool check_paths(const struct expr *x, struct expr_node *n, struct buf *msg)
{
    if (n->kind == EXPR_PATH || n->kind == EXPR_EXISTS) {
        if (!check_shape(&n->path, msg))
            return true;
        if (n == x->root && n->kind == EXPR_PATH) /* a lone path is named as it always was */
            prefix_with_path(msg, &n->path);
        else
            prefix_with_expr(msg, x, n);
        return false;
    }
    return (!n->a || check_paths(x, n->a, msg)) && (!n->b || check_paths(x, n->b, msg));
}

/* Folds every operator whose operands are all literals into a literal, innermost first, so that
 * one that cannot be evaluated (1 + 'a', 1 / 0) is refused when the template is compiled. */
static bool fold(struct opctx *o, struct expr_node *n)
{
    if (n->kind == EXPR_PATH || n->kind == EXPR_EXISTS || n->kind == EXPR_LITERAL)
        return true;
    if (!fold(o, n->a) || (n->b && !fold(o, n->b)))
        return false;
    if (n->a->kind != EXPR_LITERAL || (n->b && n->b->kind != EXPR_LITERAL))
        return true;
    struct xval v = {NULL, false};
    if (!op_eval(o, n, &v)) {
        char *reason = buf_steal(o->msg);
        buf_puts(o->msg, "${");
        put_excerpt(o->msg, o->x->src, o->x->src_len, EXCERPT_MAX);
        buf_puts(o->msg, "}: ");
        buf_puts(o->msg, reason);
        free(reason);
        return false;
    }
    /* A borrowed result is an operand's literal, freed below. */
    json_t *value = v.owned ? v.v : json_incref(v.v);
    enode_free(n->a);
    enode_free(n->b);
    n->a = n->b = NULL;
    n->kind = EXPR_LITERAL;
    n->value = value;
    n->depth = 0;
    return true;
}

/* Parses the expression at s[dollar], checks the shape of its paths and folds its constants.
 * Returns a new tree (freed with expr_free) with *end just past the closing '}', or NULL with
 * msg holding "${...}: reason". */
static struct expr *parse_checked(const char *s, size_t len, size_t dollar, size_t *end,
                                  struct buf *msg)
{
    struct parser p = {.s = s,
                       .len = len,
                       .dollar = dollar,
                       .i = dollar + 2,
                       .prev_at = dollar,
                       .prev_len = 2,
                       .msg = msg};
    while (p.i < len && is_space(s[p.i]))
        p.i++;
    p.src_start = p.i;
    struct expr_node *root = parse_level(&p, 1);
    if (!root)
        return NULL;
    struct token t;
    peek(&p, &t);
    if (t.kind != TOK_END) {
        enode_free(root);
        unexpected_after_operand(&p, &t, "\"}\"", 0);
        return NULL;
    }
    *end = t.at + 1;
    struct expr *x = xcalloc(1, sizeof *x);
    size_t src_end = t.at;
    while (src_end > p.src_start && is_space(s[src_end - 1]))
        src_end--;
    x->src_len = src_end - p.src_start;
    /* Copied by length: a string literal may hold a NUL. */
    x->src = xmalloc(x->src_len + 1);
    memcpy(x->src, s + p.src_start, x->src_len);
    x->src[x->src_len] = '\0';
    x->root = root;
    /* Folding needs no context and no limits: a constant is no larger than its text. */
    struct op_limits unlimited;
    op_limits_init(&unlimited, SIZE_MAX);
    struct opctx o = {NULL, x, &unlimited, msg};
    if (!check_paths(x, root, msg) || !fold(&o, root)) {
        expr_free(x);
        return NULL;
    }
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

/* Reports each reference to a step's result and each use of a loop's element or index in n, in
 * the order they are written, for the definition's checks of which steps and loops a template
 * may use. */
static void report_refs(struct compiler *c, const struct expr_node *n)
{
    if (n->a)
        report_refs(c, n->a);
    if (n->b)
        report_refs(c, n->b);
    if (n->kind != EXPR_PATH && n->kind != EXPR_EXISTS)
        return;
    const struct path *p = &n->path;
    bool step = p->root == ROOT_STEPS && c->on_step_ref;
    bool loop =
        (p->root == ROOT_ITEM || p->root == ROOT_INDEX || p->root == ROOT_LOOPS) && c->on_loop_ref;
    if (!step && !loop)
        return;
    struct buf text = BUF_INIT;
    path_display(&text, p, p->n);
    if (step)
        c->on_step_ref(c->arg, pointer_text(&c->ptr), text.data, p->segs[1].key);
    else
        c->on_loop_ref(c->arg, pointer_text(&c->ptr), text.data,
                       p->root == ROOT_LOOPS ? p->segs[1].key : NULL);
    buf_free(&text);
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
        report_refs(c, x->root);
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

/* ---- evaluating templates ---------------------------------------------------------------- */

struct evaluator {
    const json_t *ctx;
    struct buf ptr; /* after a failure: the pointer of the failing value, built on the way out */
    struct buf msg;
    size_t budget;        /* the largest compact JSON text the result may have */
    size_t used;          /* the compact JSON text of what has been evaluated so far */
    struct op_limits lim; /* what the operators of all its expressions may build and read */
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
    struct xval v = {NULL, false};
    json_t *result = NULL;
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
        if (!expr_eval(part->expr, e->ctx, &e->lim, &e->msg, &v))
            goto Exit;
        if (json_is_string(v.v)) {
            if (json_string_length(v.v) > room) {
                over_budget(e);
                goto Exit;
            }
            buf_append(&out, json_string_value(v.v), json_string_length(v.v));
        } else {
            if (json_encoded_size(v.v, room) > room) {
                over_budget(e);
                goto Exit;
            }
            if (!json_text_append(&out, v.v, false)) {
                buf_reset(&e->msg);
                buf_puts(&e->msg, "the interpolated text is not valid UTF-8");
                goto Exit;
            }
        }
        xval_drop(&v);
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
    xval_drop(&v);
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
        struct xval v = {NULL, false};
        if (!expr_eval(n->expr, e->ctx, &e->lim, &e->msg, &v))
            return NULL;
        /* Measured before it is copied: the copy is never made when it does not fit. A value
         * an operator made is nobody else's, so it is the result as it is. */
        json_t *out = NULL;
        if (spend_value(e, v.v))
            out = v.owned ? json_incref(v.v) : json_deep_copy(v.v);
        xval_drop(&v);
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

struct expr_template *expr_template_literal(const json_t *value)
{
    if (!value)
        return NULL;
    struct expr_template *t = xcalloc(1, sizeof *t);
    make_literal(&t->root, json_incref((json_t *)value), true);
    return t;
}

json_t *expr_template_eval(const struct expr_template *t, const json_t *ctx, size_t max_bytes,
                           struct expr_error *err)
{
    struct evaluator e = {ctx, BUF_INIT, BUF_INIT, max_bytes, 0, {0, 0, 0, 0}};
    op_limits_init(&e.lim, max_bytes);
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
