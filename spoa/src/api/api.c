/*
 * api: the administration REST API's server (api.h). One thread, one event loop, one
 * PostgreSQL connection (util/dbwriter.h). A request goes through three phases, each
 * owned by one callback:
 *
 *   identity (on_identity: the pipeline's admin stages, maybe asynchronous)
 *   -> queued (at most API_QUEUE_MAX) -> in flight (db_next, db_row, db_done)
 *   -> answered.
 *
 * A call is freed once it is answered and the pipeline has released its context. A
 * client that goes away does not free the request: libevent keeps it detached until it
 * is answered (evhttp_send_reply then only frees it).
 */
#include "api/api.h"

#include "api/route.h"
#include "pipeline/pipeline.h"
#include "util/addr.h"
#include "util/dbwriter.h"
#include "util/json.h"
#include "util/log.h"
#include "util/xalloc.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TICK_MS 250

/* The SQL of one call; the function catches its own errors (sql/011_admin_api.sql). */
static const char CALL_SQL[] =
	"SELECT r->>'status', r->>'etag', r->'body' "
	"FROM (SELECT jairouter.admin_api($1, $2::jsonb, $3::jsonb, $4) AS r) s";

/* Query parameters an operation may take; any other is refused. */
static const char *const QUERY_NAMES[] = { "limit", "cursor", "tenant", "from", "to", "group_by" };

struct call {
	struct api *api;
	struct evhttp_request *req;
	struct pl_ctx ctx;
	struct api_match match;
	const char *params[4]; /* op, caller, args, body */
	struct jbuf caller, args;
	char *body;
	char *status, *etag, *result; /* the row, copied */
	int released, answered;
	struct call *next;
};

struct api {
	pthread_t thread;
	struct event_base *base;
	struct evhttp *http;
	struct dbw *db;
	struct event *stop_ev;
	struct call *head, *tail, *inflight;
	unsigned calls, queued;
};

/* ---- answers ----------------------------------------------------------------------- */

static void call_free_if_done(struct call *c)
{
	if (!c->released || !c->answered)
		return;
	c->api->calls--;
	free(c->caller.p);
	free(c->args.p);
	free(c->body);
	free(c->status);
	free(c->etag);
	free(c->result);
	free(c);
}

/* The client's x-request-id when it is a short printable token, else a new one. */
static void request_id(struct evhttp_request *req, char *out, size_t cap)
{
	const char *v = evhttp_find_header(evhttp_request_get_input_headers(req), "x-request-id");
	size_t n = v ? strlen(v) : 0, i = 0;
	unsigned char rnd[16];

	while (i < n && v[i] > 0x20 && v[i] < 0x7f)
		i++;
	if (n > 0 && n < cap && n <= 128 && i == n) {
		memcpy(out, v, n + 1);
		return;
	}
	evutil_secure_rng_get_bytes(rnd, sizeof(rnd));
	for (i = 0; i < sizeof(rnd) && 2 * i + 2 < cap; i++)
		snprintf(out + 2 * i, 3, "%02x", rnd[i]);
}

static void send_json(struct evhttp_request *req, int status, const char *body, size_t len)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	struct evbuffer *b = evbuffer_new();
	char id[136];

	request_id(req, id, sizeof(id));
	evhttp_add_header(h, "x-request-id", id);
	evhttp_add_header(h, "Content-Type", "application/json");
	evhttp_add_header(h, "Cache-Control", "no-store");
	evbuffer_add(b, body, len);
	evhttp_send_reply(req, status, NULL, b);
	evbuffer_free(b);
}

/* An OpenAI-style error; retry_after > 0 adds the header. */
static void send_error(struct evhttp_request *req, int status, const char *type, const char *code,
		       int retry_after, const char *message)
{
	struct jbuf b = { 0 };
	char ra[16];

	jbuf_puts(&b, "{\"error\":{\"message\":");
	jbuf_put_string(&b, message, strlen(message));
	jbuf_printf(&b, ",\"type\":\"%s\",\"param\":null,\"code\":\"%s\"}}", type, code);
	if (retry_after > 0) {
		snprintf(ra, sizeof(ra), "%d", retry_after);
		evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", ra);
	}
	send_json(req, status, b.p, b.len);
	free(b.p);
}

