/* job: see job.h. */
#include "job.h"

#include "adapter.h"
#include "driver.h"
#include "provider.h"
#include "realtime.h"

#include "util/log.h"
#include "util/xalloc.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define ERROR_BODY_MAX (64 * 1024) /* a provider's error answer kept for its message */

static void on_client_close(struct evhttp_connection *evcon, void *arg);
static void job_done(struct drv_xfer *x, CURLcode rc);

static int64_t now_us(void)
{
	struct timespec t;

	clock_gettime(CLOCK_REALTIME, &t);
	return (int64_t)t.tv_sec * 1000000 + t.tv_nsec / 1000;
}

/* 16 hex digits, not all zero (W3C span id). */
static void new_span_id(char out[17])
{
	uint8_t b[8] = { 0 };

	while (!(b[0] | b[1] | b[2] | b[3] | b[4] | b[5] | b[6] | b[7]))
		if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b))
			abort();
	for (size_t i = 0; i < sizeof(b); i++)
		snprintf(out + 2 * i, 3, "%02x", b[i]);
}

struct job *job_new(struct ad_server *s, struct evhttp_request *req, int client)
{
	struct job *j = xcalloc(1, sizeof(*j));
	const char *rid = evhttp_find_header(evhttp_request_get_input_headers(req), "x-request-id");

	j->xfer.done = job_done;
	s->m.inflight++;
	j->srv = s;
	j->next = s->jobs;
	if (s->jobs)
		s->jobs->prev = j;
	s->jobs = j;
	j->req = req;
	j->evcon = evhttp_request_get_connection(req);
	j->client = client;
	snprintf(j->id, sizeof(j->id), "%s", rid ? rid : "");
	/* Tracing: the provider's request continues the gateway's trace (only a value of the
	 * W3C form, 55 bytes of [0-9a-f-], is passed on). */
	rid = evhttp_find_header(evhttp_request_get_input_headers(req), "traceparent");
	if (rid && strlen(rid) == 55 && strspn(rid, "0123456789abcdef-") == 55 && rid[2] == '-' &&
	    rid[35] == '-' && rid[52] == '-') {
		snprintf(j->traceparent, sizeof(j->traceparent), "%s", rid);
		new_span_id(j->call_span);
	}
	j->t_start_us = now_us();
	snprintf(j->resp_id, sizeof(j->resp_id), "chatcmpl-%s", rid ? rid : "jairouter");
	snprintf(j->rsp_id, sizeof(j->rsp_id), "resp_%s", rid ? rid : "jairouter");
	return j;
}

static void unlink_job(struct job *j)
{
	struct ad_server *s = j->srv;

	s->m.inflight--;
	if (j->prev)
		j->prev->next = j->next;
	else
		s->jobs = j->next;
	if (j->next)
		j->next->prev = j->prev;
	for (int d = 0; d < MD__COUNT; d++)
		s->m.masked[d] += j->counts.found[d];
	if (s->draining && !s->jobs && rt_active(s->rt) == 0) /* the last one: the loop stops once its bytes are out */
		event_base_loopexit(s->base, &(struct timeval){ 0, 100000 });
}

void job_free(struct job *j)
{
	unlink_job(j);
	tok_cancel(&j->tokw);
	rc_cancel(j->cache_get);
	json_decref(j->oreq);
	if (j->evcon)
		evhttp_connection_set_closecb(j->evcon, NULL, NULL);
	if (j->easy) {
		drv_remove(j->srv->drv, j->easy);
		curl_easy_cleanup(j->easy);
	}
	curl_slist_free_all(j->hdrs);
	up_free(&j->up);
	xl_resp_stream_free(&j->rs);
	json_decref(j->client_req);
	sse_free(&j->sse);
	nd_free(&j->nd);
	es_free(&j->es);
	if (j->masking) {
		mask_stream_free(&j->mstream);
		mask_policy_free(&j->mask);
	}
	if (j->out)
		evbuffer_free(j->out);
	if (j->cache_buf)
		evbuffer_free(j->cache_buf);
	if (j->body)
		evbuffer_free(j->body);
	free(j);
}

