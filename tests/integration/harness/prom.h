/* A strict parser of the Prometheus text exposition format (version 0.0.4) for tests: every
 * line is checked (names, label syntax and escapes, values), a series may appear only once,
 * and every sample belongs to a family declared by a # TYPE line before it. Depends on jansson
 * only, so unit tests can include it too. */
#ifndef KEEL_TEST_PROM_H
#define KEEL_TEST_PROM_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct prom_sample {
    char *name;     /* e.g. keel_webhook_host_duration_seconds_bucket */
    char *family;   /* the # TYPE name it belongs to, e.g. keel_webhook_host_duration_seconds */
    json_t *labels; /* {name: value} */
    double value;
};

struct prom {
    struct prom_sample *samples;
    size_t n;
    json_t *types; /* {family: "counter" | "gauge" | "histogram" | ...} */
};

/* Parses text into *p (free with prom_free, also after a failure). Returns 0, or -1 with *why
 * naming the line and the problem (caller frees). */
int prom_parse(const char *text, struct prom *p, char **why);
void prom_free(struct prom *p);

/* The samples named name whose labels include every pair of match, written "k=v,k2=v2"
 * ("" or NULL: any): how many, and the sum of their values. */
size_t prom_count(const struct prom *p, const char *name, const char *match);
double prom_sum(const struct prom *p, const char *name, const char *match);
/* The value of the one sample named name whose labels are exactly labels ("k=v,..."; "" for
 * none). False when there is none. */
bool prom_get(const struct prom *p, const char *name, const char *labels, double *out);
/* How many distinct values label takes among the samples named name. */
size_t prom_distinct(const struct prom *p, const char *name, const char *label);
/* Checks every histogram family: each series (its labels without le) has buckets whose le
 * rise and whose counts never fall, ends with le="+Inf", and has _sum and _count with _count
 * equal to the +Inf bucket. Returns 0, or -1 with *why (caller frees). */
int prom_check_histograms(const struct prom *p, char **why);

#endif
