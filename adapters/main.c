/*
 * jairouter-adapter: the HTTP sidecar HAProxy routes a request to when its body must
 * change on the way (a provider that does not speak OpenAI's API, a tenant whose data
 * must be masked, a streamed request whose usage must be metered). docs/adapter.md is
 * the operator's guide.
 *
 * One libevent loop serves both sides: evhttp for HAProxy's requests, libcurl's multi
 * interface (driven by the same loop through its socket and timer callbacks) for the
 * providers. Streams go through as they arrive: provider bytes -> decoder (SSE or AWS
 * event-stream) -> translator -> OpenAI chunks (or Anthropic events) -> client. When
 * the client reads slower than the provider writes, the provider transfer is paused
 * (at --max-pending bytes waiting for the client) and resumed when they have gone out.
 *
 *   jairouter-adapter [--listen 127.0.0.1:8090] [--report HOST:PORT] [--max-body BYTES]
 *                     [--max-response BYTES] [--max-pending BYTES] [--max-inflight N]
 *                     [--connect-timeout-ms MS] [--idle-timeout-s S] [--drain-timeout-s S]
 *                     [--log-level L]
 */
#include "src/eventstream.h"
#include "src/mask.h"
#include "src/route.h"
#include "src/sse.h"
#include "src/upstream.h"
#include "src/xlate.h"

#include "util/log.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define ERROR_BODY_MAX (64 * 1024) /* a provider's error answer kept for its message */

struct config {
	char listen[128];
	char report[128];
	size_t max_body, max_response, max_pending;
	long max_inflight, connect_timeout_ms, idle_timeout_s, drain_timeout_s;
};

static struct config cfg = { "127.0.0.1:8090", "", 4u << 20, 16u << 20, 256u << 10, 1024, 10000, 300, 5 };

/* ---- metrics (one thread: plain counters) ---------------------------------------- */

enum { CLIENT_OPENAI, CLIENT_ANTHROPIC, CLIENT__COUNT };
static const char *const client_names[] = { "openai", "anthropic" };

static struct {
	uint64_t requests[XL__COUNT][CLIENT__COUNT];
	uint64_t status[6]; /* by class: 1xx..5xx, [0] other */
	uint64_t upstream_errors[XL__COUNT];
	uint64_t stream_errors, client_aborts, upstream_paused;
	uint64_t masked[MD__COUNT], mask_rejects;
	uint64_t tokens_prompt, tokens_completion, usage_estimated;
	uint64_t reports_sent, reports_failed, refused_busy;
	long inflight;
} M;

/* ---- the usage report (docs/adapter.md; the agent's report listener) -------------- */

static int report_fd = -1;
static struct sockaddr_storage report_addr;
static socklen_t report_addr_len;