static void call_error(struct call *c, int status, const char *type, const char *code,
		       int retry_after, const char *message)
{
	send_error(c->req, status, type, code, retry_after, message);
	c->answered = 1;
	call_free_if_done(c);
}

/* ---- the database phase ---------------------------------------------------------------- */

static int db_next(void *arg, struct dbw_query *q)
{
	struct api *a = arg;
	struct call *c = a->head;

	if (!c || a->inflight)
		return 0;
	a->head = c->next;
	if (!a->head)
		a->tail = NULL;
	a->queued--;
	a->inflight = c;
	q->sql = CALL_SQL;
	q->nparams = 4;
	q->params = c->params;
	return 1;
}

static char *dup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

static void db_row(void *arg, int ncols, const char *const *vals)
{
	struct api *a = arg;
	struct call *c = a->inflight;

	if (!c || ncols < 3 || c->result)
		return;
	c->status = dup_or_null(vals[0]);
	c->etag = dup_or_null(vals[1]);
	c->result = dup_or_null(vals[2]);
}

static void answer(struct call *c)
{
	int status = c->status ? atoi(c->status) : 0;

	if (status < 200 || status > 599 || !c->result) {
		call_error(c, 500, "server_error", "database_error", 0,
			   "The administration API received no answer from the database.");
		return;
	}
	if (c->etag)
		evhttp_add_header(evhttp_request_get_output_headers(c->req), "ETag", c->etag);
	send_json(c->req, status, c->result, strlen(c->result));
	c->answered = 1;
	call_free_if_done(c);
}

static void db_done(void *arg, enum dbw_status status, const char *err)
{
	struct api *a = arg;
	struct call *c = a->inflight;

	a->inflight = NULL;
	if (c && status == DBW_OK) {
		answer(c);
	} else if (c && status == DBW_ERROR) {
		log_error("admin API: %s failed: %s", c->match.op, err ? err : "unknown error");
		call_error(c, 500, "server_error", "database_error", 0,
			   "The operation failed inside the database; the error is in the agent's log.");
	} else if (c) {
		call_error(c, 503, "server_error", "database_unavailable", 5,
			   "The database is unavailable; the operation may not have been applied. Retry later.");
	}
	dbw_kick(a->db);
}

static void enqueue(struct api *a, struct call *c)
{
	if (a->queued >= API_QUEUE_MAX) {
		call_error(c, 503, "server_error", "admin_busy", 1,
			   "Too many administration requests are waiting for the database. Retry shortly.");
		return;
	}
	if (!dbw_up(a->db)) {
		call_error(c, 503, "server_error", "database_unavailable", 5,
			   "The database is unavailable. Retry later.");
		return;
	}
	if (a->tail)
		a->tail->next = c;
	else
		a->head = c;
	a->tail = c;
	a->queued++;
	dbw_kick(a->db);
}

/* ---- the call's documents -------------------------------------------------------------- */

static void caller_json(struct call *c)
{
	const struct pl_ctx *ctx = &c->ctx;
	struct jbuf roles = { 0 };
	unsigned act = pl_rbac_actions(ctx, &roles);
	struct jbuf *b = &c->caller;

	jbuf_puts(b, "{\"actor\":");
	if (ctx->auth_kind == PL_AUTH_KEY) {
		jbuf_printf(b, "\"key:%s\"", ctx->out.key_prefix);
	} else {
		struct jbuf who = { 0 };
		jbuf_printf(&who, "user:%s@%s", ctx->end_user, ctx->issuer);
		jbuf_put_string(b, who.p, who.len);
		free(who.p);
	}
	jbuf_printf(b, ",\"tenant_id\":%lld,\"key_id\":", (long long)ctx->tenant_id);
	if (ctx->key_id)
		jbuf_printf(b, "%lld", (long long)ctx->key_id);
	else
		jbuf_puts(b, "null");
	jbuf_printf(b, ",\"roles\":[%s],\"permissions\":[", roles.p ? roles.p : "");
	jbuf_printf(b, "%s%s%s%s%s]}", act & PL_ACT_ADMIN ? "\"admin\"" : "",
		    (act & PL_ACT_ADMIN) && (act & PL_ACT_USAGE_READ) ? "," : "",
		    act & PL_ACT_USAGE_READ ? "\"usage:read\"" : "",
		    (act & (PL_ACT_ADMIN | PL_ACT_USAGE_READ)) && (act & PL_ACT_AUDIT_READ) ? "," : "",
		    act & PL_ACT_AUDIT_READ ? "\"audit:read\"" : "");
	free(roles.p);
}

