/* Activity destinations: URL syntax, the allow list, and the addresses that are refused. */
#include "webhook/destination.h"

#include "util/alloc.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define HOST_MAX 253

/* ---- addresses ----------------------------------------------------------------------------- */

/* An IPv4 (family AF_INET, b[0..3]) or IPv6 address. */
struct ip {
    int family;
    unsigned char b[16];
};

/* ::ffff:a.b.c.d is the IPv4 address a.b.c.d. */
static void ip_unmap(struct ip *ip)
{
    static const unsigned char prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (ip->family == AF_INET6 && memcmp(ip->b, prefix, 12) == 0) {
        memmove(ip->b, ip->b + 12, 4);
        memset(ip->b + 4, 0, 12);
        ip->family = AF_INET;
    }
}

/* A strict numeric address: dotted-quad IPv4 or IPv6 (a %zone is ignored). */
static bool ip_parse(const char *s, struct ip *out)
{
    memset(out, 0, sizeof *out);
    if (inet_pton(AF_INET, s, out->b) == 1) {
        out->family = AF_INET;
        return true;
    }
    char tmp[64];
    size_t n = strcspn(s, "%");
    if (n >= sizeof tmp)
        return false;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    if (inet_pton(AF_INET6, tmp, out->b) == 1) {
        out->family = AF_INET6;
        ip_unmap(out);
        return true;
    }
    return false;
}

/* A URL host as an address: "[v6]", or IPv4 in any spelling inet_aton takes (0x7f.1,
 * 2130706433, 0177.0.0.1), as libcurl does. False for a name. */
static bool ip_from_url_host(const char *host, struct ip *out)
{
    size_t n = strlen(host);
    if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
        char tmp[64];
        if (n - 2 >= sizeof tmp)
            return false;
        memcpy(tmp, host + 1, n - 2);
        tmp[n - 2] = '\0';
        return ip_parse(tmp, out);
    }
    if (ip_parse(host, out))
        return true;
    for (const char *c = host; *c; c++)
        if (!isxdigit((unsigned char)*c) && *c != '.' && *c != 'x' && *c != 'X')
            return false;
    struct in_addr a;
    if (n == 0 || inet_aton(host, &a) == 0)
        return false;
    memset(out, 0, sizeof *out);
    out->family = AF_INET;
    memcpy(out->b, &a.s_addr, 4);
    return true;
}

static bool ip_in(const struct ip *ip, const struct ip *net, int prefix)
{
    if (ip->family != net->family)
        return false;
    int full = prefix / 8, rest = prefix % 8;
    if (memcmp(ip->b, net->b, (size_t)full) != 0)
        return false;
    if (rest == 0)
        return true;
    unsigned char mask = (unsigned char)(0xff << (8 - rest));
    return (ip->b[full] & mask) == (net->b[full] & mask);
}

static void ip_text(const struct ip *ip, char *out, size_t size)
{
    if (!inet_ntop(ip->family, ip->b, out, (socklen_t)size))
        snprintf(out, size, "?");
}

static bool ip_is_loopback(const struct ip *ip)
{
    static const unsigned char v6[16] = {[15] = 1};
    return ip->family == AF_INET ? ip->b[0] == 127 : memcmp(ip->b, v6, 16) == 0;
}

static bool ip_is_unspecified(const struct ip *ip)
{
    static const unsigned char zero[16] = {0};
    return memcmp(ip->b, zero, ip->family == AF_INET ? 4 : 16) == 0;
}

/* The addresses refused unless an address entry covers them. */
static const struct {
    const char *net;
    int prefix;
    const char *what;
} refused_nets[] = {
    {"169.254.0.0", 16, "a link-local address (where cloud metadata services answer)"},
    {"fe80::", 10, "a link-local address"},
    {"fd00:ec2::254", 128, "a cloud metadata address (AWS)"},
    {"100.100.100.200", 32, "a cloud metadata address (Alibaba Cloud)"},
};

/* ---- the policy ---------------------------------------------------------------------------- */

struct entry {
    char *name; /* a name entry, lowercased without a trailing dot; NULL for an address entry */
    struct ip net;
    int prefix;
    int port; /* 0 = any */
};

struct wh_dest_policy {
    struct entry *entries;
    size_t n;
    bool have_nets; /* some entry is an address or CIDR */
    bool have_own;  /* keeld's listen address is known */
    struct ip own;  /* unspecified when it listens on every address */
    bool own_local; /* it listens on loopback or on every address */
    atomic_int own_port;
};

static struct wh_dest_policy *global_policy;

void wh_dest_set_global(struct wh_dest_policy *p)
{
    global_policy = p;
}

const struct wh_dest_policy *wh_dest_global(void)
{
    return global_policy;
}