static int parse_hostport(const char *s, struct sockaddr_storage *ss, socklen_t *len, int passive)
{
	char host[128];
	const char *colon = strrchr(s, ':');
	struct addrinfo hints, *res = NULL;

	if (!colon || (size_t)(colon - s) >= sizeof(host))
		return -1;
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = '\0';
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_DGRAM;
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
	if (getaddrinfo(host[0] == '[' ? host + 1 : host, colon + 1, &hints, &res) != 0 || !res)
		return -1;
	if (host[0] == '[')
		host[strlen(host) - 1] = '\0';
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

/* Values go on a space-separated line: anything but printable non-space ASCII is
 * percent-encoded. */
static void report_value(char *out, size_t cap, const char *v)
{
	size_t o = 0;

	for (; *v && o + 4 < cap; v++) {
		unsigned char c = (unsigned char)*v;
		if (c > 0x20 && c < 0x7f && c != '%')
			out[o++] = (char)c;
		else
			o += (size_t)snprintf(out + o, cap - o, "%%%02X", c);
	}
	out[o] = '\0';
}

/* ---- one request ----------------------------------------------------------------- */

enum mode { MODE_NONE, MODE_BUFFER, MODE_STREAM };

struct job {
	struct job *prev, *next;    /* every job in flight (drain on SIGTERM) */
	struct evhttp_request *req;
	struct evhttp_connection *evcon;
	char id[128];
	int client;                 /* CLIENT_* */
	struct ad_route route;
	struct up_request up;
	CURL *easy;
	struct curl_slist *hdrs;
	char curl_err[CURL_ERROR_SIZE];
	long status;
	enum mode mode;
	int stream;                 /* the client asked for a stream */
	int include_usage;          /* the client asked for the usage chunk */
	char *buf;                  /* MODE_BUFFER: the whole answer (bounded) */
	size_t buf_len, buf_cap, buf_max;
	struct sse_parser sse;
	struct nd_parser nd;
	struct es_decoder es;
	struct xl_stream xs;
	struct xl_msg_stream ms;
	int masking;
	struct mask_policy mask;
	struct mask_stream mstream;
	struct mask_counts counts;
	struct evbuffer *out;        /* stream bytes not yet handed to evhttp */
	int reply_started, reply_ended;
	int paused;
	int client_gone;
	int failed_stream;          /* an error event went out */
	int64_t prompt_chars;       /* for an estimate when no usage comes */
	char resp_id[160];          /* "chatcmpl-<request id>" for answers without their own */
	struct xl_usage usage;
	int usage_known;
	int final_status;
	int reported;
};

static struct event_base *base;
static CURLM *multi;
static struct event *curl_timer;
static struct job *jobs;            /* in flight */
static int draining;                /* SIGTERM: no new connections; exit when jobs end */
static struct evhttp *http;
static struct evhttp_bound_socket *bound;
static struct event *drain_timer;

static void job_free(struct job *j);

static void count_status(int st)
{
	M.status[st >= 100 && st < 600 ? st / 100 : 0]++;
}

static void send_report(struct job *j, int aborted)
{
	char line[768], model[RT_NAME_MAX * 3], tenant[RT_NAME_MAX * 3], id[sizeof(j->id) * 3];
	int est = !j->usage_known;
	int64_t pt = j->usage_known ? j->usage.prompt : (j->prompt_chars + 3) / 4;
	int64_t ct = j->usage_known ? j->usage.completion : (j->xs.completion_chars + 3) / 4;
	int n;

	if (j->reported)
		return;
	j->reported = 1;
	M.tokens_prompt += (uint64_t)pt;
	M.tokens_completion += (uint64_t)ct;
	if (est)
		M.usage_estimated++;
	if (report_fd < 0 || !j->id[0])
		return;
	report_value(id, sizeof(id), j->id);
	report_value(model, sizeof(model), j->route.public_model);
	report_value(tenant, sizeof(tenant), j->route.tenant[0] ? j->route.tenant : "-");
	n = snprintf(line, sizeof(line), "src=adapter id=%s pt=%lld ct=%lld%s%s st=%d stream=%d model=%s tenant=%s provider=%s",
		     id, (long long)pt, (long long)ct, est ? " est=1" : "", aborted ? " abort=1" : "",
		     j->final_status, j->stream, model, tenant, j->route.provider);
	if (n > 0 && sendto(report_fd, line, (size_t)(n < (int)sizeof(line) ? n : (int)sizeof(line) - 1), 0,
			    (struct sockaddr *)&report_addr, report_addr_len) >= 0)
		M.reports_sent++;
	else
		M.reports_failed++;
}

/* A complete JSON answer with status. */
static void reply_json(struct job *j, int status, json_t *body)
{
	struct evbuffer *out = evbuffer_new();
	char *s = json_dumps(body, JSON_COMPACT);
	struct evkeyvalq *h = evhttp_request_get_output_headers(j->req);

	json_decref(body);
	evhttp_add_header(h, "Content-Type", "application/json");
	if (s)
		evbuffer_add(out, s, strlen(s));
	free(s);
	j->final_status = status;
	count_status(status);
	evhttp_send_reply(j->req, status, status < 400 ? "OK" : "Error", out);
	evbuffer_free(out);
	j->reply_ended = 1;
}

/* The provider's answer as it came, with its content type (OpenAI-compatible
 * passthrough of non-JSON answers such as audio). */
static void reply_raw(struct job *j)
{
	struct evbuffer *out = evbuffer_new();
	char *ct = NULL;

	curl_easy_getinfo(j->easy, CURLINFO_CONTENT_TYPE, &ct);
	evhttp_add_header(evhttp_request_get_output_headers(j->req), "Content-Type",
			  ct && !strpbrk(ct, "\r\n") ? ct : "application/octet-stream");
	if (j->buf_len)
		evbuffer_add(out, j->buf, j->buf_len);
	j->final_status = 200;
	count_status(200);
	evhttp_send_reply(j->req, 200, "OK", out);
	evbuffer_free(out);
	j->reply_ended = 1;
}

static void reply_error(struct job *j, const struct xl_error *e)
{
	reply_json(j, e->status, j->client == CLIENT_ANTHROPIC ? xl_error_to_msg(e) : xl_error_json(e));
}

static void write_done_cb(struct evhttp_connection *evcon, void *arg);

/* Bytes for the client of a streamed answer: collected while one batch of provider
 * bytes is translated, then handed to evhttp at once (flush_out), so that a provider
 * burst of many small events costs one write, not three per event. */
static void out_bytes(void *arg, const char *p, size_t n)
{
	struct job *j = arg;

	if (j->client_gone || j->reply_ended || !n)
		return;
	if (!j->out && !(j->out = evbuffer_new()))
		return;
	evbuffer_add(j->out, p, n);
}

static void flush_out(struct job *j)
{
	if (!j->out || !evbuffer_get_length(j->out) || j->client_gone || j->reply_ended)
		return;
	evhttp_send_reply_chunk_with_cb(j->req, j->out, write_done_cb, j);
}

static void out_sse_json(struct job *j, const json_t *obj)
{
	char *s = json_dumps(obj, JSON_COMPACT);

	if (!s)
		return;
	out_bytes(j, "data: ", 6);
	out_bytes(j, s, strlen(s));
	out_bytes(j, "\n\n", 2);
	free(s);
}

static void start_stream_reply(struct job *j)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(j->req);

	if (j->reply_started)
		return;
	j->reply_started = 1;
	evhttp_add_header(h, "Content-Type", "text/event-stream; charset=utf-8");
	evhttp_add_header(h, "Cache-Control", "no-cache");
	j->final_status = 200;
	evhttp_send_reply_start(j->req, 200, "OK");
}

/* An OpenAI chunk on its way to the client: response masking, then the client's format. */
static void deliver_chunk(struct job *j, json_t *chunk)
{
	if (j->client == CLIENT_ANTHROPIC)
		xl_msg_stream_chunk(&j->ms, chunk);
	else
		out_sse_json(j, chunk);
}

/* Held-back masked text goes out as a chunk of its own. */
static void flush_mask(struct job *j)
{
	char *out = NULL;
	size_t n = 0;
	json_t *delta, *c;

	if (!j->masking || !j->mask.responses || !j->mstream.len)
		return;
	if (mask_stream_feed(&j->mstream, "", 0, 1, &out, &n, &j->counts) == 0 && n) {
		c = xl_chunk_new(&j->xs, &delta);
		json_object_set_new(delta, "content", json_stringn(out, n));
		deliver_chunk(j, c);
		json_decref(c);
	}
	free(out);
}

