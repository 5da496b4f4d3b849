/* The web UI's files: compiled into keeld (web-ui/), or read from --ui-dir while developing.
 * GET / redirects to /ui/; /ui/<file> serves that file; any other /ui/ path serves index.html,
 * so deep links such as /ui/executions/<id> reload to the same view. */
#ifndef KEEL_API_UI_H
#define KEEL_API_UI_H

#include "http/server.h"

void api_ui_root(struct http_request *req);
void api_ui_file(struct http_request *req);

#endif
