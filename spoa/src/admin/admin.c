#include "admin/admin.h"

#include "util/addr.h"
#include "util/xalloc.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

struct admin {
	struct evhttp *http;
	admin_gauges_fn gauges;
	void *arg;
};

static const char *db_state(int s)
{
	return s == 1 ? "up" : s == 2 ? "down" : "connecting";
}

static void reply(struct evhttp_request *req, int code, const char *reason, const char *ctype,
		  struct evbuffer *body)
{
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", ctype);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Cache-Control", "no-store");
	evhttp_send_reply(req, code, reason, body);
}

static void handle_metrics(struct evhttp_request *req, const struct metrics_gauges *g)
{
	struct evbuffer *b = evbuffer_new();

	metrics_render(b, g);
	reply(req, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", b);
	evbuffer_free(b);
}

static void handle_health(struct evhttp_request *req, const struct metrics_gauges *g, int readiness)
{
	struct evbuffer *b = evbuffer_new();
	const char *status = g->draining ? "draining" : !g->ready ? "starting"
			     : g->db_status != 1 ? "degraded"
			     : g->limits && strcmp(g->limits, "fleet-fallback") == 0 ? "degraded" : "ok";
	int ok = readiness ? g->ready && !g->draining : 1;

	evbuffer_add_printf(b, "{\"status\":\"%s\",\"ready\":%s,\"database\":\"%s\",\"tenants\":%zu,"
			       "\"api_keys\":%zu,\"models\":%zu,\"connections\":%ld,\"workers\":%u,"
			       "\"limits\":\"%s\"}\n",
			    status, g->ready ? "true" : "false", db_state(g->db_status), g->tenants,
			    g->keys, g->models, g->connections, g->workers, g->limits ? g->limits : "local");
	reply(req, ok ? 200 : 503, ok ? "OK" : "Service Unavailable", "application/json", b);
	evbuffer_free(b);
}

static void handle(struct evhttp_request *req, void *arg)
{
	struct admin *a = arg;
	const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
	struct metrics_gauges g;

	if (evhttp_request_get_command(req) != EVHTTP_REQ_GET &&
	    evhttp_request_get_command(req) != EVHTTP_REQ_HEAD) {
		evhttp_send_error(req, 405, "Method Not Allowed");
		return;
	}
	memset(&g, 0, sizeof(g));
	a->gauges(&g, a->arg);
	if (path && strcmp(path, "/metrics") == 0)
		handle_metrics(req, &g);
	else if (path && strcmp(path, "/healthz") == 0)
		handle_health(req, &g, 0);
	else if (path && strcmp(path, "/readyz") == 0)
		handle_health(req, &g, 1);
	else
		evhttp_send_error(req, 404, "Not Found");
}

/* SO_REUSEPORT, like the SPOP listener: the next process binds while this one drains. */
static int bind_reuseport(struct evhttp *http, struct event_base *base, const char *addr)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	struct evconnlistener *l;

	memset(&ss, 0, sizeof(ss));
	if (addr_resolve(addr, SOCK_STREAM, &ss, &sl) < 0)
		return -1;
	l = evconnlistener_new_bind(base, NULL, NULL,
				    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_REUSEABLE_PORT |
					    LEV_OPT_CLOSE_ON_EXEC,
				    128, (struct sockaddr *)&ss, (int)sl);
	if (!l)
		return -1;
	if (!evhttp_bind_listener(http, l)) {
		evconnlistener_free(l);
		return -1;
	}
	return 0;
}

struct admin *admin_start(struct event_base *base, const char *addr, admin_gauges_fn gauges,
			  void *arg, char *err, size_t errlen)
{
	struct admin *a = xcalloc(1, sizeof(*a));
	char host[256];
	const char *colon = strrchr(addr, ':');
	int port;

	if (!colon || colon == addr || (size_t)(colon - addr) >= sizeof(host) ||
	    (port = atoi(colon + 1)) <= 0 || port > 65535) {
		snprintf(err, errlen, "metrics_listen: expected host:port, got '%s'", addr);
		free(a);
		return NULL;
	}
	memcpy(host, addr, (size_t)(colon - addr));
	host[colon - addr] = '\0';
	if (host[0] == '[' && host[strlen(host) - 1] == ']') { /* [::1]:9180 */
		memmove(host, host + 1, strlen(host));
		host[strlen(host) - 1] = '\0';
	}
	a->gauges = gauges;
	a->arg = arg;
	a->http = evhttp_new(base);
	/* Bounded requests: this endpoint serves scrapes, not uploads. */
	evhttp_set_max_headers_size(a->http, 8192);
	evhttp_set_max_body_size(a->http, 0);
	evhttp_set_timeout(a->http, 10);
	evhttp_set_gencb(a->http, handle, a);
	if (bind_reuseport(a->http, base, addr) < 0) {
		snprintf(err, errlen, "metrics_listen: cannot bind %s", addr);
		evhttp_free(a->http);
		free(a);
		return NULL;
	}
	return a;
}

void admin_stop(struct admin *a)
{
	if (!a)
		return;
	evhttp_free(a->http);
	free(a);
}