static void on_chunk(void *arg, json_t *chunk)
{
	struct job *j = arg;
	json_t *choice = json_array_get(json_object_get(chunk, "choices"), 0);
	json_t *delta = json_object_get(choice, "delta"), *content = json_object_get(delta, "content");
	json_t *fr = json_object_get(choice, "finish_reason");

	if (j->masking && j->mask.responses) {
		if (json_is_string(content) && json_string_length(content)) {
			char *out = NULL;
			size_t n = 0;
			if (mask_stream_feed(&j->mstream, json_string_value(content), json_string_length(content), 0,
					     &out, &n, &j->counts) == 0)
				json_string_setn(content, out ? out : "", n);
			else
				json_string_set(content, "");
			free(out);
		}
		if (fr && !json_is_null(fr))
			flush_mask(j);
	}
	deliver_chunk(j, chunk);
}

/* The end of a streamed answer: [DONE] for OpenAI clients, message_stop for Anthropic. */
static void finish_stream(struct job *j)
{
	if (j->reply_ended)
		return;
	if (!j->xs.failed) {
		xl_stream_end(&j->xs);
		flush_mask(j);
	}
	if (j->client == CLIENT_ANTHROPIC) {
		if (j->xs.failed)
			xl_msg_stream_error(&j->ms, &j->xs.err);
		else
			xl_msg_stream_end(&j->ms);
	} else {
		if (j->xs.failed) {
			json_t *e = xl_error_json(&j->xs.err);
			out_sse_json(j, e);
			json_decref(e);
		}
		out_bytes(j, "data: [DONE]\n\n", 14);
	}
	if (j->xs.failed) {
		M.stream_errors++;
		j->failed_stream = 1;
	}
	if (j->xs.usage.have) {
		j->usage = j->xs.usage;
		j->usage_known = 1;
	}
	count_status(200);
	flush_out(j);
	evhttp_send_reply_end(j->req);
	j->reply_ended = 1;
}

static void stream_fail(struct job *j, int status, const char *code, const char *msg)
{
	if (j->xs.failed)
		return;
	xl_fail(&j->xs.err, status, "server_error", code, "%s", msg);
	j->xs.failed = 1;
}

static int on_sse(void *arg, const char *event, const char *data, size_t len)
{
	struct job *j = arg;

	return xl_stream_sse(&j->xs, event, data, len) < 0;
}

static int on_nd(void *arg, const char *line, size_t len)
{
	struct job *j = arg;

	return xl_stream_ollama(&j->xs, line, len) < 0;
}

static int on_es(void *arg, const struct es_message *m)
{
	struct job *j = arg;

	return xl_stream_bedrock(&j->xs, m->message_type, m->event_type, m->exception_type,
				 (const char *)m->payload, m->payload_len) < 0;
}

static int buf_add(struct job *j, const char *p, size_t n)
{
	if (j->buf_len + n > j->buf_max)
		return -1;
	if (j->buf_len + n + 1 > j->buf_cap) {
		size_t c = j->buf_cap ? j->buf_cap : 16384;
		char *q;
		while (c < j->buf_len + n + 1)
			c *= 2;
		if (!(q = realloc(j->buf, c)))
			return -1;
		j->buf = q;
		j->buf_cap = c;
	}
	memcpy(j->buf + j->buf_len, p, n);
	j->buf_len += n;
	j->buf[j->buf_len] = '\0';
	return 0;
}

/* Bytes waiting for the client on this connection. */
static size_t client_backlog(struct job *j)
{
	struct bufferevent *bev = evhttp_connection_get_bufferevent(j->evcon);

	return bev ? evbuffer_get_length(bufferevent_get_output(bev)) : 0;
}

static size_t on_write(char *p, size_t size, size_t nmemb, void *arg)
{
	struct job *j = arg;
	size_t n = size * nmemb;

	if (j->client_gone)
		return 0; /* aborts the transfer */
	if (j->mode == MODE_NONE) {
		curl_easy_getinfo(j->easy, CURLINFO_RESPONSE_CODE, &j->status);
		if (j->status >= 200 && j->status < 300 && j->up.stream) {
			j->mode = MODE_STREAM;
			start_stream_reply(j);
		} else {
			j->mode = MODE_BUFFER;
			j->buf_max = j->status >= 200 && j->status < 300 ? cfg.max_response : ERROR_BODY_MAX;
		}
	}
	if (j->mode == MODE_BUFFER) {
		if (buf_add(j, p, n) < 0) {
			if (j->status >= 300)
				return n; /* the rest of a long error body is not needed */
			snprintf(j->curl_err, sizeof(j->curl_err), "answer larger than %zu bytes", cfg.max_response);
			return 0;
		}
		return n;
	}
	if (client_backlog(j) > cfg.max_pending) {
		/* The client is slower than the provider: wait until its data went out
		 * (write_done_cb resumes). curl keeps these bytes and delivers them again. */
		j->paused = 1;
		M.upstream_paused++;
		return CURL_WRITEFUNC_PAUSE;
	}
	if (j->xs.failed)
		return n; /* the error event is out; drain until the end */
	if (j->up.eventstream) {
		enum es_status st = es_feed(&j->es, (const uint8_t *)p, n);
		if (st != ES_OK && !j->xs.failed)
			stream_fail(j, 502, "bad_upstream_stream",
				    "The model provider's event stream is malformed or too large.");
	} else if (j->up.ndjson) {
		if (nd_feed(&j->nd, p, n) == SSE_TOO_LONG)
			stream_fail(j, 502, "bad_upstream_stream",
				    "The model provider sent a stream line larger than the adapter accepts.");
	} else {
		enum sse_status st = sse_feed(&j->sse, p, n);
		if (st == SSE_TOO_LONG)
			stream_fail(j, 502, "bad_upstream_stream",
				    "The model provider sent a stream event larger than the adapter accepts.");
	}
	flush_out(j);
	return n;
}

