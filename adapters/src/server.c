/* server: see server.h. */
#include "server.h"

#include "adcache.h"
#include "driver.h"
#include "job.h"
#include "rcache.h"
#include "realtime.h"

#include "util/addr.h"
#include "util/log.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

/* ---- requests from HAProxy ------------------------------------------------------------ */

/* The provider credential HAProxy injected (the agent chose it): the secret without
 * its scheme. NULL when none. */
static const char *credential(struct evkeyvalq *h)
{
	const char *v = evhttp_find_header(h, "authorization");

	if (v) {
		if (strncasecmp(v, "Bearer ", 7) == 0)
			v += 7;
		return v;
	}
	if ((v = evhttp_find_header(h, "x-api-key")))
		return v;
	return evhttp_find_header(h, "api-key");
}

/* The request's path without its query, "/api/v1/..." as "/v1/...". */
static void request_path(struct evhttp_request *req, char *path, size_t cap)
{
	const char *uri = evhttp_request_get_uri(req), *q = strchr(uri, '?');

	snprintf(path, cap, "%.*s", (int)(q ? (size_t)(q - uri) : strlen(uri)), uri);
	if (strncmp(path, "/api/v1/", 8) == 0)
		memmove(path, path + 4, strlen(path + 4) + 1);
}

/* What is refused before a job exists. 0 when the request may go on. */
static int admit(struct ad_server *s, struct evhttp_request *req)
{
	size_t len = evbuffer_get_length(evhttp_request_get_input_buffer(req));

	if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
		reply_refuse(s, req, 405, "invalid_request_error", "method_not_allowed", "The adapter takes POST requests.");
	} else if (!evhttp_find_header(evhttp_request_get_input_headers(req), "x-jairouter-adapter")) {
		reply_refuse(s, req, 400, "invalid_request_error", "adapter_route_missing",
			     "This request did not come through the gateway's decision (no route header).");
	} else if (s->m.inflight >= s->cfg->max_inflight) {
		s->m.refused_busy++;
		reply_refuse(s, req, 503, "server_error", "adapter_busy",
			     "The gateway's adapter is at its request limit; retry shortly.");
	} else if (len > s->cfg->max_body) {
		reply_refuse(s, req, 413, "invalid_request_error", "request_too_large",
			     "The request body is larger than the adapter accepts.");
	} else {
		return 0;
	}
	return -1;
}

/* The client's body as an OpenAI chat request (Anthropic clients' converted; path
 * then says what it now is). NULL after an error answer. */
static json_t *openai_request(struct job *j, char *path, size_t cap)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(j->req);
	size_t len = evbuffer_get_length(in);
	json_t *body = json_loadb((const char *)evbuffer_pullup(in, -1), len, 0, NULL), *oreq;
	struct xl_error e;

	if (!json_is_object(body)) {
		json_decref(body);
		reply_fail(j, 400, "invalid_request_error", "invalid_json", "The request body must be a JSON object.");
		return NULL;
	}
	if (j->client == CLIENT_OPENAI)
		return body;
	if (j->client == CLIENT_RESPONSES) {
		oreq = xl_resp_to_openai(body, &e);
		j->client_req = body; /* its settings are echoed in the answer */
	} else {
		oreq = xl_msg_to_openai(body, &e);
		json_decref(body);
	}
	snprintf(path, cap, "/v1/chat/completions");
	if (!oreq)
		reply_error(j, &e);
	return oreq;
}

