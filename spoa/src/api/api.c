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
#include "cred/cred.h"
#include "pipeline/pipeline.h"
#include "util/addr.h"
#include "util/dbwriter.h"
#include "util/json.h"
#include "util/log.h"
#include "util/xalloc.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TICK_MS 250
#define CONN_SWEEP_MS 100

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
	/* PUT /credentials: the secret taken out of the body (wiped when freed), and the
	 * step: 0 prepare (the row id and the sealing's additional data), 1 store. */
	char *secret;
	size_t secret_len;
	int phase;
	struct call *next;
};

struct rate_slot {
	uint64_t who; /* 0: free */
	double tokens;
	int64_t last_ms;
};

struct api {
	pthread_t thread;
	struct event_base *base;
	struct evhttp *http;
	struct evconnlistener *listener;
	struct event *sweep_ev;          /* counts the connections evhttp has freed */
	struct bufferevent *conn[API_CONNS_MAX + API_CONNS_SPARE]; /* open ones, each with our reference */
	unsigned conns;
	int paused;                      /* the listener stopped at the connection bound */
	struct dbw *db;
	struct event *stop_ev;
	struct call *head, *tail, *inflight;
	unsigned calls, queued;
	_Atomic unsigned rate_per_min;
	struct rate_slot rates[API_RATE_SLOTS];
	pthread_mutex_t keys_lock; /* guards keys: SIGHUP replaces them from another thread */
	struct cred_keyring *keys;
};

/* ---- answers ----------------------------------------------------------------------- */

/* The statuses this API answers with, for jairouter_admin_api_responses_total. */
static const int STATUSES[] = { 200, 201, 400, 401, 403, 404, 405, 409, 412, 413, 428, 429, 500, 503 };
#define NSTATUS (sizeof(STATUSES) / sizeof(STATUSES[0]))
static _Atomic uint64_t answered_by_status[NSTATUS + 1]; /* [NSTATUS]: any other */
static _Atomic unsigned open_conns;
static _Atomic uint64_t conns_accepted;
static _Atomic uint64_t conns_refused;

static void count_status(int status)
{
	size_t i = 0;

	while (i < NSTATUS && STATUSES[i] != status)
		i++;
	atomic_fetch_add_explicit(&answered_by_status[i], 1, memory_order_relaxed);
}

void api_render_metrics(struct evbuffer *out, void *arg)
{
	const struct api *a = arg;

	evbuffer_add_printf(out, "# HELP jairouter_admin_api_responses_total Answers of the administration API, by HTTP status.\n"
				 "# TYPE jairouter_admin_api_responses_total counter\n");
	for (size_t i = 0; i <= NSTATUS; i++) {
		char st[8];
		snprintf(st, sizeof(st), i < NSTATUS ? "%d" : "other", i < NSTATUS ? STATUSES[i] : 0);
		evbuffer_add_printf(out, "jairouter_admin_api_responses_total{status=\"%s\"} %llu\n", st,
				    (unsigned long long)atomic_load(&answered_by_status[i]));
	}
	evbuffer_add_printf(out, "# HELP jairouter_admin_api_database_up Whether the administration API's PostgreSQL connection is up.\n"
				 "# TYPE jairouter_admin_api_database_up gauge\njairouter_admin_api_database_up %d\n",
			    a && a->db && dbw_up(a->db) ? 1 : 0);
	evbuffer_add_printf(out, "# HELP jairouter_admin_api_connections Connections open to the administration API.\n"
				 "# TYPE jairouter_admin_api_connections gauge\njairouter_admin_api_connections %u\n"
				 "# HELP jairouter_admin_api_connections_accepted_total Connections the administration API accepted.\n"
				 "# TYPE jairouter_admin_api_connections_accepted_total counter\n"
				 "jairouter_admin_api_connections_accepted_total %llu\n"
				 "# HELP jairouter_admin_api_connections_refused_total Requests answered 503 because more than %d connections were open.\n"
				 "# TYPE jairouter_admin_api_connections_refused_total counter\n"
				 "jairouter_admin_api_connections_refused_total %llu\n",
			    atomic_load(&open_conns), (unsigned long long)atomic_load(&conns_accepted), API_CONNS_MAX,
			    (unsigned long long)atomic_load(&conns_refused));
}