static void write_done_cb(struct evhttp_connection *evcon, void *arg)
{
	struct job *j = arg;

	(void)evcon;
	if (j->paused && !j->client_gone && j->easy) {
		j->paused = 0;
		curl_easy_pause(j->easy, CURLPAUSE_CONT);
	}
}

/* The whole (non-streamed) answer is in: translate and reply. */
static void finish_buffered(struct job *j)
{
	struct xl_error e;
	struct xl_meta meta = { j->resp_id, j->route.public_model, (int64_t)time(NULL) };
	json_t *in, *out = NULL;

	memset(&e, 0, sizeof(e));
	if (j->status < 200 || j->status >= 300) {
		M.upstream_errors[j->route.family]++;
		xl_upstream_error((enum xl_provider)j->route.family, j->status, j->buf, j->buf_len, &e);
		reply_error(j, &e);
		return;
	}
	in = json_loadb(j->buf ? j->buf : "", j->buf_len, 0, NULL);
	if (!in && j->up.op == UP_OTHER && (j->route.family == XL_OPENAI || j->route.family == XL_AZURE) &&
	    j->client == CLIENT_OPENAI) {
		/* A passed-through answer that is not JSON (audio/speech): as it came. */
		reply_raw(j);
		return;
	}
	if (!in) {
		xl_fail(&e, 502, "server_error", "bad_upstream_response",
			"The model provider's answer is not JSON.");
		reply_error(j, &e);
		return;
	}
	if (j->up.op == UP_EMBED && j->route.family == XL_GEMINI) {
		out = xl_gemini_embed_response(in, j->route.public_model, j->up.embed_batch, &e);
	} else if (j->up.op == UP_EMBED && j->route.family == XL_OLLAMA) {
		out = xl_ollama_embed_response(in, j->route.public_model, &e);
	} else if (j->route.family == XL_OPENAI || j->route.family == XL_AZURE) {
		xl_openai_response(in, &meta, &j->usage);
		out = json_incref(in);
	} else {
		switch ((enum xl_provider)j->route.family) {
		case XL_ANTHROPIC: out = xl_anthropic_response(in, &meta, &j->usage, &e); break;
		case XL_GEMINI: out = xl_gemini_response(in, &meta, &j->usage, &e); break;
		case XL_BEDROCK: out = xl_bedrock_response(in, &meta, &j->usage, &e); break;
		case XL_COHERE: out = xl_cohere_response(in, &meta, &j->usage, &e); break;
		case XL_OLLAMA: out = xl_ollama_response(in, &meta, &j->usage, &e); break;
		default: break;
		}
	}
	json_decref(in);
	if (!out) {
		reply_error(j, &e);
		return;
	}
	j->usage_known = j->usage.have;
	if (j->masking && j->mask.responses && j->up.op == UP_CHAT)
		mask_response(&j->mask, out, &j->counts);
	if (j->client == CLIENT_ANTHROPIC) {
		json_t *m = xl_openai_to_msg(out);
		json_decref(out);
		out = m;
	}
	reply_json(j, 200, out);
}

static void job_done(struct job *j, CURLcode rc)
{
	if (j->client_gone) {
		send_report(j, 1);
		job_free(j);
		return;
	}
	if (rc != CURLE_OK) {
		int timeout = rc == CURLE_OPERATION_TIMEDOUT;
		M.upstream_errors[j->route.family]++;
		log_warn("request %s: upstream %s failed: %s%s%s", j->id, j->route.provider,
			 curl_easy_strerror(rc), j->curl_err[0] ? ": " : "", j->curl_err);
		if (j->reply_started) {
			stream_fail(j, timeout ? 504 : 502, timeout ? "upstream_timeout" : "upstream_error",
				    timeout ? "The model provider stopped sending the stream."
					    : "The connection to the model provider failed during the stream.");
			finish_stream(j);
		} else {
			struct xl_error e;
			if (rc == CURLE_WRITE_ERROR && j->buf_len >= j->buf_max)
				xl_fail(&e, 502, "server_error", "upstream_response_too_large",
					"The model provider's answer is larger than the adapter accepts (%zu bytes).",
					cfg.max_response);
			else if (timeout)
				xl_fail(&e, 504, "server_error", "upstream_timeout",
					"The model provider did not answer in time.");
			else
				xl_fail(&e, 502, "server_error", "upstream_unreachable",
					"The model provider could not be reached (%s).", curl_easy_strerror(rc));
			reply_error(j, &e);
		}
	} else if (j->mode == MODE_STREAM) {
		if (j->up.eventstream ? es_finish(&j->es) != ES_OK
		    : j->up.ndjson ? nd_finish(&j->nd) == SSE_TOO_LONG : sse_finish(&j->sse) == SSE_TOO_LONG)
			stream_fail(j, 502, "bad_upstream_stream", "The model provider's stream ended in the middle of an event.");
		finish_stream(j);
	} else {
		finish_buffered(j);
	}
	send_report(j, 0);
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
	M.client_aborts++;
	if (j->easy) {
		curl_multi_remove_handle(multi, j->easy);
		send_report(j, 1);
		job_free(j);
	}
	/* libevent detaches a request whose connection failed before the answer was
	 * complete and leaves it to its owner: ours to free. */
	if (!evhttp_request_get_connection(req))
		evhttp_request_free(req);
}

