/* The Prometheus text format, read strictly (see prom.h). */
#include "prom.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *prom_fmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *prom_fmt(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0)
        abort();
    va_end(ap);
    return s;
}

static char *prom_strndup(const char *s, size_t n)
{
    char *d = strndup(s, n);
    if (!d)
        abort();
    return d;
}

/* Length of a metric name at s ([a-zA-Z_:][a-zA-Z0-9_:]*), 0 if none. */
static size_t name_len(const char *s, bool label)
{
    size_t n = 0;
    while (isalpha((unsigned char)s[n]) || s[n] == '_' || (!label && s[n] == ':') ||
           (n > 0 && isdigit((unsigned char)s[n])))
        n++;
    return n;
}

/* A sample value: a float, +Inf, -Inf or NaN; false if s (up to end) is not one. */
static bool parse_value(const char *s, size_t len, double *out)
{
    char tmp[64];
    if (len == 0 || len >= sizeof tmp)
        return false;
    memcpy(tmp, s, len);
    tmp[len] = '\0';
    if (!strcmp(tmp, "+Inf")) {
        *out = INFINITY;
        return true;
    }
    if (!strcmp(tmp, "-Inf")) {
        *out = -INFINITY;
        return true;
    }
    if (!strcmp(tmp, "NaN")) {
        *out = NAN;
        return true;
    }
    char *end = NULL;
    *out = strtod(tmp, &end);
    return end && *end == '\0' &&
           (isdigit((unsigned char)tmp[0]) || tmp[0] == '-' || tmp[0] == '+' || tmp[0] == '.');
}

/* The family a sample name belongs to: the name itself, or for a histogram the name without
 * _bucket, _sum or _count. NULL when no # TYPE declared it. */
static const char *family_of(json_t *types, const char *name)
{
    if (json_object_get(types, name))
        return json_object_iter_key(json_object_iter_at(types, name));
    static const char *const suffixes[] = {"_bucket", "_sum", "_count"};
    for (size_t i = 0; i < 3; i++) {
        size_t n = strlen(name), m = strlen(suffixes[i]);
        if (n > m && !strcmp(name + n - m, suffixes[i])) {
            char *base = prom_strndup(name, n - m);
            json_t *t = json_object_get(types, base);
            const char *key = NULL;
            if (t && (!strcmp(json_string_value(t), "histogram") ||
                      (!strcmp(json_string_value(t), "summary") && i > 0)))
                key = json_object_iter_key(json_object_iter_at(types, base));
            free(base);
            if (key)
                return key;
        }
    }
    return NULL;
}

/* Parses the labels at *s (just after '{') up to '}' into labels; *s ends after '}'. */
static bool parse_labels(const char **s, json_t *labels, char **why)
{
    const char *p = *s;
    for (;;) {
        if (*p == '}') {
            *s = p + 1;
            return true;
        }
        size_t n = name_len(p, true);
        if (n == 0) {
            *why = prom_fmt("bad label name at \"%.20s\"", p);
            return false;
        }
        char *lname = prom_strndup(p, n);
        p += n;
        if (p[0] != '=' || p[1] != '"') {
            *why = prom_fmt("label %s: no =\"", lname);
            free(lname);
            return false;
        }
        p += 2;
        char *value = calloc(strlen(p) + 1, 1);
        size_t vn = 0;
        while (*p && *p != '"' && *p != '\n') {
            if (*p == '\\') {
                p++;
                if (*p == 'n')
                    value[vn++] = '\n';
                else if (*p == '\\' || *p == '"')
                    value[vn++] = *p;
                else {
                    *why = prom_fmt("label %s: bad escape \\%c", lname, *p);
                    free(lname);
                    free(value);
                    return false;
                }
                p++;
                continue;
            }
            value[vn++] = *p++;
        }
        if (*p != '"') {
            *why = prom_fmt("label %s: unterminated value", lname);
            free(lname);
            free(value);
            return false;
        }
        p++;
        if (json_object_get(labels, lname)) {
            *why = prom_fmt("label %s twice", lname);
            free(lname);
            free(value);
            return false;
        }
        json_object_set_new(labels, lname, json_string(value));
        free(lname);
        free(value);
        if (*p == ',')
            p++;
        else if (*p != '}') {
            *why = prom_fmt("expected , or } at \"%.20s\"", p);
            return false;
        }
    }
}

/* The series key of a sample: its name and labels in a stable order. */
static char *series_key(const char *name, json_t *labels)
{
    char *l = json_dumps(labels, JSON_SORT_KEYS | JSON_COMPACT);
    char *k = prom_fmt("%s%s", name, l);
    free(l);
    return k;
}