/* The tenant's masking policy applied to the request. 0, or -1 after an error answer. */
static int mask_setup(struct job *j, json_t *oreq)
{
	char err[160];
	int rc;

	if (!j->route.mask[0])
		return 0;
	if (mask_policy_parse(&j->mask, j->route.mask, strlen(j->route.mask), err, sizeof(err)) < 0) {
		log_event(LOG_ERROR, "masking_policy_refused",
			  LOG_FIELDS(LOG_S("request_id", j->id), LOG_S("error", err)),
			  "request %s: tenant masking policy refused: %s", j->id, err);
		reply_fail(j, 500, "server_error", "masking_policy_invalid",
			   "The tenant's masking policy is invalid (%s); the request was not sent.", err);
		return -1;
	}
	j->masking = 1;
	mask_stream_init(&j->mstream, &j->mask);
	if (!(rc = mask_request(&j->mask, oreq, &j->counts)))
		return 0;
	if (rc < 0) {
		reply_fail(j, 500, "server_error", "masking_failed", "The request could not be masked.");
		return -1;
	}
	j->srv->m.mask_rejects++;
	reply_fail(j, 400, "invalid_request_error", "sensitive_data_detected",
		   "The request contains data the tenant's policy does not allow to leave (%s).",
		   mask_detector_name(j->counts.rejected_by));
	return -1;
}

/* The prompt's size for an estimate when no usage comes: its messages as JSON. */
static int64_t prompt_chars(const json_t *oreq, size_t body_len)
{
	char *dump = json_dumps(json_object_get(oreq, "messages"), JSON_COMPACT);
	int64_t n = dump ? (int64_t)strlen(dump) : (int64_t)body_len;

	free(dump);
	return n;
}

/* From the client's body to the transfer: 0, or -1 once an answer went out. */
static int proceed(struct job *j, char *path, size_t cap)
{
	struct evkeyvalq *h = evhttp_request_get_input_headers(j->req);
	json_t *oreq;
	int rc = -1;

	if (!(oreq = openai_request(j, path, cap)))
		return -1;
	j->include_usage = json_is_true(json_object_get(json_object_get(oreq, "stream_options"), "include_usage"));
	j->prompt_chars = prompt_chars(oreq, evbuffer_get_length(evhttp_request_get_input_buffer(j->req)));
	if (mask_setup(j, oreq) == 0 && (rc = job_start(j, oreq, path, credential(h))) < 0 && !j->reply_ended)
		reply_refuse(j->srv, j->req, 500, "server_error", "gateway_error", "The upstream transfer could not start.");
	json_decref(oreq);
	return rc;
}

/* A miss in the response cache's Redis tier: the request goes on (job_cache.c). */
static void resume(struct job *j)
{
	char path[sizeof(j->path)];

	snprintf(path, sizeof(path), "%s", j->path);
	if (proceed(j, path, sizeof(path)) < 0)
		job_free(j);
}

/* Until the transfer starts: 0 (or waiting for Redis), or -1 once an answer went out. */
static int prepare(struct job *j, const char *route, char *path, size_t cap)
{
	char err[160];
	int hit;

	if (route_parse(route, strlen(route), &j->route, err, sizeof(err)) < 0) {
		log_event(LOG_ERROR, "adapter_header_invalid",
			  LOG_FIELDS(LOG_S("request_id", j->id), LOG_S("error", err)),
			  "request %s: bad x-jairouter-adapter header: %s", j->id, err);
		reply_refuse(j->srv, j->req, 500, "server_error", "adapter_route_invalid",
			     "The gateway's route for this request is invalid.");
		return -1;
	}
	/* The Responses API passes through to OpenAI's own family; every other family
	 * (Azure deployments included) gets it translated to chat. */
	if (xl_is_responses(path) && j->route.family != XL_OPENAI)
		j->client = CLIENT_RESPONSES;
	j->srv->m.requests[j->route.family][j->client]++;
	snprintf(j->path, sizeof(j->path), "%s", path);
	j->cache_resume = resume;
	hit = cache_lookup(j, path);
	if (hit == 1) {
		job_report(j, 0);
		return -1;
	}
	if (hit == 2)
		return 0; /* asked of Redis: resume() or the hit ends the job */
	return proceed(j, path, cap);
}

/* Answers go out without Nagle's delay: HAProxy keeps its connections to the adapter
 * open and acknowledges late (delayed ACK), so an answer written in more than one piece
 * (libevent writes at most 16 KiB at a time; streams write per provider burst) would
 * wait 40 ms for each acknowledgement. Set per request: evhttp has no hook per
 * connection, and the call costs one system call. */
