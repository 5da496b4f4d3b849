/* Activity destinations: which URLs an activity webhook may be sent to (KEEL_ACTIVITY_ALLOW, the
 * built-in refusals of link-local and cloud metadata addresses and of keeld's own listen
 * address), checked at registration, before sending, and on every address a connection is
 * about to be opened to (so a name that resolves to a refused address is refused too).
 *
 * Rules:
 *   - A URL is http:// or https://, with a host (a name, an IPv4 address in any spelling libcurl
 *     accepts, or an [IPv6] literal) and an optional port from 1 to 65535.
 *   - Without an allow list every destination is allowed except the refused ones below.
 *   - With an allow list (comma-separated: "host", "host:port", "1.2.3.4", "10.0.0.0/8",
 *     "[fd00::1]:8443", "fd00::/8"), a destination must match an entry: a name entry by the URL's
 *     host (case-insensitive; a trailing dot ignored), an address or CIDR entry by the address
 *     connected to; an entry with a port matches that port only.
 *   - Refused unless an address or CIDR entry covers the address: link-local 169.254.0.0/16 and
 *     fe80::/10 (where the cloud metadata services live), fd00:ec2::254 (AWS, IPv6) and
 *     100.100.100.200 (Alibaba). A name entry does not lift this: a listed name that resolves to
 *     a metadata address is still refused.
 *   - keeld's own listen address and port (and loopback or 0.0.0.0 on that port when it listens
 *     on loopback or on every address) is refused unless an entry with that very port covers it.
 *   - IPv4-mapped IPv6 addresses (::ffff:169.254.169.254) are taken as the IPv4 address. */
#ifndef KEEL_WEBHOOK_DESTINATION_H
#define KEEL_WEBHOOK_DESTINATION_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

struct wh_dest_policy;

enum wh_dest_verdict {
    WH_DEST_OK,      /* allowed (a name may still be refused by the address it resolves to) */
    WH_DEST_INVALID, /* not an acceptable URL (scheme, host, port) */
    WH_DEST_REFUSED, /* a well-formed URL the policy refuses */
};

/* What the URL check learnt that the address check needs. */
struct wh_dest_target {
    bool name_listed;      /* the URL's host matched a name entry of the allow list */
    bool name_listed_port; /* ... an entry that names the port explicitly */
};

/* Makes a policy from allow (the KEEL_ACTIVITY_ALLOW text; NULL or blank = no list) and listen
 * (keeld's own host:port, e.g. "127.0.0.1:8080" or "[::]:8080"; NULL = none). Returns 0 and
 * *out (free with wh_dest_policy_free), or -1 and *why naming the bad entry (caller frees). */
int wh_dest_policy_new(const char *allow, const char *listen, struct wh_dest_policy **out,
                       char **why) __attribute__((warn_unused_result));
void wh_dest_policy_free(struct wh_dest_policy *p);
/* Sets the port keeld really listens on (when listen asked for port 0); thread-safe. */
void wh_dest_policy_set_own_port(struct wh_dest_policy *p, uint16_t port);

/* The process-wide policy that registration and the dispatcher use. Set it once at start,
 * before any thread reads it; NULL (the initial value) is the default policy without an own
 * address. The policy stays owned by the caller. */
void wh_dest_set_global(struct wh_dest_policy *p);
const struct wh_dest_policy *wh_dest_global(void);

/* Checks a URL: its syntax, then the policy as far as the URL tells (an address literal in
 * full; a name against the allow list's name entries). p NULL = the default policy. Fills
 * *target when not NULL. On WH_DEST_INVALID or WH_DEST_REFUSED sets *why to a sentence for a
 * user (caller frees). */
enum wh_dest_verdict wh_dest_check_url(const struct wh_dest_policy *p, const char *url,
                                       struct wh_dest_target *target, char **why);

/* Checks the address (and port) a connection for target is about to be opened to. target may
 * be NULL (nothing known about the name). Returns WH_DEST_OK or WH_DEST_REFUSED (with *why). */
enum wh_dest_verdict wh_dest_check_addr(const struct wh_dest_policy *p, const struct sockaddr *sa,
                                        const struct wh_dest_target *target, char **why);

#endif
