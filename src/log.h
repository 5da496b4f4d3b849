/* Structured logging: one JSON object per line on stderr. */
#ifndef KEEL_LOG_H
#define KEEL_LOG_H

#include <stdbool.h>

enum log_level {
    LOG_DEBUG, /* per-request and per-task detail */
    LOG_INFO,  /* start, stop, configuration, recoveries */
    LOG_WARN,  /* something failed and will be retried */
    LOG_ERROR, /* something failed for good */
};

/* Sets the minimum level written. Call before threads start. */
void log_set_level(enum log_level level);
/* Parses "debug", "info", "warn" or "error"; false when name is none of them. */
bool log_parse_level(const char *name, enum log_level *out);
bool log_enabled(enum log_level level);

/* Writes {"ts":..., "level":..., "msg": msg, key: value, ...}. The variadic arguments are
 * const char * pairs (key, value) ended by NULL; a NULL value is written as null. Thread-safe:
 * each line is written with one write(2). Use the macros below, which add the NULL. */
void log_emit(enum log_level level, const char *msg, ...);

#define log_debug(...) log_emit(LOG_DEBUG, __VA_ARGS__, (const char *)0)
#define log_info(...)  log_emit(LOG_INFO, __VA_ARGS__, (const char *)0)
#define log_warn(...)  log_emit(LOG_WARN, __VA_ARGS__, (const char *)0)
#define log_error(...) log_emit(LOG_ERROR, __VA_ARGS__, (const char *)0)

#endif