static void args_put(struct jbuf *b, const char *name, const char *value, size_t len)
{
	jbuf_puts(b, b->len > 1 ? "," : "");
	jbuf_put_string(b, name, strlen(name));
	jbuf_puts(b, ":");
	jbuf_put_string(b, value, len);
}

/* Path parameters, percent-decoded; -1 when one decodes to something unusable. */
static int args_path(struct call *c)
{
	for (int i = 0; i < c->match.nparams; i++) {
		const struct api_param *p = &c->match.params[i];
		const char *end = strchr(p->name, '}');
		char raw[256], name[32], *dec;
		size_t n;

		snprintf(raw, sizeof(raw), "%.*s", (int)p->len, p->value);
		snprintf(name, sizeof(name), "%.*s", end ? (int)(end - p->name) : 0, p->name);
		dec = evhttp_uridecode(raw, 0, &n);
		if (!dec || n == 0 || strlen(dec) != n) {
			free(dec);
			return -1;
		}
		args_put(&c->args, name, dec, n);
		free(dec);
	}
	return 0;
}

static int known_query(const char *name)
{
	for (size_t i = 0; i < sizeof(QUERY_NAMES) / sizeof(QUERY_NAMES[0]); i++)
		if (strcmp(name, QUERY_NAMES[i]) == 0)
			return 1;
	return 0;
}

/* Query parameters; NULL, or the name of one this API does not take. */
static const char *args_query(struct call *c, char *bad, size_t cap)
{
	const char *q = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(c->req));
	struct evkeyvalq kv;
	const char *unknown = NULL;

	if (!q)
		return NULL;
	kv.tqh_first = NULL;
	kv.tqh_last = &kv.tqh_first;
	if (evhttp_parse_query_str(q, &kv) < 0) {
		snprintf(bad, cap, "%s", "(malformed query string)");
		return bad;
	}
	for (struct evkeyval *e = kv.tqh_first; e && !unknown; e = e->next.tqe_next) {
		if (!known_query(e->key)) {
			snprintf(bad, cap, "%.64s", e->key);
			unknown = bad;
		} else {
			args_put(&c->args, e->key, e->value, strlen(e->value));
		}
	}
	evhttp_clear_headers(&kv);
	return unknown;
}

static void args_header(struct call *c, const char *header, const char *name)
{
	const char *v = evhttp_find_header(evhttp_request_get_input_headers(c->req), header);

	if (v)
		args_put(&c->args, name, v, strlen(v));
}

/* ---- the identity phase ---------------------------------------------------------------- */

static void identity_error(struct call *c)
{
	char body[PL_ERROR_MAX];
	int n = pl_error_json(&c->ctx.out, body, sizeof(body));
	char ra[16];

	if (c->ctx.out.retry_after > 0) {
		snprintf(ra, sizeof(ra), "%d", c->ctx.out.retry_after);
		evhttp_add_header(evhttp_request_get_output_headers(c->req), "Retry-After", ra);
	}
	if (n < 0)
		send_error(c->req, 500, "server_error", "gateway_error", 0, "The gateway failed to process the request.");
	else
		send_json(c->req, c->ctx.out.status ? c->ctx.out.status : 500, body, (size_t)n);
	c->answered = 1;
}

static void on_identity(struct pl_ctx *ctx, void *arg)
{
	struct call *c = arg;
	char bad[80];
	const char *unknown;

	(void)ctx;
	if (!c->ctx.out.allow) {
		identity_error(c);
		return;
	}
	caller_json(c);
	jbuf_puts(&c->args, "{");
	if (args_path(c) < 0) {
		send_error(c->req, 400, "invalid_request_error", "invalid_path", 0,
			   "A path parameter is not valid percent-encoded text.");
		c->answered = 1;
		return;
	}
	if ((unknown = args_query(c, bad, sizeof(bad)))) {
		char msg[160];
		snprintf(msg, sizeof(msg), "Unknown query parameter '%s'.", unknown);
		send_error(c->req, 400, "invalid_request_error", "unknown_parameter", 0, msg);
		c->answered = 1;
		return;
	}
	args_header(c, "If-Match", "if_match");
	args_header(c, "Idempotency-Key", "idempotency_key");
	jbuf_puts(&c->args, "}");
	c->params[0] = c->match.op;
	c->params[1] = c->caller.p;
	c->params[2] = c->args.p;
	c->params[3] = c->body;
	enqueue(c->api, c);
}