void job_report(struct job *j, int aborted)
{
	struct ad_metrics *m = &j->srv->m;
	struct rep_line l = { j->id, j->route.public_model, j->route.tenant[0] ? j->route.tenant : "-",
			      j->route.provider, 0, 0, !j->usage_known, aborted, j->final_status, j->stream, "",
			      NULL, NULL, 0, 0, 0, 0, NULL };

	if (j->reported)
		return;
	j->reported = 1;
	l.rid = j->xs.object_id;
	l.estimated = !j->usage_known || j->cache_estimated;
	l.cache = j->cache == 2 ? "hit" : NULL;
	l.prompt = j->usage_known ? j->usage.prompt : (j->prompt_chars + 3) / 4;
	l.completion = j->usage_known ? j->usage.completion : (j->xs.completion_chars + 3) / 4;
	m->tokens_prompt += (uint64_t)l.prompt;
	m->tokens_completion += (uint64_t)l.completion;
	if (l.estimated)
		m->usage_estimated++;
	if (j->srv->rep.fd < 0 || !j->id[0])
		return;
	if (j->traceparent[0] && j->t_built_us) {
		l.traceparent = j->traceparent;
		l.call_span = j->call_span;
		l.t_start_us = j->t_start_us;
		l.translate_us = j->t_built_us - j->t_start_us;
		l.first_byte_us = j->t_first_us ? j->t_first_us - j->t_start_us : -1;
		l.total_us = now_us() - j->t_start_us;
	}
	if (rep_send(&j->srv->rep, &l) == 0)
		m->reports_sent++;
	else
		m->reports_failed++;
}

/* ---- the provider's bytes ------------------------------------------------------------- */

static int on_sse(void *arg, const char *event, const char *data, size_t len)
{
	struct job *j = arg;

	return xl_stream_sse(&j->xs, event, data, len) < 0;
}

static int on_nd(void *arg, const char *line, size_t len)
{
	struct job *j = arg;

	return xl_stream_event(&j->xs, &(struct prov_event){ .data = line, .len = len }) < 0;
}

static int on_es(void *arg, const struct es_message *m)
{
	struct job *j = arg;
	struct prov_event ev = { m->message_type, m->event_type, m->exception_type,
				 (const char *)m->payload, m->payload_len };

	return xl_stream_event(&j->xs, &ev) < 0;
}

static int body_add(struct job *j, const char *p, size_t n)
{
	if (evbuffer_get_length(j->body) + n > j->body_max)
		return -1;
	if (evbuffer_add(j->body, p, n) < 0)
		abort(); /* out of memory: as xalloc */
	return 0;
}

/* Bytes waiting for the client on this connection. */
static size_t client_backlog(struct job *j)
{
	struct bufferevent *bev = evhttp_connection_get_bufferevent(j->evcon);

	return bev ? evbuffer_get_length(bufferevent_get_output(bev)) : 0;
}

/* A streamed request of a json_on_failure provider answered with a JSON body. */
static int json_failure(struct job *j)
{
	const struct provider *p = prov_get(j->route.family);
	char *ct = NULL;

	if (!p || !p->json_on_failure)
		return 0;
	curl_easy_getinfo(j->easy, CURLINFO_CONTENT_TYPE, &ct);
	return ct && strncmp(ct, "application/json", 16) == 0;
}

/* The first bytes: the status decides between a stream and a buffered answer. */
static void choose_mode(struct job *j)
{
	int ok;

	curl_easy_getinfo(j->easy, CURLINFO_RESPONSE_CODE, &j->status);
	j->t_first_us = now_us();
	ok = j->status >= 200 && j->status < 300;
	if (ok && j->up.stream && json_failure(j))
		j->up.stream = 0; /* the translator reads the failure from the JSON answer */
	if (ok && j->up.stream) {
		j->mode = MODE_STREAM;
		reply_stream_start(j);
	} else {
		j->mode = MODE_BUFFER;
		j->body_max = ok ? j->srv->cfg->max_response : ERROR_BODY_MAX;
		if (!(j->body = evbuffer_new()))
			abort();
	}
}

static size_t buffer_bytes(struct job *j, const char *p, size_t n)
{
	if (body_add(j, p, n) == 0 || j->status >= 300)
		return n; /* the rest of a long error body is not needed */
	j->too_large = 1;
	snprintf(j->curl_err, sizeof(j->curl_err), "answer larger than %zu bytes", j->srv->cfg->max_response);
	return 0;
}

/* Stream bytes through the provider's decoder (which calls the translator). */
static void decode_bytes(struct job *j, const char *p, size_t n)
{
	if (j->up.eventstream) {
		if (es_feed(&j->es, (const uint8_t *)p, n) != ES_OK)
			reply_stream_fail(j, 502, "bad_upstream_stream",
					  "The model provider's event stream is malformed or too large.");
	} else if (j->up.ndjson) {
		if (nd_feed(&j->nd, p, n) == SSE_TOO_LONG)
			reply_stream_fail(j, 502, "bad_upstream_stream",
					  "The model provider sent a stream line larger than the adapter accepts.");
	} else if (sse_feed(&j->sse, p, n) == SSE_TOO_LONG) {
		reply_stream_fail(j, 502, "bad_upstream_stream",
				  "The model provider sent a stream event larger than the adapter accepts.");
	}
}

