/* Files compiled into keeld at build time (migrations, web UI); see cmake/embed.cmake. */
#ifndef KEEL_UTIL_EMBED_H
#define KEEL_UTIL_EMBED_H

#include <stddef.h>

struct embedded_file {
    const char *path;          /* relative to the embedded folder, '/'-separated */
    const unsigned char *data; /* NUL-terminated for convenience; len excludes the NUL */
    size_t len;
};

/* Tables end with an entry whose path is NULL. */
extern const struct embedded_file embedded_migrations[];
extern const struct embedded_file embedded_ui[];

#endif