static void on_release(struct pl_ctx *ctx, void *arg)
{
	struct call *c = arg;

	pl_ctx_clear(ctx);
	c->released = 1;
	call_free_if_done(c);
}

static void set_str(struct pl_str *s, const char *v)
{
	s->ptr = v;
	s->len = v ? strlen(v) : 0;
}

/* The client: HAProxy's x-jairouter-client ("address port", set by the gateway's entry
 * backend over any value a client sent), else the TCP peer. */
static void client_address(struct evhttp_request *req, struct pl_request *in)
{
	const char *h = evhttp_find_header(evhttp_request_get_input_headers(req), "x-jairouter-client");
	char host[64] = "";
	ev_uint16_t port;
	char *peer = NULL;

	if (h)
		sscanf(h, "%63s", host);
	else if (evhttp_request_get_connection(req)) {
		evhttp_connection_get_peer(evhttp_request_get_connection(req), &peer, &port);
		snprintf(host, sizeof(host), "%s", peer ? peer : "");
	}
	if (inet_pton(AF_INET, host, in->src) == 1)
		in->src_family = 4;
	else if (inet_pton(AF_INET6, host, in->src) == 1)
		in->src_family = 6;
}

static void identity_start(struct call *c)
{
	struct evkeyvalq *h = evhttp_request_get_input_headers(c->req);
	struct pl_policy pol = { 0, (int64_t)time(NULL) };
	struct pl_request *in;
	int64_t creds = 0;

	pl_ctx_init(&c->ctx, &pol);
	c->ctx.base = c->api->base;
	in = &c->ctx.in;
	for (struct evkeyval *e = h->tqh_first; e; e = e->next.tqe_next)
		creds += evutil_ascii_strcasecmp(e->key, "authorization") == 0 ||
			 evutil_ascii_strcasecmp(e->key, "x-api-key") == 0;
	in->cred_count = creds;
	set_str(&in->authorization, evhttp_find_header(h, "Authorization"));
	set_str(&in->api_key, evhttp_find_header(h, "x-api-key"));
	set_str(&in->request_id, evhttp_find_header(h, "x-request-id"));
	set_str(&in->path, evhttp_request_get_uri(c->req));
	client_address(c->req, in);
	pl_start(&c->ctx, pl_admin_stages, pl_admin_nstages, on_identity, on_release, c);
}

/* ---- requests ---------------------------------------------------------------------------- */

static const char *method_name(enum evhttp_cmd_type m)
{
	switch (m) {
	case EVHTTP_REQ_GET: return "GET";
	case EVHTTP_REQ_POST: return "POST";
	case EVHTTP_REQ_PATCH: return "PATCH";
	case EVHTTP_REQ_PUT: return "PUT";
	case EVHTTP_REQ_DELETE: return "DELETE";
	default: return "OTHER";
	}
}

/* The route, or an error answered; 0 to go on. */
static int route(struct evhttp_request *req, struct api_match *m)
{
	const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
	char allow[64], msg[128];

	switch (api_route_match(method_name(evhttp_request_get_command(req)), path, m)) {
	case API_ROUTE_OK: return 0;
	case API_ROUTE_BAD_METHOD:
		api_route_allowed(path, allow, sizeof(allow));
		evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", allow);
		snprintf(msg, sizeof(msg), "This path takes %s.", allow);
		send_error(req, 405, "invalid_request_error", "method_not_allowed", 0, msg);
		return -1;
	default:
		send_error(req, 404, "invalid_request_error", "unknown_url",
			   0, "Unknown administration API path: see docs/admin-api.md.");
		return -1;
	}
}

/* The body as text (NULL when empty); -1 when too large (answered). */
static int read_body(struct evhttp_request *req, char **out)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t n = evbuffer_get_length(in);

	*out = NULL;
	if (n > API_BODY_MAX) {
		send_error(req, 413, "invalid_request_error", "request_too_large", 0,
			   "The request body is larger than 65536 bytes.");
		return -1;
	}
	if (n == 0)
		return 0;
	*out = xmalloc(n + 1);
	evbuffer_remove(in, *out, n);
	(*out)[n] = '\0';
	return 0;
}