static size_t on_write(char *p, size_t size, size_t nmemb, void *arg)
{
	struct job *j = arg;
	size_t n = size * nmemb;

	if (j->client_gone)
		return 0; /* aborts the transfer */
	if (j->mode == MODE_NONE)
		choose_mode(j);
	if (j->mode == MODE_BUFFER)
		return buffer_bytes(j, p, n);
	if (client_backlog(j) > j->srv->cfg->max_pending) {
		/* The client is slower than the provider: wait until its data went out
		 * (job_reply.c resumes). curl keeps these bytes and delivers them again. */
		j->paused = 1;
		j->srv->m.upstream_paused++;
		return CURL_WRITEFUNC_PAUSE;
	}
	if (j->xs.failed)
		return n; /* the error event is out; drain until the end */
	decode_bytes(j, p, n);
	reply_flush(j);
	return n;
}

/* ---- the transfer ------------------------------------------------------------------- */

static void init_stream(struct job *j)
{
	struct xl_meta meta = { j->resp_id, j->route.public_model, (int64_t)time(NULL) };

	j->stream = j->up.stream;
	xl_stream_init(&j->xs, (enum xl_provider)j->route.family, &meta, j->include_usage, reply_chunk, j);
	j->xs.strip_usage = j->up.added_usage;
	if (j->client == CLIENT_ANTHROPIC)
		xl_msg_stream_init(&j->ms, j->route.public_model, reply_bytes, j);
	if (j->client == CLIENT_RESPONSES)
		xl_resp_stream_init(&j->rs, &(struct xl_resp_meta){ j->rsp_id, j->route.public_model, meta.created,
								    j->client_req }, reply_bytes, j);
	sse_init(&j->sse, on_sse, j);
	nd_init(&j->nd, on_nd, j);
	es_init(&j->es, on_es, j);
}

static void add_headers(struct job *j)
{
	for (size_t i = 0; i < j->up.nheaders; i++)
		j->hdrs = curl_slist_append(j->hdrs, j->up.headers[i]);
	j->hdrs = curl_slist_append(j->hdrs, "Expect:");
	if (j->id[0]) {
		char h[160];
		snprintf(h, sizeof(h), "X-Request-Id: %s", j->id);
		j->hdrs = curl_slist_append(j->hdrs, h);
	}
	if (j->traceparent[0]) {
		/* The provider's parent: this call's span (same trace, same flags). */
		char h[96];
		snprintf(h, sizeof(h), "traceparent: 00-%.32s-%s-%.2s", j->traceparent + 3, j->call_span,
			 j->traceparent + 53);
		j->hdrs = curl_slist_append(j->hdrs, h);
	}
}

static void set_options(struct job *j, CURL *c)
{
	const struct ad_config *cfg = j->srv->cfg;
	const struct drv_post p = { j->up.url, j->hdrs, j->up.body, j->up.body_len, on_write, j,
				    &j->xfer, j->curl_err, cfg->connect_timeout_ms };

	drv_post_options(c, &p);
	/* A provider silent for idle_timeout_s (no byte at all) is given up. */
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, cfg->idle_timeout_s);
	curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L);
}

/* The transfer, with the secret as it is or the access token it was exchanged for. */
static int transfer(struct job *j, const json_t *oreq, const char *path, const char *secret, const char *token)
{
	struct xl_error e = { 0 };
	int rc = token ? up_build_token(&j->route, path, oreq, token, time(NULL), &j->up, &e)
		       : up_build(&j->route, path, oreq, secret, time(NULL), &j->up, &e);

	if (rc < 0) {
		reply_error(j, &e);
		return -1;
	}
	j->t_built_us = now_us();
	init_stream(j);
	j->xs.responses = xl_is_responses(path);
	if (!(j->easy = curl_easy_init()))
		return -1;
	add_headers(j);
	set_options(j, j->easy);
	if (drv_add(j->srv->drv, j->easy) < 0)
		return -1;
	evhttp_connection_set_closecb(j->evcon, on_client_close, j);
	return 0;
}

/* The access token came (or its fetch failed): the transfer starts, or the error goes out. */
static void on_token(void *arg, const char *token, const struct xl_error *e)
{
	struct job *j = arg;

	if (!token) {
		j->srv->m.upstream_errors[j->route.family]++;
		reply_error(j, e);
	} else if (transfer(j, j->oreq, j->path, oa_grant_is_bearer(j->grant) ? NULL : token,
			    oa_grant_is_bearer(j->grant) ? token : NULL) == 0) {
		json_decref(j->oreq);
		j->oreq = NULL;
		return;
	} else if (!j->reply_ended) {
		reply_fail(j, 500, "server_error", "gateway_error", "The upstream transfer could not start.");
	}
	job_free(j);
}

