/* JSON-lines logger. */
#include "log.h"

#include "util/buf.h"
#include "util/timeutil.h"

#include <stdarg.h>
#include <string.h>
#include <unistd.h>

/* The logger's whole state: written once at start-up, read by every thread. */
static struct {
    enum log_level min_level;
} log_state = {LOG_INFO};

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void log_set_level(enum log_level level)
{
    log_state.min_level = level;
}

bool log_parse_level(const char *name, enum log_level *out)
{
    for (int i = 0; i <= LOG_ERROR; i++) {
        if (strcmp(name, level_names[i]) == 0) {
            *out = (enum log_level)i;
            return true;
        }
    }
    return false;
}

bool log_enabled(enum log_level level)
{
    return level >= log_state.min_level;
}

void log_emit(enum log_level level, const char *msg, ...)
{
    if (!log_enabled(level))
        return;
    char ts[32];
    time_format_rfc3339(time_now_ms(), ts);
    struct buf b = BUF_INIT;
    buf_printf(&b, "{\"ts\":\"%s\",\"level\":\"%s\",\"msg\":\"", ts, level_names[level]);
    buf_json_escape(&b, msg);
    buf_putc(&b, '"');
    va_list ap;
    va_start(ap, msg);
    for (;;) {
        const char *key = va_arg(ap, const char *);
        if (!key)
            break;
        const char *value = va_arg(ap, const char *);
        buf_puts(&b, ",\"");
        buf_json_escape(&b, key);
        if (value) {
            buf_puts(&b, "\":\"");
            buf_json_escape(&b, value);
            buf_putc(&b, '"');
        } else {
            buf_puts(&b, "\":null");
        }
    }
    va_end(ap);
    buf_puts(&b, "}\n");
    ssize_t ignored = write(STDERR_FILENO, b.data, b.len);
    (void)ignored;
    buf_free(&b);
}