static int parse_line(const char *line, size_t len, struct prom *p, json_t *seen, char **why)
{
    if (len == 0)
        return 0;
    char *l = prom_strndup(line, len);
    int rc = -1;
    json_t *labels = NULL;
    if (l[0] == '#') {
        char kw[8], name[256], rest[64];
        if (!strncmp(l, "# TYPE ", 7)) {
            if (sscanf(l, "# %7s %255s %63s", kw, name, rest) != 3 ||
                name_len(name, false) != strlen(name)) {
                *why = prom_fmt("bad TYPE line");
                goto out;
            }
            static const char *const types[] = {"counter", "gauge", "histogram", "summary",
                                                "untyped"};
            bool known = false;
            for (size_t i = 0; i < 5; i++)
                known = known || !strcmp(rest, types[i]);
            if (!known || json_object_get(p->types, name)) {
                *why = prom_fmt("TYPE %s %s: unknown type or declared twice", name, rest);
                goto out;
            }
            json_object_set_new(p->types, name, json_string(rest));
        } else if (!strncmp(l, "# HELP ", 7)) {
            if (sscanf(l, "# %7s %255s", kw, name) != 2 || name_len(name, false) != strlen(name)) {
                *why = prom_fmt("bad HELP line");
                goto out;
            }
        }
        rc = 0;
        goto out;
    }
    size_t n = name_len(l, false);
    if (n == 0) {
        *why = prom_fmt("no metric name");
        goto out;
    }
    char *name = prom_strndup(l, n);
    const char *s = l + n;
    labels = json_object();
    if (*s == '{') {
        s++;
        if (!parse_labels(&s, labels, why)) {
            free(name);
            goto out;
        }
    }
    if (*s != ' ') {
        *why = prom_fmt("%s: no space before the value", name);
        free(name);
        goto out;
    }
    s++;
    const char *end = strchr(s, ' ');
    size_t vlen = end ? (size_t)(end - s) : strlen(s);
    double v;
    if (!parse_value(s, vlen, &v)) {
        *why = prom_fmt("%s: bad value \"%.*s\"", name, (int)vlen, s);
        free(name);
        goto out;
    }
    if (end) {
        /* An optional timestamp: an integer. */
        const char *t = end + 1;
        if (!*t || t[strspn(t, "-0123456789")] != '\0') {
            *why = prom_fmt("%s: bad timestamp", name);
            free(name);
            goto out;
        }
    }
    const char *family = family_of(p->types, name);
    if (!family) {
        *why = prom_fmt("%s: no # TYPE before it", name);
        free(name);
        goto out;
    }
    char *key = series_key(name, labels);
    if (json_object_get(seen, key)) {
        *why = prom_fmt("series %s twice", key);
        free(key);
        free(name);
        goto out;
    }
    json_object_set_new(seen, key, json_true());
    free(key);
    p->samples = realloc(p->samples, (p->n + 1) * sizeof *p->samples);
    p->samples[p->n++] = (struct prom_sample){name, strdup(family), labels, v};
    labels = NULL;
    rc = 0;
out:
    json_decref(labels);
    free(l);
    return rc;
}

int prom_parse(const char *text, struct prom *p, char **why)
{
    memset(p, 0, sizeof *p);
    p->types = json_object();
    if (!text) {
        *why = prom_fmt("no text");
        return -1;
    }
    json_t *seen = json_object();
    int line_no = 0, rc = 0;
    for (const char *at = text; *at && rc == 0;) {
        line_no++;
        const char *nl = strchr(at, '\n');
        if (!nl) {
            *why = prom_fmt("line %d: the text does not end with a newline", line_no);
            rc = -1;
            break;
        }
        char *w = NULL;
        if (parse_line(at, (size_t)(nl - at), p, seen, &w) < 0) {
            *why = prom_fmt("line %d: %s: %.*s", line_no, w, (int)(nl - at), at);
            free(w);
            rc = -1;
        }
        at = nl + 1;
    }
    json_decref(seen);
    return rc;
}

void prom_free(struct prom *p)
{
    for (size_t i = 0; i < p->n; i++) {
        free(p->samples[i].name);
        free(p->samples[i].family);
        json_decref(p->samples[i].labels);
    }
    free(p->samples);
    json_decref(p->types);
    memset(p, 0, sizeof *p);
}

/* "k=v,k2=v2" as an object. */
static json_t *parse_match(const char *match)
{
    json_t *m = json_object();
    if (!match)
        return m;
    char *copy = strdup(match), *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        if (!eq)
            abort(); /* a test's mistake */
        *eq = '\0';
        json_object_set_new(m, tok, json_string(eq + 1));
    }
    free(copy);
    return m;
}

