/* Static UI files with content types, ETags and a strict Content-Security-Policy. */
#include "api/ui.h"

#include "app.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/embed.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* No inline script or style, nothing from other origins: the UI is self-contained. */
#define UI_CSP                                                                                     \
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "              \
    "connect-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'none'; "                  \
    "form-action 'none'; frame-ancestors 'none'"

static const struct {
    const char *ext;
    const char *type;
} content_types[] = {
    {".html", "text/html; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".mjs", "text/javascript; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".svg", "image/svg+xml"},
    {".png", "image/png"},
    {".ico", "image/x-icon"},
    {".json", "application/json"},
    {".webmanifest", "application/manifest+json"},
    {".txt", "text/plain; charset=utf-8"},
    {".woff2", "font/woff2"},
};

static const char *content_type_of(const char *path)
{
    const char *dot = strrchr(path, '.');
    if (dot)
        for (size_t i = 0; i < sizeof content_types / sizeof content_types[0]; i++)
            if (!strcmp(dot, content_types[i].ext))
                return content_types[i].type;
    return "application/octet-stream";
}

/* A path inside the UI folder: no "..", no empty or hidden segments, no backslashes. */
static bool safe_path(const char *p)
{
    if (!*p || *p == '/' || strchr(p, '\\'))
        return false;
    for (const char *seg = p; seg && *seg;) {
        if (seg[0] == '.' || seg[0] == '/')
            return false;
        seg = strchr(seg, '/');
        if (seg)
            seg++;
    }
    return true;
}

static char *read_disk_file(const char *dir, const char *rel, size_t *len)
{
    char *path = xasprintf("%s/%s", dir, rel);
    FILE *f = fopen(path, "rb");
    free(path);
    if (!f)
        return NULL;
    struct buf b = BUF_INIT;
    char chunk[8192];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        buf_append(&b, chunk, n);
    fclose(f);
    *len = b.len;
    return buf_steal(&b);
}

static const struct embedded_file *find_embedded(const char *rel)
{
    for (const struct embedded_file *f = embedded_ui; f->path; f++)
        if (!strcmp(f->path, rel))
            return f;
    return NULL;
}

static void serve(struct http_request *req, const char *rel, const unsigned char *data, size_t len)
{
    unsigned char digest[32];
    unsigned int dlen = 0;
    EVP_Digest(data, len, digest, &dlen, EVP_sha256(), NULL);
    char etag[40];
    snprintf(etag, sizeof etag, "\"");
    for (int i = 0; i < 12; i++)
        snprintf(etag + 1 + 2 * i, sizeof etag - 1 - 2 * (size_t)i, "%02x", digest[i]);
    strcat(etag, "\"");
    http_add_header(req, "ETag", etag);
    /* Files keep their names across versions, so browsers revalidate every time (cheap: 304). */
    http_add_header(req, "Cache-Control", "no-cache");
    http_add_header(req, "Content-Security-Policy", UI_CSP);
    http_add_header(req, "Referrer-Policy", "no-referrer");
    http_add_header(req, "X-Frame-Options", "DENY");
    const char *inm = http_header(req, "If-None-Match");
    if (inm && !strcmp(inm, etag)) {
        http_reply_bytes(req, 304, content_type_of(rel), "", 0);
        return;
    }
    http_reply_bytes(req, 200, content_type_of(rel), data, len);
}

static void serve_path(struct http_request *req, const char *rel)
{
    struct app *app = http_app(req);
    const char *dir = app->cfg->ui_dir;
    if (dir) {
        size_t len = 0;
        char *data = safe_path(rel) ? read_disk_file(dir, rel, &len) : NULL;
        const char *served = rel;
        if (!data) {
            served = "index.html";
            data = read_disk_file(dir, served, &len);
        }
        if (!data) {
            http_reply_problem(req, 404, "not-found", "Not found",
                               "the UI folder %s has no index.html", dir);
            return;
        }
        serve(req, served, (const unsigned char *)data, len);
        free(data);
        return;
    }
    const struct embedded_file *f = safe_path(rel) ? find_embedded(rel) : NULL;
    if (!f)
        f = find_embedded("index.html");
    if (!f) {
        http_reply_problem(req, 404, "not-found", "Not found",
                           "this keeld was built without a web UI");
        return;
    }
    serve(req, f->path, f->data, f->len);
}

void api_ui_root(struct http_request *req)
{
    http_add_header(req, "Location", "/ui/");
    http_reply_bytes(req, 302, "text/plain; charset=utf-8", "/ui/\n", 5);
}

void api_ui_file(struct http_request *req)
{
    const char *rel = http_param(req, "path");
    serve_path(req, rel && *rel ? rel : "index.html");
}
