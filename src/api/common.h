/* Helpers shared by the API handlers: database access with the right error replies, paging
 * parameters, and common validation. */
#ifndef KEEL_API_COMMON_H
#define KEEL_API_COMMON_H

#include "http/server.h"

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

/* Borrows a database connection for the request, or replies 503 and returns NULL. */
PGconn *api_db_acquire(struct http_request *req);
void api_db_release(struct http_request *req, PGconn *conn);
/* Replies to a failed query: 503 when the connection was lost, else 500 (logged, with no
 * internals in the reply). Rolls back an open transaction. */
void api_db_fail(struct http_request *req, PGconn *conn, PGresult *r);
/* As api_db_fail, but logs detail (the reason a transition gave, which names what failed, such
 * as an effect that cannot be encoded) instead of the connection's last error when it is not
 * NULL. */
void api_transition_fail(struct http_request *req, PGconn *conn, PGresult *r, const char *detail);

/* Replies 200 {"<name>": [...], "next_cursor": ...} for a page query that fetched up to
 * limit + 1 rows: each item is the JSON text in column json_col; when there was one row more,
 * the cursor is the base64url of the text of the cursor columns of the last row shown, joined by
 * '\n'. */
void api_reply_page(struct http_request *req, PGresult *r, int limit, const char *name,
                    int json_col, const int *cursor_cols, int n_cursor_cols);
/* Decodes a keyset cursor of a list ordered by (created_at, id), as api_reply_page made it from
 * those two columns: *cur (caller frees) holds both, *at and *id point into it. Replies 400
 * naming the parameter and returns false when cursor is not one this API returned (its time is
 * checked to be PostgreSQL's text of a timestamptz, so a forged one is a 400, not a database
 * error). */
bool api_decode_time_cursor(struct http_request *req, const char *cursor, char **cur,
                            const char **at, const char **id);
/* Parses ?limit= (default 50, 1..500) into *limit; replies 400 and returns false when bad. */
bool api_parse_limit(struct http_request *req, int *limit);
/* True when s has 1 to max characters, each a letter, a digit or one of extra. */
bool api_valid_name(const char *s, size_t max, const char *extra);
/* The longest execution id, and whether s is one: 1 to 128 characters of A-Z a-z 0-9 _ - : @. */
#define API_EXECUTION_ID_MAX 128
bool api_valid_execution_id(const char *s);
/* Replies 400 (invalid-parameter, naming the parameter and listing the allowed ones) and
 * returns true when the query string has a parameter not in allowed (NULL-terminated; may be
 * empty); returns false and replies nothing otherwise. Every handler calls it first, so a
 * misspelt parameter (?stauts=failed) is never silently ignored. */
bool api_reject_unknown_query(struct http_request *req, const char *const *allowed);
/* The allowed list of a route that takes no query parameters. */
extern const char *const api_no_query[];
/* Replies 400 naming a query parameter. */
void api_bad_parameter(struct http_request *req, const char *name, const char *message);
/* Appends {"pointer", "message"} to an errors array of a 422 problem. */
void api_add_field_error(json_t *errors, const char *pointer, const char *message);
/* Checks that v, found at pointer in a request body, can be journaled and read back: it nests at
 * most JSON_LIMIT_MAX_DEPTH levels and holds no NUL character (PostgreSQL's jsonb refuses it).
 * Returns true when it can; otherwise adds the error to errors (naming the exact place of a NUL)
 * and returns false. */
/* Checks v, found at pointer, as an error a caller reports: an object whose "type" is a string
 * of 1 to 128 bytes and whose "message", when present, is a string (other members are the
 * caller's business). Returns true when it is; otherwise adds each error to errors (at
 * pointer, or pointer/type and pointer/message). */
bool api_check_error_object(json_t *errors, const char *pointer, const json_t *v);
bool api_check_storable(json_t *errors, const char *pointer, const json_t *v);
/* Replies 422 with a single error at pointer. */
void api_invalid_field(struct http_request *req, const char *pointer, const char *message);

#endif
