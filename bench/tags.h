/* keel-bench --mode tags: listing executions by tag among many (issue 12). */
#ifndef KEEL_BENCH_TAGS_H
#define KEEL_BENCH_TAGS_H

#include <jansson.h>
#include <libpq-fe.h>

struct tags_options {
    const char *url;   /* keeld */
    const char *token; /* bearer token, or NULL */
    long executions;   /* N, loaded into keeld's database */
    long queries;      /* GETs per query shape */
};

/* Loads N ended executions into keeld's database (pg), each with the tags customer (one of
 * N/100, so 100 executions each), env (prod on half) and batch (one per 1,000), in the rows a
 * start writes (executions.tags and execution_tags), 1% failed; ANALYZE. Then times
 * GET /v1/executions with ?tag= filters over HTTP: a rare tag, a common one (first page and the
 * 20th), two tags, a tag and a status. Prints p50/p99/max per shape; *out is set to a JSON
 * object of the figures. Returns 0, or 1 when a request failed or a page was wrong. */
int tags_mode(const struct tags_options *o, PGconn *pg, json_t **out);

#endif
