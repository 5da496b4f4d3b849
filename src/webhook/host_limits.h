/* Limits per destination host (KEEL_HOST_LIMITS): how many activity requests may be on the wire
 * at once to a host, and how many may start per second (or minute, or hour). Pure: parsing,
 * matching a URL's host to its entry, and this keeld's share of a limit when several keelds
 * share it. The dispatcher enforces them (webhook/dispatcher.h).
 *
 * Syntax: entries separated by white space (spaces, tabs, new lines); "#" starts a comment that
 * runs to the end of its line (for the file form). Each entry is HOST=LIMIT:
 *   HOST   a host name ("payments.internal", case-insensitive, a trailing dot ignored), an IPv4
 *          address, an [IPv6] address in brackets, or "*.example.com" (every host below
 *          example.com, not example.com itself; one limit shared by all of them); optionally
 *          ":PORT" (1-65535), matching that port only (the scheme's default port when the URL
 *          names none). Without a port an entry matches every port and both schemes.
 *   LIMIT  CONCURRENCY ("20": requests on the wire at once, 1-100000), RATE ("50/s", "300/m",
 *          "1000/h": requests started per second, minute or hour, 1-1000000 per unit), or both
 *          separated by a comma in either order ("20,50/s").
 * A URL's host takes the most specific entry: its name with its port, its name, then the
 * longest wildcard with the port, then the longest wildcard. A host no entry matches has no
 * limit (beyond KEEL_MAX_IN_FLIGHT_PER_HOST). Any malformed or repeated entry is an error naming
 * the entry and what is wrong with it: nothing is ever dropped or defaulted silently.
 *
 * A rate is enforced evenly spaced: one request every 1/RATE (the unit divided by the count),
 * never a burst, so no window of one unit's length holds more than RATE starts. */
#ifndef KEEL_WEBHOOK_HOST_LIMITS_H
#define KEEL_WEBHOOK_HOST_LIMITS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WH_HOST_LIMIT_MAX_CONCURRENCY 100000
#define WH_HOST_LIMIT_MAX_RATE        1000000
/* The largest text a KEEL_HOST_LIMITS=@file may hold. */
#define WH_HOST_LIMITS_MAX_FILE_BYTES (1024 * 1024)

struct wh_host_limit {
    char *name;          /* the host as the entry names it, lowercased, with ":port" when it
                          * has one: "payments.internal", "*.example.com", "[::1]:8443"; the
                          * label of its metrics */
    char *host;          /* without the port (and without "*." for a wildcard) */
    int port;            /* 0: any port */
    bool wildcard;       /* "*.host": hosts ending in ".host" */
    int concurrency;     /* requests on the wire at once; 0: not capped */
    long rate;           /* requests started per rate_period_ms; 0: not capped */
    long rate_period_ms; /* 1000 (/s), 60000 (/m) or 3600000 (/h); 0 without a rate */
    char limit_text[48]; /* the limit as a user writes it: "20,50/s", "3", "5/s" */
};

struct wh_host_limits {
    struct wh_host_limit *v;
    size_t n;
};

/* Parses text (see above). source names where it came from in error messages
 * ("KEEL_HOST_LIMITS", a file's path). Returns 0 and *out (free with wh_host_limits_free; an
 * empty list when text holds no entry), or -1 and *why (caller frees): "<source>: entry
 * \"<entry>\"[ on line N]: <what is wrong>". */
int wh_host_limits_parse(const char *text, const char *source, struct wh_host_limits **out,
                         char **why) __attribute__((warn_unused_result));

/* The value of KEEL_HOST_LIMITS: the entries themselves, or "@PATH" for a file holding them
 * (read again on SIGHUP). NULL or blank: no limits (an empty list). Returns 0 and *out, or -1
 * and *why (caller frees) naming the bad entry, or the file and why it could not be read. */
int wh_host_limits_load(const char *spec, struct wh_host_limits **out, char **why)
    __attribute__((warn_unused_result));

/* True when spec names a file ("@PATH"), which a reload reads again. */
bool wh_host_limits_is_file(const char *spec);

void wh_host_limits_free(struct wh_host_limits *l);

/* The entry that applies to host (a URL's host: a name, an IPv4 address or an [IPv6] address;
 * case and a trailing dot do not matter) on port, or NULL. */
const struct wh_host_limit *wh_host_limits_match(const struct wh_host_limits *l, const char *host,
                                                 int port);

/* The entry that applies to an http:// or https:// URL's host and port (the scheme's default
 * port when it names none), or NULL (also for a URL libcurl cannot parse). */
const struct wh_host_limit *wh_host_limits_match_url(const struct wh_host_limits *l,
                                                     const char *url);

/* This keeld's share of lim's concurrency when `keelds` live keelds share it and this one is the
 * rank-th of them (0-based, in owner id order): the limit divided by the number of keelds,
 * rounded down, plus one for (limit mod keelds) of them, picked by rank shifted by a hash of the
 * entry's name (so that the same keeld does not get every remainder). The shares add up to the
 * limit exactly when it is at least the number of keelds; below that every keeld gets 1 (a keeld
 * with a share of 0 could never send to that host). 0 when lim caps no concurrency. keelds < 1
 * counts as 1; rank is taken modulo keelds. */
int wh_host_limit_concurrency_share(const struct wh_host_limit *lim, int keelds, int rank);

/* The spacing between two requests this keeld starts to lim's hosts when `keelds` share its
 * rate, in microseconds: the unit times keelds divided by the rate (the keelds' rates add up to
 * the limit exactly, with no rounding to whole requests). 0 when lim caps no rate. */
int64_t wh_host_limit_interval_us(const struct wh_host_limit *lim, int keelds);

#endif