static void call_free_if_done(struct call *c)
{
	if (!c->released || !c->answered)
		return;
	c->api->calls--;
	if (c->secret)
		OPENSSL_cleanse(c->secret, c->secret_len);
	free(c->secret);
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

	count_status(status);
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

static void enqueue(struct api *a, struct call *c);
static int credential_seal(struct call *c);

static void answer(struct call *c)
{
	int status = c->status ? atoi(c->status) : 0;

	if (c->secret && c->phase == 0 && status == 200) {
		if (credential_seal(c) == 0)
			enqueue(c->api, c);
		return;
	}

	if (status < 200 || status > 599 || !c->result) {
		call_error(c, 500, "server_error", "database_error", 0,
			   "The administration API received no answer from the database.");
		return;
	}
	if (status == 403) { /* the roles lack the permission: a security event, as for a model */
		char reason[64];
		snprintf(reason, sizeof(reason), "admin:%s", c->match.op);
		pl_audit(&c->ctx, "permission_denied", reason, 403);
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
		log_event(LOG_ERROR, "admin_api_op_failed",
			  LOG_FIELDS(LOG_S("op", c->match.op),
				     LOG_S("error", err ? err : "unknown error")),
			  "admin API: %s failed: %s", c->match.op, err ? err : "unknown error");
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

/* ---- provider credentials (write-only) ------------------------------------------------- */

/* PUT /credentials/...: takes "secret" out of the body, which goes on without it. 0, or -1
 * answered. */
static int credential_take_secret(struct evhttp_request *req, struct call *c)
{
	json_t *doc = c->body ? json_loads(c->body, 0, NULL) : NULL;
	json_t *sec = doc ? json_object_get(doc, "secret") : NULL;
	const char *v = sec ? json_string_value(sec) : NULL;
	size_t n = v ? json_string_length(sec) : 0;
	int rc = -1;

	if (!json_is_object(doc) || !v || n == 0 || n > CRED_SECRET_MAX || memchr(v, '\0', n)) {
		send_error(req, 400, "invalid_request_error", "invalid_secret", 0,
			   "A credential needs \"secret\": a string of 1 to 4096 bytes.");
		goto out;
	}
	c->secret = xstrndup(v, n);
	c->secret_len = n;
	OPENSSL_cleanse((char *)v, n);
	json_object_del(doc, "secret");
	OPENSSL_cleanse(c->body, strlen(c->body));
	free(c->body);
	c->body = json_dumps(doc, JSON_COMPACT);
	rc = c->body ? 0 : -1;
out:
	json_decref(doc);
	return rc;
}

/* After the prepare step (its answer: {"id", "aad"}): seals the secret and turns the call
 * into the store step. 0 to send it; -1 answered. */
static int credential_seal(struct call *c)
{
	json_t *res = json_loads(c->result, 0, NULL), *body = c->body ? json_loads(c->body, 0, NULL) : json_object();
	const char *aad = json_string_value(json_object_get(res, "aad"));
	json_int_t id = json_integer_value(json_object_get(res, "id"));
	char *sealed = NULL;

	pthread_mutex_lock(&c->api->keys_lock);
	if (c->api->keys && aad && id > 0)
		sealed = cred_seal(c->api->keys, (const uint8_t *)c->secret, c->secret_len, aad, strlen(aad));
	pthread_mutex_unlock(&c->api->keys_lock);
	if (!sealed || !json_is_object(body)) {
		call_error(c, 503, "server_error", "credentials_unavailable", 0,
			   "The agent holds no master keys (master_key_file): credentials cannot be sealed.");
		json_decref(res);
		json_decref(body);
		return -1;
	}
	json_object_set_new(body, "id", json_integer(id));
	json_object_set_new(body, "sealed", json_string(sealed));
	free(c->body);
	c->body = json_dumps(body, JSON_COMPACT);
	OPENSSL_cleanse(c->secret, c->secret_len);
	free(sealed);
	json_decref(res);
	json_decref(body);
	free(c->status);
	free(c->etag);
	free(c->result);
	c->status = c->etag = c->result = NULL;
	c->phase = 1;
	c->params[0] = c->match.op;
	c->params[3] = c->body;
	return 0;
}

int api_set_master_keys(struct api *a, const char *path)
{
	struct cred_keyring *kr = NULL, *old;
	char err[512];

	if (!a)
		return 0;
	if (path && path[0] && !(kr = cred_keyring_load(path, err, sizeof(err)))) {
		log_event(LOG_ERROR, "admin_api_failed", LOG_FIELDS(LOG_S("error", err)),
			  "admin API: %s", err);
		return -1;
	}
	pthread_mutex_lock(&a->keys_lock);
	old = a->keys;
	a->keys = kr;
	pthread_mutex_unlock(&a->keys_lock);
	cred_keyring_free(old);
	return 0;
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

/* ---- the caller's rate ------------------------------------------------------------------ */

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* FNV-1a of the caller's identity: its key id, or its token's issuer and subject. */
static uint64_t caller_hash(const struct pl_ctx *ctx)
{
	uint64_t h = 14695981039346656037ULL;
	char id[2 * PL_END_USER_MAX + 32];
	int n = ctx->auth_kind == PL_AUTH_KEY ? snprintf(id, sizeof(id), "k%lld", (long long)ctx->key_id)
					      : snprintf(id, sizeof(id), "t%s\n%s", ctx->issuer, ctx->end_user);

	for (int i = 0; i < n && i < (int)sizeof(id); i++)
		h = (h ^ (uint8_t)id[i]) * 1099511628211ULL;
	return h ? h : 1;
}

/* 0 admitted, else the seconds until one more request would be. */
static int rate_take(struct api *a, const struct pl_ctx *ctx, int64_t now)
{
	unsigned per_min = atomic_load(&a->rate_per_min);
	double cap = per_min / 6.0 < 1 ? 1 : per_min / 6.0, per_ms = per_min / 60000.0;
	uint64_t who;
	struct rate_slot *s;

	if (!per_min)
		return 0;
	who = caller_hash(ctx);
	s = &a->rates[who % API_RATE_SLOTS];
	if (s->who != who) {
		s->who = who;
		s->tokens = cap;
	} else {
		s->tokens += (double)(now - s->last_ms) * per_ms;
		if (s->tokens > cap)
			s->tokens = cap;
	}
	s->last_ms = now;
	if (s->tokens >= 1) {
		s->tokens -= 1;
		return 0;
	}
	return (int)((1 - s->tokens) / per_ms / 1000) + 1;
}

void api_set_rate(struct api *a, unsigned rate_per_min)
{
	if (a)
		atomic_store(&a->rate_per_min, rate_per_min);
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

	int wait;

	(void)ctx;
	if (!c->ctx.out.allow) {
		identity_error(c);
		return;
	}
	if ((wait = rate_take(c->api, &c->ctx, now_ms())) > 0) {
		send_error(c->req, 429, "rate_limit_error", "rate_limit_exceeded", wait,
			   "Too many administration requests from this caller. Retry later.");
		c->answered = 1;
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
	c->params[0] = c->secret ? "credentials.prepare" : c->match.op;
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

/* Whether s[0..n) is UTF-8 without NUL (PostgreSQL's text refuses anything else). */
static int text_valid(const unsigned char *s, size_t n)
{
	for (size_t i = 0; i < n;) {
		unsigned char c = s[i];
		size_t len = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
		uint32_t cp = len == 1 ? c : len == 2 ? c & 0x1f : len == 3 ? c & 0x0f : c & 0x07;

		if (c == 0 || len == 0 || i + len > n)
			return 0;
		for (size_t k = 1; k < len; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return 0;
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
		    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += len;
	}
	return 1;
}

/* The body as text (NULL when empty); -1 when too large or not text (answered). */
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
	if (!text_valid((const unsigned char *)*out, n)) {
		free(*out);
		*out = NULL;
		send_error(req, 400, "invalid_request_error", "invalid_json",
			   0, "The request body is not valid JSON (UTF-8 text).");
		return -1;
	}
	return 0;
}

static void handle(struct evhttp_request *req, void *arg)
{
	struct api *a = arg;
	struct api_match m;
	struct call *c;
	char *body;

	if (a->conns > API_CONNS_MAX) {
		atomic_fetch_add_explicit(&conns_refused, 1, memory_order_relaxed);
		evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
		send_error(req, 503, "server_error", "admin_busy", 1,
			   "The administration API has too many open connections. Retry shortly.");
		return;
	}
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
	if (strcmp(m.op, "credentials.put") == 0 && credential_take_secret(req, c) < 0) {
		c->answered = c->released = 1;
		call_free_if_done(c);
		return;
	}
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

/* ---- connections ------------------------------------------------------------------------- */

/* libevent 2.1's evhttp reports neither a new connection nor its end. Each accepted
 * connection's bufferevent is made here (evhttp_set_bevcb) and kept with a reference of
 * ours; evhttp frees a connection with bufferevent_free, which closes the socket and
 * clears the callbacks, and the sweep (every CONN_SWEEP_MS) counts those as ended and
 * drops its reference. The count is at most that late. */
static struct bufferevent *conn_new(struct event_base *base, void *arg)
{
	struct api *a = arg;
	struct bufferevent *bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);

	if (!bev)
		abort(); /* out of memory: as xalloc */
	atomic_fetch_add_explicit(&conns_accepted, 1, memory_order_relaxed);
	if (a->conns < API_CONNS_MAX + API_CONNS_SPARE) {
		bufferevent_incref(bev);
		a->conn[a->conns++] = bev;
		atomic_store(&open_conns, a->conns);
	}
	if (a->conns >= API_CONNS_MAX + API_CONNS_SPARE && !a->paused) {
		evconnlistener_disable(a->listener);
		a->paused = 1;
	}
	return bev;
}

static void conn_sweep(evutil_socket_t fd, short what, void *arg)
{
	struct api *a = arg;
	bufferevent_event_cb errcb;
	unsigned i = 0;

	(void)fd;
	(void)what;
	while (i < a->conns) {
		bufferevent_getcb(a->conn[i], NULL, NULL, &errcb, NULL);
		if (errcb) {
			i++;
			continue;
		}
		bufferevent_decref(a->conn[i]);
		a->conn[i] = a->conn[--a->conns];
	}
	atomic_store(&open_conns, a->conns);
	if (a->paused && a->conns < API_CONNS_MAX + API_CONNS_SPARE) {
		evconnlistener_enable(a->listener);
		a->paused = 0;
	}
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
	a->listener = l;
	return 0;
}

static void api_free(struct api *a)
{
	if (a->http)
		evhttp_free(a->http);
	for (unsigned i = 0; i < a->conns; i++)
		bufferevent_decref(a->conn[i]);
	if (a->sweep_ev)
		event_free(a->sweep_ev);
	if (a->db)
		dbw_free(a->db);
	if (a->stop_ev)
		event_free(a->stop_ev);
	if (a->base)
		event_base_free(a->base);
	cred_keyring_free(a->keys);
	pthread_mutex_destroy(&a->keys_lock);
	free(a);
}

struct api *api_start(const char *addr, const char *database, unsigned rate_per_min, char *err,
		      size_t errlen)
{
	struct api *a = xcalloc(1, sizeof(*a));

	atomic_init(&a->rate_per_min, rate_per_min);
	pthread_mutex_init(&a->keys_lock, NULL);
	a->base = event_base_new();
	a->http = a->base ? evhttp_new(a->base) : NULL;
	if (!a->http || bind_addr(a, addr) < 0) {
		snprintf(err, errlen, "admin_api_listen: cannot bind %s", addr);
		goto err;
	}
	evhttp_set_max_headers_size(a->http, 16384);
	evhttp_set_max_body_size(a->http, 4 * API_BODY_MAX); /* beyond API_BODY_MAX: our 413 */
	evhttp_set_timeout(a->http, 30);
	/* Every method reaches handle(), so that any refusal is a JSON error of ours. */
	evhttp_set_allowed_methods(a->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PATCH |
						    EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_HEAD |
						    EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE | EVHTTP_REQ_CONNECT);
	evhttp_set_gencb(a->http, handle, a);
	evhttp_set_bevcb(a->http, conn_new, a);
	a->stop_ev = event_new(a->base, -1, 0, on_stop, a);
	a->sweep_ev = event_new(a->base, -1, EV_PERSIST, conn_sweep, a);
	a->db = dbw_start(a->base, database, TICK_MS, &db_ops, a);
	if (!a->stop_ev || !a->sweep_ev || !a->db ||
	    event_add(a->sweep_ev, &(struct timeval){ 0, CONN_SWEEP_MS * 1000 }) < 0) {
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