static bool labels_include(json_t *labels, json_t *m)
{
    const char *k;
    json_t *v;
    json_object_foreach(m, k, v)
    {
        json_t *have = json_object_get(labels, k);
        if (!have || strcmp(json_string_value(have), json_string_value(v)))
            return false;
    }
    return true;
}

size_t prom_count(const struct prom *p, const char *name, const char *match)
{
    json_t *m = parse_match(match);
    size_t n = 0;
    for (size_t i = 0; i < p->n; i++)
        if (!strcmp(p->samples[i].name, name) && labels_include(p->samples[i].labels, m))
            n++;
    json_decref(m);
    return n;
}

double prom_sum(const struct prom *p, const char *name, const char *match)
{
    json_t *m = parse_match(match);
    double sum = 0;
    for (size_t i = 0; i < p->n; i++)
        if (!strcmp(p->samples[i].name, name) && labels_include(p->samples[i].labels, m))
            sum += p->samples[i].value;
    json_decref(m);
    return sum;
}

bool prom_get(const struct prom *p, const char *name, const char *labels, double *out)
{
    json_t *m = parse_match(labels);
    bool found = false;
    for (size_t i = 0; i < p->n && !found; i++) {
        if (!strcmp(p->samples[i].name, name) && json_equal(p->samples[i].labels, m)) {
            *out = p->samples[i].value;
            found = true;
        }
    }
    json_decref(m);
    return found;
}

size_t prom_distinct(const struct prom *p, const char *name, const char *label)
{
    json_t *values = json_object();
    for (size_t i = 0; i < p->n; i++) {
        json_t *v = json_object_get(p->samples[i].labels, label);
        if (!strcmp(p->samples[i].name, name) && v)
            json_object_set_new(values, json_string_value(v), json_true());
    }
    size_t n = json_object_size(values);
    json_decref(values);
    return n;
}

int prom_check_histograms(const struct prom *p, char **why)
{
    /* {family + labels without le: {"le": [[bound, count]...], "sum": x, "count": n}} */
    json_t *series = json_object();
    int rc = 0;
    for (size_t i = 0; i < p->n; i++) {
        const struct prom_sample *s = &p->samples[i];
        if (strcmp(json_string_value(json_object_get(p->types, s->family)), "histogram"))
            continue;
        json_t *rest = json_deep_copy(s->labels);
        json_object_del(rest, "le");
        char *key = series_key(s->family, rest);
        json_decref(rest);
        json_t *e = json_object_get(series, key);
        if (!e) {
            e = json_pack("{s:[]}", "le");
            json_object_set_new(series, key, e);
        }
        const char *suffix = s->name + strlen(s->family);
        if (!strcmp(suffix, "_bucket")) {
            const char *le = json_string_value(json_object_get(s->labels, "le"));
            double bound;
            if (!le || !parse_value(le, strlen(le), &bound)) {
                *why = prom_fmt("%s: a bucket without a valid le", key);
                rc = -1;
            } else {
                json_array_append_new(json_object_get(e, "le"),
                                      json_pack("[f, f]", isinf(bound) ? 1e300 : bound, s->value));
            }
        } else if (!strcmp(suffix, "_sum") || !strcmp(suffix, "_count")) {
            json_object_set_new(e, suffix + 1, json_real(s->value));
        }
        free(key);
        if (rc < 0)
            break;
    }
    const char *key;
    json_t *e;
    json_object_foreach(series, key, e)
    {
        if (rc < 0)
            break;
        json_t *les = json_object_get(e, "le");
        size_t n = json_array_size(les);
        if (n == 0 || !json_object_get(e, "sum") || !json_object_get(e, "count")) {
            *why = prom_fmt("%s: buckets, _sum or _count missing", key);
            rc = -1;
            break;
        }
        for (size_t k = 1; k < n; k++) {
            json_t *a = json_array_get(les, k - 1), *b = json_array_get(les, k);
            if (json_real_value(json_array_get(b, 0)) <= json_real_value(json_array_get(a, 0)) ||
                json_real_value(json_array_get(b, 1)) < json_real_value(json_array_get(a, 1))) {
                *why = prom_fmt("%s: bucket %zu does not rise or its count falls", key, k);
                rc = -1;
                break;
            }
        }
        json_t *last = json_array_get(les, n - 1);
        if (rc == 0 && (json_real_value(json_array_get(last, 0)) != 1e300 ||
                        json_real_value(json_array_get(last, 1)) !=
                            json_real_value(json_object_get(e, "count")))) {
            *why = prom_fmt("%s: the last bucket is not +Inf or differs from _count", key);
            rc = -1;
        }
    }
    json_decref(series);
    return rc;
}