void wh_dest_policy_set_own_port(struct wh_dest_policy *p, uint16_t port)
{
    if (p)
        atomic_store(&p->own_port, port);
}

/* "1-65535" from s (the whole string); 0 when it is not one. */
static int parse_port(const char *s)
{
    if (!*s || strlen(s) > 5)
        return 0;
    long v = 0;
    for (const char *c = s; *c; c++) {
        if (!isdigit((unsigned char)*c))
            return 0;
        v = v * 10 + (*c - '0');
    }
    return v >= 1 && v <= 65535 ? (int)v : 0;
}

static bool valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > HOST_MAX || s[0] == '.' || strstr(s, ".."))
        return false;
    for (const char *c = s; *c; c++)
        if (!isalnum((unsigned char)*c) && *c != '-' && *c != '.' && *c != '_')
            return false;
    return true;
}

static void lower_name(char *s)
{
    for (char *c = s; *c; c++)
        *c = (char)tolower((unsigned char)*c);
    size_t n = strlen(s);
    if (n > 1 && s[n - 1] == '.')
        s[n - 1] = '\0';
}

/* Splits "host", "host:port", "[v6]", "[v6]:port" or a bare IPv6 address into host and port
 * (0 when absent). Returns false on a malformed port or brackets. */
static bool split_host_port(char *s, char **host, int *port)
{
    *port = 0;
    if (s[0] == '[') {
        char *close = strchr(s, ']');
        if (!close)
            return false;
        *close = '\0';
        *host = s + 1;
        if (close[1] == '\0')
            return true;
        if (close[1] != ':' || !(*port = parse_port(close + 2)))
            return false;
        return true;
    }
    char *colon = strchr(s, ':');
    if (colon && strchr(colon + 1, ':')) { /* a bare IPv6 address */
        *host = s;
        return true;
    }
    *host = s;
    if (colon) {
        *colon = '\0';
        if (!(*port = parse_port(colon + 1)))
            return false;
    }
    return true;
}

static int parse_entry(char *text, struct entry *e, char **why)
{
    memset(e, 0, sizeof *e);
    char *slash = strchr(text, '/');
    if (slash) {
        *slash = '\0';
        char *end = NULL;
        long prefix = strtol(slash + 1, &end, 10);
        bool v6_text = strchr(text, ':') != NULL;
        if (!ip_parse(text, &e->net) || !*(slash + 1) || *end || prefix < 0 ||
            prefix > (v6_text ? 128 : 32)) {
            *slash = '/';
            *why = xasprintf("KEEL_ACTIVITY_ALLOW: \"%s\" is not a CIDR (such as 10.0.0.0/8 or "
                             "fd00::/8)",
                             text);
            return -1;
        }
        /* An IPv4-mapped IPv6 CIDR was unmapped by ip_parse. */
        if (e->net.family == AF_INET && v6_text)
            prefix = prefix >= 96 ? prefix - 96 : 0;
        e->prefix = (int)prefix;
        return 0;
    }
    char *host = NULL;
    if (!split_host_port(text, &host, &e->port)) {
        *why = xasprintf("KEEL_ACTIVITY_ALLOW: \"%s\" is not host, host:port, [IPv6]:port or a "
                         "CIDR (ports are 1-65535)",
                         text);
        return -1;
    }
    if (ip_parse(host, &e->net)) {
        e->prefix = e->net.family == AF_INET ? 32 : 128;
        return 0;
    }
    if (!valid_name(host)) {
        *why = xasprintf("KEEL_ACTIVITY_ALLOW: \"%s\" is not a host name or address", host);
        return -1;
    }
    e->name = xstrdup(host);
    lower_name(e->name);
    return 0;
}

static int parse_listen(struct wh_dest_policy *p, const char *listen)
{
    char *copy = xstrdup(listen);
    char *host = NULL;
    int port = 0;
    int rc = -1;
    char *colon = copy[0] == '[' ? NULL : strrchr(copy, ':');
    if (copy[0] == '[') {
        char *close = strchr(copy, ']');
        if (!close || close[1] != ':')
            goto Exit;
        *close = '\0';
        host = copy + 1;
        port = atoi(close + 2);
    } else if (colon) {
        *colon = '\0';
        host = copy;
        port = atoi(colon + 1);
    } else {
        goto Exit;
    }
    memset(&p->own, 0, sizeof p->own);
    if (!*host || !strcmp(host, "*") || !strcasecmp(host, "localhost")) {
        p->own.family = AF_INET;
        p->own_local = true;
    } else if (ip_parse(host, &p->own)) {
        p->own_local = ip_is_loopback(&p->own) || ip_is_unspecified(&p->own);
    } else {
        /* A name keeld resolves when it binds: refuse that port on loopback at least. */
        p->own.family = AF_INET;
        p->own_local = true;
    }
    p->have_own = true;
    atomic_store(&p->own_port, port);
    rc = 0;
Exit:
    free(copy);
    return rc;
}