static void no_delay(struct evhttp_request *req)
{
	struct bufferevent *bev = evhttp_connection_get_bufferevent(evhttp_request_get_connection(req));
	evutil_socket_t fd = bev ? bufferevent_getfd(bev) : -1;
	int one = 1;

	if (fd >= 0)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static void on_request(struct evhttp_request *req, void *arg)
{
	struct ad_server *s = arg;
	char path[256];
	struct job *j;

	no_delay(req);
	if (admit(s, req) < 0)
		return;
	request_path(req, path, sizeof(path));
	j = job_new(s, req, strcmp(path, "/v1/messages") == 0 ? CLIENT_ANTHROPIC : CLIENT_OPENAI);
	if (prepare(j, evhttp_find_header(evhttp_request_get_input_headers(req), "x-jairouter-adapter"), path,
		    sizeof(path)) < 0)
		job_free(j);
}

/* ---- /metrics and /health -------------------------------------------------------------- */

static void reply_text(struct evhttp_request *req, struct evbuffer *b, const char *type)
{
	if (type)
		evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", type);
	evhttp_send_reply(req, 200, "OK", b);
	evbuffer_free(b);
}

static void on_metrics(struct evhttp_request *req, void *arg)
{
	struct ad_server *s = arg;
	struct evbuffer *b = evbuffer_new();

	if (!b)
		abort(); /* out of memory: as xalloc */
	adm_render(&s->m, b);
	if (s->cache) {
		struct ac_stats st;
		ac_stats(s->cache, &st);
		adm_render_cache(&st, s->m.cache_bypass, b);
	}
	if (s->rcache)
		rc_render(s->rcache, b);
	reply_text(req, b, "text/plain; version=0.0.4");
}

static void on_health(struct evhttp_request *req, void *arg)
{
	struct evbuffer *b = evbuffer_new();

	(void)arg;
	if (!b)
		abort();
	evbuffer_add_printf(b, "ok\n");
	reply_text(req, b, NULL);
}

/* ---- drain ----------------------------------------------------------------------------- */

/* The drain deadline: what is still running is ended (streams with an error event,
 * others with 503), reported, and the loop stops. */
static void on_drain_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct ad_server *s = arg;
	struct timeval grace = { 0, 300000 }; /* for those last bytes to be written */

	(void)fd, (void)what;
	log_event(LOG_WARN, "drain_deadline", LOG_FIELDS(LOG_I("inflight", s->m.inflight)),
		  "drain: %ld request(s) still running at the deadline; ending them",
		  s->m.inflight);
	job_end_all(s);
	rt_end_all(s->rt);
	event_base_loopexit(s->base, &grace);
}

/* SIGTERM/SIGINT: stop accepting (HAProxy's health check then fails over), let the
 * requests in flight finish for up to --drain-timeout-s, then stop. */
static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct ad_server *s = arg;
	struct timeval tv = { s->cfg->drain_timeout_s, 0 };

	(void)what;
	if (s->draining) {
		log_event(LOG_INFO, "drain_aborted", LOG_FIELDS(LOG_I("signal", sig)),
			  "signal %d again: stopping now", (int)sig);
		on_drain_timeout(-1, 0, s);
		return;
	}
	s->draining = 1;
	log_event(LOG_INFO, "drain_started",
		  LOG_FIELDS(LOG_I("signal", sig), LOG_I("inflight", s->m.inflight)),
		  "signal %d: draining %ld request(s)", (int)sig, s->m.inflight);
	if (s->bound) {
		evhttp_del_accept_socket(s->http, s->bound);
		s->bound = NULL;
	}
	rt_stop_accepting(s->rt);
	if (!s->jobs && rt_active(s->rt) == 0) {
		event_base_loopexit(s->base, NULL);
		return;
	}
	if (!s->drain_timer && !(s->drain_timer = evtimer_new(s->base, on_drain_timeout, s)))
		abort();
	evtimer_add(s->drain_timer, &tv);
}

/* ---- start-up -------------------------------------------------------------------------- */