static void job_free(struct job *j)
{
	M.inflight--;
	if (j->prev)
		j->prev->next = j->next;
	else
		jobs = j->next;
	if (j->next)
		j->next->prev = j->prev;
	if (draining && !jobs) {
		struct timeval grace = { 0, 100000 }; /* the last bytes out first */
		event_base_loopexit(base, &grace);
	}
	if (j->evcon)
		evhttp_connection_set_closecb(j->evcon, NULL, NULL);
	if (j->easy) {
		curl_multi_remove_handle(multi, j->easy);
		curl_easy_cleanup(j->easy);
	}
	curl_slist_free_all(j->hdrs);
	up_free(&j->up);
	sse_free(&j->sse);
	nd_free(&j->nd);
	es_free(&j->es);
	for (int d = 0; d < MD__COUNT; d++)
		M.masked[d] += j->counts.found[d];
	if (j->masking) {
		mask_stream_free(&j->mstream);
		mask_policy_free(&j->mask);
	}
	if (j->out)
		evbuffer_free(j->out);
	free(j->buf);
	free(j);
}

/* ---- curl on libevent --------------------------------------------------------------- */

struct sock {
	struct event *ev;
};

static void check_multi(void)
{
	CURLMsg *msg;
	int left;

	while ((msg = curl_multi_info_read(multi, &left))) {
		struct job *j = NULL;
		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&j);
		if (j)
			job_done(j, msg->data.result);
	}
}

static void on_sock_event(evutil_socket_t fd, short what, void *arg)
{
	int running, flags = (what & EV_READ ? CURL_CSELECT_IN : 0) | (what & EV_WRITE ? CURL_CSELECT_OUT : 0);

	(void)arg;
	curl_multi_socket_action(multi, fd, flags, &running);
	check_multi();
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	int running;

	(void)fd, (void)what, (void)arg;
	curl_multi_socket_action(multi, CURL_SOCKET_TIMEOUT, 0, &running);
	check_multi();
}

static int curl_sock_cb(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
	struct sock *sk = socketp;
	short kind = (short)((what & CURL_POLL_IN ? EV_READ : 0) | (what & CURL_POLL_OUT ? EV_WRITE : 0));

	(void)e, (void)userp;
	if (what == CURL_POLL_REMOVE) {
		if (sk) {
			event_free(sk->ev);
			free(sk);
		}
		curl_multi_assign(multi, s, NULL);
		return 0;
	}
	if (!sk) {
		if (!(sk = calloc(1, sizeof(*sk))))
			return -1;
		curl_multi_assign(multi, s, sk);
	} else {
		event_free(sk->ev);
	}
	sk->ev = event_new(base, s, kind | EV_PERSIST, on_sock_event, NULL);
	event_add(sk->ev, NULL);
	return 0;
}

static int curl_timer_cb(CURLM *m, long ms, void *userp)
{
	struct timeval tv;

	(void)m, (void)userp;
	if (ms < 0) {
		evtimer_del(curl_timer);
		return 0;
	}
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	evtimer_add(curl_timer, &tv);
	return 0;
}

/* ---- requests from HAProxy ---------------------------------------------------------- */

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

static void refuse(struct evhttp_request *req, int status, const char *type, const char *code, const char *msg)
{
	struct job tmp;

	memset(&tmp, 0, sizeof(tmp));
	tmp.req = req;
	{
		struct xl_error e;
		xl_fail(&e, status, type, code, "%s", msg);
		reply_error(&tmp, &e);
	}
}

static int start_job(struct job *j, json_t *oreq, const char *path, const char *secret)
{
	struct xl_error e;
	CURL *c;

	memset(&e, 0, sizeof(e));
	if (up_build(&j->route, path, oreq, secret, time(NULL), &j->up, &e) < 0) {
		reply_error(j, &e);
		return -1;
	}
	j->stream = j->up.stream;
	xl_stream_init(&j->xs, (enum xl_provider)j->route.family,
		       &(struct xl_meta){ j->resp_id, j->route.public_model, (int64_t)time(NULL) },
		       j->include_usage, on_chunk, j);
	j->xs.strip_usage = j->up.added_usage;
	if (j->client == CLIENT_ANTHROPIC)
		xl_msg_stream_init(&j->ms, j->route.public_model, out_bytes, j);
	sse_init(&j->sse, on_sse, j);
	nd_init(&j->nd, on_nd, j);
	es_init(&j->es, on_es, j);
	if (!(c = curl_easy_init()))
		return -1;
	j->easy = c;
	for (size_t i = 0; i < j->up.nheaders; i++)
		j->hdrs = curl_slist_append(j->hdrs, j->up.headers[i]);
	j->hdrs = curl_slist_append(j->hdrs, "Expect:");
	if (j->id[0]) {
		char h[160];
		snprintf(h, sizeof(h), "X-Request-Id: %s", j->id);
		j->hdrs = curl_slist_append(j->hdrs, h);
	}
	curl_easy_setopt(c, CURLOPT_URL, j->up.url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, j->hdrs);
	curl_easy_setopt(c, CURLOPT_POST, 1L);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, j->up.body);
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)j->up.body_len);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, j);
	curl_easy_setopt(c, CURLOPT_PRIVATE, j);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, j->curl_err);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, cfg.connect_timeout_ms);
	/* A provider silent for idle_timeout_s (no byte at all) is given up. */
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, cfg.idle_timeout_s);
	curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L);
	if (curl_multi_add_handle(multi, c) != CURLM_OK)
		return -1;
	return 0;
}