int job_start(struct job *j, const json_t *oreq, const char *path, const char *secret)
{
	enum oa_grant g = prov_grant(&j->route, secret);
	struct xl_error e = { 0 };
	const char *token = NULL;
	int rc;

	if (g == OA_NONE)
		return transfer(j, oreq, path, secret, NULL);
	j->grant = g;
	snprintf(j->path, sizeof(j->path), "%s", path); /* the server's path buffer has this size */
	j->tokw.ready = on_token;
	j->tokw.arg = j;
	rc = tok_get(j->srv->tokens, g, secret, time(NULL), &j->tokw, &token, &e);
	if (rc < 0) {
		j->srv->m.upstream_errors[j->route.family]++;
		reply_error(j, &e);
		return -1;
	}
	if (rc == 0)
		return transfer(j, oreq, path, oa_grant_is_bearer(g) ? NULL : token, oa_grant_is_bearer(g) ? token : NULL);
	/* Waiting for the token: the request is kept until it comes. */
	j->oreq = json_deep_copy(oreq);
	evhttp_connection_set_closecb(j->evcon, on_client_close, j);
	return j->oreq ? 0 : -1;
}

/* ---- the end of a job ----------------------------------------------------------------- */

/* The transfer failed (connection, timeout, size). */
static void transfer_failed(struct job *j, CURLcode rc)
{
	int timeout = rc == CURLE_OPERATION_TIMEDOUT;

	j->srv->m.upstream_errors[j->route.family]++;
	log_event(LOG_WARN, "upstream_failed",
		  LOG_FIELDS(LOG_S("request_id", j->id), LOG_S("provider", j->route.provider),
			     LOG_S("error", curl_easy_strerror(rc)), LOG_S("detail", j->curl_err)),
		  "request %s: upstream %s failed: %s%s%s", j->id, j->route.provider,
		  curl_easy_strerror(rc),
		  j->curl_err[0] ? ": " : "", j->curl_err);
	if (j->reply_started) {
		reply_stream_fail(j, timeout ? 504 : 502, timeout ? "upstream_timeout" : "upstream_error",
				  timeout ? "The model provider stopped sending the stream."
					  : "The connection to the model provider failed during the stream.");
		reply_stream_end(j);
	} else if (rc == CURLE_WRITE_ERROR && j->too_large) {
		reply_fail(j, 502, "server_error", "upstream_response_too_large",
			   "The model provider's answer is larger than the adapter accepts (%zu bytes).",
			   j->srv->cfg->max_response);
	} else if (timeout) {
		reply_fail(j, 504, "server_error", "upstream_timeout", "The model provider did not answer in time.");
	} else {
		reply_fail(j, 502, "server_error", "upstream_unreachable",
			   "The model provider could not be reached (%s).", curl_easy_strerror(rc));
	}
}

/* A stream that ended: the decoder must not hold half an event. */
static void stream_done(struct job *j)
{
	int cut = j->up.eventstream ? es_finish(&j->es) != ES_OK
		  : j->up.ndjson    ? nd_finish(&j->nd) == SSE_TOO_LONG
				    : sse_finish(&j->sse) == SSE_TOO_LONG;

	if (cut)
		reply_stream_fail(j, 502, "bad_upstream_stream",
				  "The model provider's stream ended in the middle of an event.");
	reply_stream_end(j);
}

static void job_done(struct drv_xfer *x, CURLcode rc)
{
	struct job *j = (struct job *)x;

	if (j->client_gone)
		job_report(j, 1);
	else if (rc != CURLE_OK)
		transfer_failed(j, rc);
	else if (j->mode == MODE_STREAM)
		stream_done(j);
	else
		reply_buffered(j);
	job_report(j, 0);
	job_free(j);
}

static void on_client_close(struct evhttp_connection *evcon, void *arg)
{
	struct job *j = arg;
	struct evhttp_request *req = j->req;

	(void)evcon;
	if (j->reply_ended)
		return;
	/* The client (HAProxy) went away: the provider transfer is cancelled at once. */
	j->client_gone = 1;
	j->srv->m.client_aborts++;
	if (j->easy || j->tokw.entry || j->cache_get) {
		job_report(j, 1);
		job_free(j);
	}
	/* libevent detaches a request whose connection failed before the answer was
	 * complete and leaves it to its owner: ours to free. */
	if (!evhttp_request_get_connection(req))
		evhttp_request_free(req);
}

void job_watch_client(struct job *j)
{
	evhttp_connection_set_closecb(j->evcon, on_client_close, j);
}

void job_end_all(struct ad_server *s)
{
	while (s->jobs) {
		struct job *j = s->jobs;
		if (j->reply_started) {
			reply_stream_fail(j, 503, "gateway_shutting_down", "The gateway's adapter is restarting; retry.");
			reply_stream_end(j);
		} else if (!j->reply_ended) {
			reply_fail(j, 503, "server_error", "gateway_shutting_down",
				   "The gateway's adapter is restarting; retry.");
		}
		job_report(j, 1);
		job_free(j);
	}
}