static int listen_on(struct ad_server *s)
{
	const char *listen = s->cfg->listen, *colon = strrchr(listen, ':');
	char host[128];

	if (!colon || (size_t)(colon - listen) >= sizeof(host)) {
		log_event(LOG_ERROR, "listen_address_invalid", LOG_FIELDS(LOG_S("addr", listen)),
			  "--listen %s: expected HOST:PORT", listen);
		return -1;
	}
	snprintf(host, sizeof(host), "%.*s", (int)(colon - listen), listen);
	if (!(s->bound = evhttp_bind_socket_with_handle(s->http, host, (ev_uint16_t)atoi(colon + 1)))) {
		log_event(LOG_ERROR, "listen_failed", LOG_FIELDS(LOG_S("addr", listen)),
			  "cannot listen on %s", listen);
		return -1;
	}
	/* The port actually bound (":0" lets the kernel choose, as in tests). */
	printf("LISTENING %d\n", addr_bound_port(evhttp_bound_socket_get_fd(s->bound)));
	fflush(stdout);
	return 0;
}

static int make_http(struct ad_server *s)
{
	if (!(s->http = evhttp_new(s->base)))
		return -1;
	evhttp_set_max_body_size(s->http, (ev_ssize_t)s->cfg->max_body + 1);
	evhttp_set_max_headers_size(s->http, RT_HEADER_MAX + 16384);
	evhttp_set_timeout(s->http, 600);
	evhttp_set_allowed_methods(s->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST);
	evhttp_set_cb(s->http, "/metrics", on_metrics, s);
	evhttp_set_cb(s->http, "/health", on_health, s);
	evhttp_set_gencb(s->http, on_request, s);
	return 0;
}

int srv_init(struct ad_server *s, const struct ad_config *cfg)
{
	s->cfg = cfg;
	if (!(s->base = event_base_new()) || !(s->drv = drv_new(s->base)) || make_http(s) < 0) {
		log_event(LOG_ERROR, "adapter_start_failed", LOG_NO_FIELDS,
			  "the event loop, libcurl or the HTTP server could not be set up");
		return -1;
	}
	if (listen_on(s) < 0)
		return -1;
	if (cfg->realtime_listen[0] && !(s->rt = rt_start(s)))
		return -1;
	s->tokens = tok_new(s->drv, &s->m, cfg->connect_timeout_ms);
	if (cfg->cache_max_bytes)
		s->cache = ac_new(cfg->cache_max_bytes);
	if (s->cache && cfg->cache_redis[0] &&
	    !(s->rcache = rc_new(s->base, cfg->cache_redis, cfg->cache_redis_timeout_ms))) {
		log_event(LOG_ERROR, "cache_redis_invalid", LOG_FIELDS(LOG_S("addr", cfg->cache_redis)),
			  "--cache-redis %s: expected HOST:PORT", cfg->cache_redis);
		return -1;
	}
	if (s->rcache)
		rc_connect(s->rcache);
	s->sigs[0] = evsignal_new(s->base, SIGTERM, on_signal, s);
	s->sigs[1] = evsignal_new(s->base, SIGINT, on_signal, s);
	if (!s->sigs[0] || !s->sigs[1] || event_add(s->sigs[0], NULL) < 0 || event_add(s->sigs[1], NULL) < 0) {
		log_event(LOG_ERROR, "signal_setup_failed", LOG_NO_FIELDS,
			  "signal handlers could not be installed");
		return -1;
	}
	return 0;
}

void srv_run(struct ad_server *s)
{
	event_base_dispatch(s->base);
}

void srv_free(struct ad_server *s)
{
	for (int i = 0; i < 2; i++)
		if (s->sigs[i])
			event_free(s->sigs[i]);
	if (s->drain_timer)
		event_free(s->drain_timer);
	rt_free(s->rt);
	if (s->http)
		evhttp_free(s->http);
	tok_free(s->tokens);
	rc_free(s->rcache);
	ac_free(s->cache);
	drv_free(s->drv);
	if (s->base)
		event_base_free(s->base);
}