static void on_request(struct evhttp_request *req, void *arg)
{
	struct evkeyvalq *h = evhttp_request_get_input_headers(req);
	const char *uri = evhttp_request_get_uri(req), *hv, *rid;
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	char path[256], err[160];
	json_t *body, *oreq;
	struct job *j;
	const char *q;

	(void)arg;
	q = strchr(uri, '?');
	snprintf(path, sizeof(path), "%.*s", (int)(q ? (size_t)(q - uri) : strlen(uri)), uri);
	if (strncmp(path, "/api/v1/", 8) == 0)
		memmove(path, path + 4, strlen(path + 4) + 1);
	if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
		refuse(req, 405, "invalid_request_error", "method_not_allowed", "The adapter takes POST requests.");
		return;
	}
	if (!(hv = evhttp_find_header(h, "x-jairouter-adapter"))) {
		refuse(req, 400, "invalid_request_error", "adapter_route_missing",
		       "This request did not come through the gateway's decision (no route header).");
		return;
	}
	if (M.inflight >= cfg.max_inflight) {
		M.refused_busy++;
		refuse(req, 503, "server_error", "adapter_busy", "The gateway's adapter is at its request limit; retry shortly.");
		return;
	}
	if (len > cfg.max_body) {
		refuse(req, 413, "invalid_request_error", "request_too_large", "The request body is larger than the adapter accepts.");
		return;
	}
	if (!(j = calloc(1, sizeof(*j)))) {
		refuse(req, 500, "server_error", "gateway_error", "Out of memory.");
		return;
	}
	M.inflight++;
	j->next = jobs;
	if (jobs)
		jobs->prev = j;
	jobs = j;
	j->req = req;
	j->evcon = evhttp_request_get_connection(req);
	rid = evhttp_find_header(h, "x-request-id");
	snprintf(j->id, sizeof(j->id), "%s", rid ? rid : "");
	snprintf(j->resp_id, sizeof(j->resp_id), "chatcmpl-%s", rid ? rid : "jairouter");
	j->client = strcmp(path, "/v1/messages") == 0 ? CLIENT_ANTHROPIC : CLIENT_OPENAI;
	if (route_parse(hv, strlen(hv), &j->route, err, sizeof(err)) < 0) {
		log_error("request %s: bad x-jairouter-adapter header: %s", j->id, err);
		refuse(req, 500, "server_error", "adapter_route_invalid", "The gateway's route for this request is invalid.");
		job_free(j);
		return;
	}
	M.requests[j->route.family][j->client]++;
	body = json_loadb((const char *)evbuffer_pullup(in, -1), len, 0, NULL);
	if (!json_is_object(body)) {
		struct xl_error e;
		json_decref(body);
		xl_fail(&e, 400, "invalid_request_error", "invalid_json", "The request body must be a JSON object.");
		reply_error(j, &e);
		job_free(j);
		return;
	}
	if (j->client == CLIENT_ANTHROPIC) {
		struct xl_error e;
		oreq = xl_msg_to_openai(body, &e);
		json_decref(body);
		snprintf(path, sizeof(path), "/v1/chat/completions"); /* what it now is */
		if (!oreq) {
			reply_error(j, &e);
			job_free(j);
			return;
		}
	} else {
		oreq = body;
	}
	j->include_usage = json_is_true(json_object_get(json_object_get(oreq, "stream_options"), "include_usage"));
	{
		char *dump = json_dumps(json_object_get(oreq, "messages"), JSON_COMPACT);
		j->prompt_chars = dump ? (int64_t)strlen(dump) : (int64_t)len;
		free(dump);
	}
	if (j->route.mask[0]) {
		struct xl_error e;
		if (mask_policy_parse(&j->mask, j->route.mask, strlen(j->route.mask), err, sizeof(err)) < 0) {
			log_error("request %s: tenant masking policy refused: %s", j->id, err);
			xl_fail(&e, 500, "server_error", "masking_policy_invalid",
				"The tenant's masking policy is invalid (%s); the request was not sent.", err);
			reply_error(j, &e);
			json_decref(oreq);
			job_free(j);
			return;
		}
		j->masking = 1;
		mask_stream_init(&j->mstream, &j->mask);
		int rc = mask_request(&j->mask, oreq, &j->counts);
		if (rc) {
			if (rc > 0) {
				M.mask_rejects++;
				xl_fail(&e, 400, "invalid_request_error", "sensitive_data_detected",
					"The request contains data the tenant's policy does not allow to leave (%s).",
					mask_detector_name(j->counts.rejected_by));
			} else {
				xl_fail(&e, 500, "server_error", "masking_failed", "The request could not be masked.");
			}
			reply_error(j, &e);
			json_decref(oreq);
			job_free(j);
			return;
		}
	}
	if (start_job(j, oreq, path, credential(h)) < 0) {
		json_decref(oreq);
		if (!j->reply_ended)
			refuse(req, 500, "server_error", "gateway_error", "The upstream transfer could not start.");
		job_free(j);
		return;
	}
	json_decref(oreq);
	evhttp_connection_set_closecb(j->evcon, on_client_close, j);
}

/* ---- /metrics and /health --------------------------------------------------------- */