int wh_dest_policy_new(const char *allow, const char *listen, struct wh_dest_policy **out,
                       char **why)
{
    *out = NULL;
    struct wh_dest_policy *p = xcalloc(1, sizeof *p);
    atomic_init(&p->own_port, 0);
    if (allow) {
        char *copy = xstrdup(allow);
        char *save = NULL;
        for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
            while (isspace((unsigned char)*tok))
                tok++;
            size_t n = strlen(tok);
            while (n && isspace((unsigned char)tok[n - 1]))
                tok[--n] = '\0';
            if (!n)
                continue;
            struct entry e;
            if (parse_entry(tok, &e, why) < 0) {
                free(copy);
                wh_dest_policy_free(p);
                return -1;
            }
            p->entries = xrealloc(p->entries, (p->n + 1) * sizeof *p->entries);
            p->entries[p->n++] = e;
            if (!e.name)
                p->have_nets = true;
        }
        free(copy);
    }
    if (listen && parse_listen(p, listen) < 0) {
        *why = xasprintf("cannot read the listen address \"%s\"", listen);
        wh_dest_policy_free(p);
        return -1;
    }
    *out = p;
    return 0;
}

void wh_dest_policy_free(struct wh_dest_policy *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n; i++)
        free(p->entries[i].name);
    free(p->entries);
    free(p);
}

/* ---- checks -------------------------------------------------------------------------------- */

/* The address entry covering ip on port; with exact_port, only one naming that port. */
static bool net_listed(const struct wh_dest_policy *p, const struct ip *ip, int port,
                       bool exact_port)
{
    for (size_t i = 0; p && i < p->n; i++) {
        const struct entry *e = &p->entries[i];
        if (e->name || (exact_port ? e->port != port : (e->port && e->port != port)))
            continue;
        if (ip_in(ip, &e->net, e->prefix))
            return true;
    }
    return false;
}

static bool is_own(const struct wh_dest_policy *p, const struct ip *ip, int port)
{
    if (!p || !p->have_own || port != atomic_load(&p->own_port))
        return false;
    if (ip_is_unspecified(ip))
        return true;
    if (p->own_local && ip_is_loopback(ip))
        return true;
    return !ip_is_unspecified(&p->own) && ip->family == p->own.family &&
           memcmp(ip->b, p->own.b, ip->family == AF_INET ? 4 : 16) == 0;
}

static enum wh_dest_verdict check_ip(const struct wh_dest_policy *p, const struct ip *ip, int port,
                                     const struct wh_dest_target *t, char **why)
{
    char text[INET6_ADDRSTRLEN];
    ip_text(ip, text, sizeof text);
    bool listed = net_listed(p, ip, port, false);
    if (p && p->n > 0 && !listed && !(t && t->name_listed)) {
        *why = xasprintf("%s port %d is not in KEEL_ACTIVITY_ALLOW", text, port);
        return WH_DEST_REFUSED;
    }
    if (!listed) {
        for (size_t i = 0; i < sizeof refused_nets / sizeof refused_nets[0]; i++) {
            struct ip net;
            ip_parse(refused_nets[i].net, &net);
            if (ip_in(ip, &net, refused_nets[i].prefix)) {
                *why = xasprintf("%s is %s; list it in KEEL_ACTIVITY_ALLOW to allow it", text,
                                 refused_nets[i].what);
                return WH_DEST_REFUSED;
            }
        }
    }
    if (is_own(p, ip, port) && !net_listed(p, ip, port, true) && !(t && t->name_listed_port)) {
        *why = xasprintf("%s port %d is keeld's own listen address; list it with its port in "
                         "KEEL_ACTIVITY_ALLOW to allow it",
                         text, port);
        return WH_DEST_REFUSED;
    }
    return WH_DEST_OK;
}

enum wh_dest_verdict wh_dest_check_addr(const struct wh_dest_policy *p, const struct sockaddr *sa,
                                        const struct wh_dest_target *target, char **why)
{
    struct ip ip;
    memset(&ip, 0, sizeof ip);
    int port;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        ip.family = AF_INET;
        memcpy(ip.b, &in->sin_addr, 4);
        port = ntohs(in->sin_port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        ip.family = AF_INET6;
        memcpy(ip.b, &in6->sin6_addr, 16);
        port = ntohs(in6->sin6_port);
        ip_unmap(&ip);
    } else {
        *why = xstrdup("only IPv4 and IPv6 destinations are allowed");
        return WH_DEST_REFUSED;
    }
    return check_ip(p, &ip, port, target, why);
}