static void handle(struct evhttp_request *req, void *arg)
{
	struct api *a = arg;
	struct api_match m;
	struct call *c;
	char *body;

	if (route(req, &m) < 0 || read_body(req, &body) < 0)
		return;
	if (a->calls >= API_CALLS_MAX) {
		free(body);
		send_error(req, 503, "server_error", "admin_busy", 1,
			   "Too many administration requests are in progress. Retry shortly.");
		return;
	}
	c = xcalloc(1, sizeof(*c));
	c->api = a;
	c->req = req;
	c->match = m;
	c->body = body;
	a->calls++;
	identity_start(c);
}

/* ---- the thread ---------------------------------------------------------------------------- */

static const struct dbw_ops db_ops = {
	.name = "admin API",
	.appname = "jairouter-admin-api",
	.down_msg = "administration requests are answered 503 until it is back",
	.next = db_next,
	.row = db_row,
	.done = db_done,
	.tick = NULL,
};

static void fail_queued(struct api *a)
{
	while (a->head) {
		struct call *c = a->head;
		a->head = c->next;
		a->queued--;
		call_error(c, 503, "server_error", "shutting_down", 1, "The agent is stopping. Retry shortly.");
	}
	a->tail = NULL;
}

static void on_stop(evutil_socket_t fd, short what, void *arg)
{
	struct api *a = arg;

	(void)fd;
	(void)what;
	fail_queued(a);
	dbw_halt(a->db); /* the statement in flight, if any, is answered 503 (DBW_STOP) */
	event_base_loopbreak(a->base);
}

static void *run(void *arg)
{
	struct api *a = arg;

	event_base_loop(a->base, EVLOOP_NO_EXIT_ON_EMPTY);
	pl_worker_exit(NULL);
	return NULL;
}

static int bind_addr(struct api *a, const char *addr)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	struct evconnlistener *l;

	memset(&ss, 0, sizeof(ss));
	if (addr_resolve(addr, SOCK_STREAM, &ss, &sl) < 0)
		return -1;
	l = evconnlistener_new_bind(a->base, NULL, NULL,
				    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_REUSEABLE_PORT |
					    LEV_OPT_CLOSE_ON_EXEC,
				    128, (struct sockaddr *)&ss, (int)sl);
	if (!l)
		return -1;
	if (!evhttp_bind_listener(a->http, l)) {
		evconnlistener_free(l);
		return -1;
	}
	return 0;
}

static void api_free(struct api *a)
{
	if (a->http)
		evhttp_free(a->http);
	if (a->db)
		dbw_free(a->db);
	if (a->stop_ev)
		event_free(a->stop_ev);
	if (a->base)
		event_base_free(a->base);
	free(a);
}

struct api *api_start(const char *addr, const char *database, char *err, size_t errlen)
{
	struct api *a = xcalloc(1, sizeof(*a));

	a->base = event_base_new();
	a->http = a->base ? evhttp_new(a->base) : NULL;
	if (!a->http || bind_addr(a, addr) < 0) {
		snprintf(err, errlen, "admin_api_listen: cannot bind %s", addr);
		goto err;
	}
	evhttp_set_max_headers_size(a->http, 16384);
	evhttp_set_max_body_size(a->http, 4 * API_BODY_MAX); /* beyond API_BODY_MAX: our 413 */
	evhttp_set_timeout(a->http, 30);
	evhttp_set_allowed_methods(a->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PATCH |
						    EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE);
	evhttp_set_gencb(a->http, handle, a);
	a->stop_ev = event_new(a->base, -1, 0, on_stop, a);
	a->db = dbw_start(a->base, database, TICK_MS, &db_ops, a);
	if (!a->stop_ev || !a->db) {
		snprintf(err, errlen, "admin API: cannot start");
		goto err;
	}
	if (pthread_create(&a->thread, NULL, run, a) != 0) {
		snprintf(err, errlen, "admin API: cannot start its thread");
		goto err;
	}
	return a;
err:
	api_free(a);
	return NULL;
}

void api_stop(struct api *a)
{
	if (!a)
		return;
	event_active(a->stop_ev, 0, 0);
	pthread_join(a->thread, NULL);
	api_free(a);
}