static void on_metrics(struct evhttp_request *req, void *arg)
{
	struct evbuffer *b = evbuffer_new();

	(void)arg;
	evbuffer_add_printf(b, "# HELP jairouter_adapter_requests_total Requests by provider family and client API.\n"
			       "# TYPE jairouter_adapter_requests_total counter\n");
	for (int p = 0; p < XL__COUNT; p++)
		for (int c = 0; c < CLIENT__COUNT; c++)
			evbuffer_add_printf(b, "jairouter_adapter_requests_total{provider=\"%s\",client=\"%s\"} %llu\n",
					    xl_provider_name((enum xl_provider)p), client_names[c],
					    (unsigned long long)M.requests[p][c]);
	evbuffer_add_printf(b, "# HELP jairouter_adapter_responses_total Answers by status class.\n"
			       "# TYPE jairouter_adapter_responses_total counter\n");
	for (int s = 1; s < 6; s++)
		evbuffer_add_printf(b, "jairouter_adapter_responses_total{code=\"%dxx\"} %llu\n", s,
				    (unsigned long long)M.status[s]);
	evbuffer_add_printf(b, "# HELP jairouter_adapter_upstream_errors_total Provider errors and failed transfers.\n"
			       "# TYPE jairouter_adapter_upstream_errors_total counter\n");
	for (int p = 0; p < XL__COUNT; p++)
		evbuffer_add_printf(b, "jairouter_adapter_upstream_errors_total{provider=\"%s\"} %llu\n",
				    xl_provider_name((enum xl_provider)p), (unsigned long long)M.upstream_errors[p]);
	evbuffer_add_printf(b, "# HELP jairouter_adapter_masked_items_total Items masked, by detector (never the values).\n"
			       "# TYPE jairouter_adapter_masked_items_total counter\n");
	for (int d = 0; d < MD__COUNT; d++)
		evbuffer_add_printf(b, "jairouter_adapter_masked_items_total{detector=\"%s\"} %llu\n",
				    mask_detector_name((enum mask_detector)d), (unsigned long long)M.masked[d]);
	evbuffer_add_printf(b,
			    "# TYPE jairouter_adapter_masking_rejections_total counter\n"
			    "jairouter_adapter_masking_rejections_total %llu\n"
			    "# TYPE jairouter_adapter_stream_errors_total counter\n"
			    "jairouter_adapter_stream_errors_total %llu\n"
			    "# TYPE jairouter_adapter_client_aborts_total counter\n"
			    "jairouter_adapter_client_aborts_total %llu\n"
			    "# TYPE jairouter_adapter_upstream_pauses_total counter\n"
			    "jairouter_adapter_upstream_pauses_total %llu\n"
			    "# TYPE jairouter_adapter_tokens_total counter\n"
			    "jairouter_adapter_tokens_total{kind=\"prompt\"} %llu\n"
			    "jairouter_adapter_tokens_total{kind=\"completion\"} %llu\n"
			    "# TYPE jairouter_adapter_usage_estimated_total counter\n"
			    "jairouter_adapter_usage_estimated_total %llu\n"
			    "# TYPE jairouter_adapter_reports_total counter\n"
			    "jairouter_adapter_reports_total{result=\"sent\"} %llu\n"
			    "jairouter_adapter_reports_total{result=\"failed\"} %llu\n"
			    "# TYPE jairouter_adapter_refused_busy_total counter\n"
			    "jairouter_adapter_refused_busy_total %llu\n"
			    "# TYPE jairouter_adapter_inflight gauge\n"
			    "jairouter_adapter_inflight %ld\n",
			    (unsigned long long)M.mask_rejects, (unsigned long long)M.stream_errors,
			    (unsigned long long)M.client_aborts, (unsigned long long)M.upstream_paused,
			    (unsigned long long)M.tokens_prompt, (unsigned long long)M.tokens_completion,
			    (unsigned long long)M.usage_estimated, (unsigned long long)M.reports_sent,
			    (unsigned long long)M.reports_failed, (unsigned long long)M.refused_busy, M.inflight);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "text/plain; version=0.0.4");
	evhttp_send_reply(req, 200, "OK", b);
	evbuffer_free(b);
}

static void on_health(struct evhttp_request *req, void *arg)
{
	struct evbuffer *b = evbuffer_new();

	(void)arg;
	evbuffer_add_printf(b, "ok\n");
	evhttp_send_reply(req, 200, "OK", b);
	evbuffer_free(b);
}

/* ---- start-up ----------------------------------------------------------------------- */

/* The drain deadline: what is still running is ended (streams with an error event,
 * others with 503), reported, and the loop stops. */
static void on_drain_timeout(evutil_socket_t fd, short what, void *arg)
{
	(void)fd, (void)what, (void)arg;
	log_warn("drain: %ld request(s) still running at the deadline; ending them", M.inflight);
	while (jobs) {
		struct job *j = jobs;
		if (j->reply_started) {
			stream_fail(j, 503, "gateway_shutting_down", "The gateway's adapter is restarting; retry.");
			finish_stream(j);
		} else if (!j->reply_ended) {
			struct xl_error e;
			xl_fail(&e, 503, "server_error", "gateway_shutting_down",
				"The gateway's adapter is restarting; retry.");
			reply_error(j, &e);
		}
		send_report(j, 1);
		job_free(j);
	}
	/* A moment for those last bytes to be written before the loop stops. */
	{
		struct timeval grace = { 0, 300000 };
		event_base_loopexit(base, &grace);
	}
}

/* SIGTERM/SIGINT: stop accepting (HAProxy's health check then fails over), let the
 * requests in flight finish for up to --drain-timeout-s, then stop. */