/* Syntax of the URL as written, before libcurl reads it: http(s), a host, a port 1-65535, no
 * spaces or control characters. */
static bool url_syntax_ok(const char *url, char **why)
{
    for (const unsigned char *c = (const unsigned char *)url; *c; c++) {
        if (*c <= 0x20 || *c == 0x7f) {
            *why = xstrdup("contains a space or a control character");
            return false;
        }
    }
    size_t scheme = !strncasecmp(url, "https://", 8) ? 8 : !strncasecmp(url, "http://", 7) ? 7 : 0;
    if (!scheme) {
        *why = xstrdup("does not start with http:// or https://");
        return false;
    }
    const char *auth = url + scheme;
    size_t len = strcspn(auth, "/?#");
    /* user:password@ is libcurl's business; the host is what follows the last '@'. */
    for (const char *at = memchr(auth, '@', len); at; at = memchr(auth, '@', len)) {
        len -= (size_t)(at + 1 - auth);
        auth = at + 1;
    }
    if (memchr(auth, '\\', len)) {
        *why = xstrdup("has a backslash in its host");
        return false;
    }
    char *a = xstrndup(auth, len);
    char *host = NULL;
    int port = 0;
    bool ok = true;
    const char *colon = a[0] == '[' ? strstr(a, "]:") : strchr(a, ':');
    if (colon) {
        const char *digits = colon + (a[0] == '[' ? 2 : 1);
        if (!parse_port(digits)) {
            *why = xasprintf("has port \"%s\"; a port is a number from 1 to 65535", digits);
            ok = false;
        }
    }
    if (ok && !split_host_port(a, &host, &port)) {
        *why = xstrdup("has a malformed host or port");
        ok = false;
    }
    if (ok && a[0] == '[') {
        struct ip ip;
        if (!ip_parse(host, &ip)) {
            *why = xasprintf("has \"[%s]\", which is not an IPv6 address", host);
            ok = false;
        }
    } else if (ok && !*host) {
        *why = xstrdup("has no host");
        ok = false;
    } else if (ok && !valid_name(host)) {
        *why = xasprintf("has host \"%s\"; a host is a name of letters, digits, '-', '_' and "
                         "'.', an IPv4 address or an [IPv6] address",
                         host);
        ok = false;
    }
    free(a);
    return ok;
}

enum wh_dest_verdict wh_dest_check_url(const struct wh_dest_policy *p, const char *url,
                                       struct wh_dest_target *target, char **why)
{
    struct wh_dest_target t = {0};
    enum wh_dest_verdict v = WH_DEST_INVALID;
    char *host = NULL, *port_text = NULL;
    CURLU *u = NULL;
    if (!url_syntax_ok(url, why))
        goto Exit;
    /* The host and port as libcurl will see them: names lowercased later, IPv4 spellings such
     * as 0x7f.1 normalised to dotted quads. */
    u = curl_url();
    if (!u) {
        *why = xstrdup("out of memory");
        goto Exit;
    }
    CURLUcode rc = curl_url_set(u, CURLUPART_URL, url, 0);
    if (rc == CURLUE_OK)
        rc = curl_url_get(u, CURLUPART_HOST, &host, 0);
    if (rc == CURLUE_OK)
        rc = curl_url_get(u, CURLUPART_PORT, &port_text, CURLU_DEFAULT_PORT);
    if (rc != CURLUE_OK) {
        *why = xasprintf("is not a valid URL: %s", curl_url_strerror(rc));
        goto Exit;
    }
    int port = parse_port(port_text);
    if (!port) {
        *why = xasprintf("has port %s; a port is a number from 1 to 65535", port_text);
        goto Exit;
    }
    struct ip ip;
    if (ip_from_url_host(host, &ip)) {
        v = check_ip(p, &ip, port, NULL, why);
        goto Exit;
    }
    lower_name(host);
    for (size_t i = 0; p && i < p->n; i++) {
        const struct entry *e = &p->entries[i];
        if (e->name && !strcmp(e->name, host) && (!e->port || e->port == port)) {
            t.name_listed = true;
            if (e->port)
                t.name_listed_port = true;
        }
    }
    if (p && p->n > 0 && !t.name_listed && !p->have_nets) {
        *why = xasprintf("host %s port %d is not in KEEL_ACTIVITY_ALLOW", host, port);
        v = WH_DEST_REFUSED;
        goto Exit;
    }
    v = WH_DEST_OK;
Exit:
    if (target)
        *target = t;
    curl_free(host);
    curl_free(port_text);
    curl_url_cleanup(u);
    return v;
}