static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct timeval tv = { cfg.drain_timeout_s, 0 };

	(void)what, (void)arg;
	if (draining) {
		log_info("signal %d again: stopping now", (int)sig);
		on_drain_timeout(-1, 0, NULL);
		return;
	}
	draining = 1;
	log_info("signal %d: draining %ld request(s)", (int)sig, M.inflight);
	if (bound) {
		evhttp_del_accept_socket(http, bound);
		bound = NULL;
	}
	if (!jobs) {
		event_base_loopexit(base, NULL);
		return;
	}
	drain_timer = evtimer_new(base, on_drain_timeout, NULL);
	evtimer_add(drain_timer, &tv);
}

static void usage(void)
{
	fprintf(stderr, "usage: jairouter-adapter [--listen HOST:PORT] [--report HOST:PORT] [--max-body BYTES]\n"
			"       [--max-response BYTES] [--max-pending BYTES] [--max-inflight N]\n"
			"       [--connect-timeout-ms MS] [--idle-timeout-s S] [--drain-timeout-s S]\n"
			"       [--log-level error|warn|info|debug]\n");
	exit(2);
}

static long num_arg(const char *s, long min, long max)
{
	char *end;
	long v = strtol(s, &end, 10);

	if (*end || v < min || v > max) {
		fprintf(stderr, "jairouter-adapter: %s: expected a number from %ld to %ld\n", s, min, max);
		exit(2);
	}
	return v;
}

int main(int argc, char **argv)
{
	struct event *sigs[2];
	char host[128];
	const char *colon;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!v)
			usage();
		if (strcmp(a, "--listen") == 0)
			snprintf(cfg.listen, sizeof(cfg.listen), "%s", v);
		else if (strcmp(a, "--report") == 0)
			snprintf(cfg.report, sizeof(cfg.report), "%s", v);
		else if (strcmp(a, "--max-body") == 0)
			cfg.max_body = (size_t)num_arg(v, 1024, 1L << 30);
		else if (strcmp(a, "--max-response") == 0)
			cfg.max_response = (size_t)num_arg(v, 1024, 1L << 30);
		else if (strcmp(a, "--max-pending") == 0)
			cfg.max_pending = (size_t)num_arg(v, 1024, 1L << 30);
		else if (strcmp(a, "--max-inflight") == 0)
			cfg.max_inflight = num_arg(v, 1, 1000000);
		else if (strcmp(a, "--connect-timeout-ms") == 0)
			cfg.connect_timeout_ms = num_arg(v, 1, 600000);
		else if (strcmp(a, "--idle-timeout-s") == 0)
			cfg.idle_timeout_s = num_arg(v, 1, 86400);
		else if (strcmp(a, "--drain-timeout-s") == 0)
			cfg.drain_timeout_s = num_arg(v, 0, 3600);
		else if (strcmp(a, "--log-level") == 0) {
			int l = log_level_parse(v);
			if (l < 0)
				usage();
			log_set_level((enum log_level)l);
		} else
			usage();
		i++;
	}
	colon = strrchr(cfg.listen, ':');
	if (!colon || (size_t)(colon - cfg.listen) >= sizeof(host))
		usage();
	snprintf(host, sizeof(host), "%.*s", (int)(colon - cfg.listen), cfg.listen);
	if (cfg.report[0]) {
		if (parse_hostport(cfg.report, &report_addr, &report_addr_len, 0) < 0) {
			fprintf(stderr, "jairouter-adapter: --report %s: expected a numeric HOST:PORT\n", cfg.report);
			return 2;
		}
		report_fd = socket(report_addr.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (report_fd < 0) {
			log_error("report socket: %s", strerror(errno));
			return 1;
		}
	}
	signal(SIGPIPE, SIG_IGN);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0)
		return 1;
	base = event_base_new();
	multi = curl_multi_init();
	curl_timer = evtimer_new(base, on_timer, NULL);
	curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, curl_sock_cb);
	curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, curl_timer_cb);
	/* Connections to providers are reused across requests. */
	curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, 0L);
	http = evhttp_new(base);
	evhttp_set_max_body_size(http, (ev_ssize_t)cfg.max_body + 1);
	evhttp_set_max_headers_size(http, RT_HEADER_MAX + 16384);
	evhttp_set_timeout(http, 600);
	evhttp_set_allowed_methods(http, EVHTTP_REQ_GET | EVHTTP_REQ_POST);
	evhttp_set_cb(http, "/metrics", on_metrics, NULL);
	evhttp_set_cb(http, "/health", on_health, NULL);
	evhttp_set_gencb(http, on_request, NULL);
	bound = evhttp_bind_socket_with_handle(http, host, (ev_uint16_t)atoi(colon + 1));
	if (!bound) {
		log_error("cannot listen on %s", cfg.listen);
		return 1;
	}
	{
		/* Print the port actually bound (":0" lets the kernel choose, as in tests). */
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		getsockname(evhttp_bound_socket_get_fd(bound), (struct sockaddr *)&ss, &sl);
		printf("LISTENING %d\n", ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
								   : ((struct sockaddr_in *)&ss)->sin_port));
		fflush(stdout);
	}
	log_info("jairouter-adapter listening on %s%s%s", cfg.listen, cfg.report[0] ? ", reports to " : "",
		 cfg.report);
	sigs[0] = evsignal_new(base, SIGTERM, on_signal, NULL);
	sigs[1] = evsignal_new(base, SIGINT, on_signal, NULL);
	event_add(sigs[0], NULL);
	event_add(sigs[1], NULL);
	event_base_dispatch(base);
	event_free(sigs[0]);
	event_free(sigs[1]);
	if (drain_timer)
		event_free(drain_timer);
	evhttp_free(http);
	curl_multi_cleanup(multi);
	event_free(curl_timer);
	event_base_free(base);
	curl_global_cleanup();
	if (report_fd >= 0)
		close(report_fd);
	return 0;
}
