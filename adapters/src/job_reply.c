/* job_reply: what a job writes to its client (job.h). */
#include "job.h"

#include "provider.h"
#include "adapter.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static struct evbuffer *new_buffer(void)
{
	struct evbuffer *b = evbuffer_new();

	if (!b)
		abort(); /* out of memory: as xalloc */
	return b;
}

static void send_reply(struct job *j, int status, const char *reason, struct evbuffer *out)
{
	j->final_status = status;
	adm_status(&j->srv->m, status);
	evhttp_send_reply(j->req, status, reason, out);
	evbuffer_free(out);
	j->reply_ended = 1;
}

void reply_json(struct job *j, int status, json_t *body)
{
	struct evbuffer *out = new_buffer();
	char *s = json_dumps(body, JSON_COMPACT);

	json_decref(body);
	evhttp_add_header(evhttp_request_get_output_headers(j->req), "Content-Type", "application/json");
	if (s)
		evbuffer_add(out, s, strlen(s));
	if (s && status == 200 && j->cache == 1) {
		j->final_status = 200;
		cache_record(j, s, strlen(s));
		cache_store(j);
	}
	free(s);
	send_reply(j, status, status < 400 ? "OK" : "Error", out);
}

/* The provider's answer as it came, with its content type (OpenAI-compatible
 * passthrough of non-JSON answers such as audio). */
static void reply_raw(struct job *j)
{
	struct evbuffer *out = new_buffer();
	char *ct = NULL;

	curl_easy_getinfo(j->easy, CURLINFO_CONTENT_TYPE, &ct);
	evhttp_add_header(evhttp_request_get_output_headers(j->req), "Content-Type",
			  ct && !strpbrk(ct, "\r\n") ? ct : "application/octet-stream");
	if (j->body)
		evbuffer_add_buffer(out, j->body);
	send_reply(j, 200, "OK", out);
}

void reply_error(struct job *j, const struct xl_error *e)
{
	if (e->retry_after > 0) {
		char v[16];
		snprintf(v, sizeof(v), "%d", e->retry_after);
		evhttp_add_header(evhttp_request_get_output_headers(j->req), "Retry-After", v);
	}
	reply_json(j, e->status, j->client == CLIENT_ANTHROPIC ? xl_error_to_msg(e) : xl_error_json(e));
}

void reply_fail(struct job *j, int status, const char *type, const char *code, const char *fmt, ...)
{
	struct xl_error e;
	va_list ap;

	xl_fail(&e, status, type, code, "%s", "");
	va_start(ap, fmt);
	vsnprintf(e.message, sizeof(e.message), fmt, ap);
	va_end(ap);
	reply_error(j, &e);
}

void reply_refuse(struct ad_server *s, struct evhttp_request *req, int status, const char *type, const char *code,
		  const char *msg)
{
	struct job tmp;

	memset(&tmp, 0, sizeof(tmp));
	tmp.srv = s;
	tmp.req = req;
	reply_fail(&tmp, status, type, code, "%s", msg);
}

/* ---- non-streamed answers ------------------------------------------------------------ */

/* A passed-through answer that is not JSON (audio/speech) goes out as it came. */
static int raw_passthrough(const struct job *j)
{
	const struct provider *p = prov_get(j->route.family);

	return j->up.op == UP_OTHER && p && p->openai_compatible && j->client == CLIENT_OPENAI;
}

/* A header of the provider's answer (the last of that name), NULL when absent. */
static const char *answer_header(void *arg, const char *name)
{
	struct job *j = arg;
	struct curl_header *h = NULL;

	if (!j->easy || curl_easy_header(j->easy, name, 0, CURLH_HEADER, -1, &h) != CURLHE_OK)
		return NULL;
	return h->value;
}

/* The provider's JSON answer as OpenAI's, masked; NULL with e set. */
static json_t *translate_answer(struct job *j, json_t *in, struct xl_error *e)
{
	struct xl_meta meta = { j->resp_id, j->route.public_model, (int64_t)time(NULL) };
	struct prov_answer a = { &meta, j->up.op, j->up.embed_batch, j->up.embed_base64, answer_header, j };
	json_t *out = prov_response((enum xl_provider)j->route.family, in, &a, &j->usage, e);

	if (!out)
		return NULL;
	j->usage_known = j->usage.have;
	if (j->masking && j->mask.responses && j->up.op == UP_CHAT)
		mask_response(&j->mask, out, &j->counts);
	return out;
}

void reply_buffered(struct job *j)
{
	size_t len = j->body ? evbuffer_get_length(j->body) : 0;
	const char *body = len ? (const char *)evbuffer_pullup(j->body, -1) : NULL;
	struct xl_error e = { 0 };
	json_t *in, *out;

	if (j->status < 200 || j->status >= 300) {
		j->srv->m.upstream_errors[j->route.family]++;
		xl_upstream_error((enum xl_provider)j->route.family, j->status, body, len, &e);
		reply_error(j, &e);
		return;
	}
	in = json_loadb(body ? body : "", len, 0, NULL);
	if (!in && raw_passthrough(j)) {
		reply_raw(j);
		return;
	}
	if (!in) {
		reply_fail(j, 502, "server_error", "bad_upstream_response", "The model provider's answer is not JSON.");
		return;
	}
	out = translate_answer(j, in, &e);
	json_decref(in);
	if (!out) {
		reply_error(j, &e);
		return;
	}
	if (j->client == CLIENT_ANTHROPIC || j->client == CLIENT_RESPONSES) {
		json_t *m = j->client == CLIENT_ANTHROPIC ? xl_openai_to_msg(out) : xl_openai_to_resp(out, &j->rs.meta);
		json_decref(out);
		out = m;
	}
	reply_json(j, 200, out);
}

/* ---- streams ------------------------------------------------------------------------- */

/* evhttp wrote a batch: a transfer paused for a slow client resumes. */
static void write_done_cb(struct evhttp_connection *evcon, void *arg)
{
	struct job *j = arg;

	(void)evcon;
	if (j->paused && !j->client_gone && j->easy) {
		j->paused = 0;
		curl_easy_pause(j->easy, CURLPAUSE_CONT);
	}
}

/* Bytes for the client of a streamed answer: collected while one batch of provider
 * bytes is translated, then handed to evhttp at once (reply_flush), so that a provider
 * burst of many small events costs one write, not three per event. */
void reply_bytes(void *arg, const char *p, size_t n)
{
	struct job *j = arg;

	if (j->client_gone || j->reply_ended || !n)
		return;
	if (!j->out)
		j->out = new_buffer();
	evbuffer_add(j->out, p, n);
	cache_record(j, p, n);
}

void reply_flush(struct job *j)
{
	if (!j->out || !evbuffer_get_length(j->out) || j->client_gone || j->reply_ended)
		return;
	evhttp_send_reply_chunk_with_cb(j->req, j->out, write_done_cb, j);
}

static void out_sse_json(struct job *j, const json_t *obj)
{
	char *s = json_dumps(obj, JSON_COMPACT);
	const char *type;

	if (!s)
		return;
	/* The Responses API names each event (OpenAI's wire format): event: <type>. */
	if (j->xs.responses && (type = json_string_value(json_object_get(obj, "type")))) {
		reply_bytes(j, "event: ", 7);
		reply_bytes(j, type, strlen(type));
		reply_bytes(j, "\n", 1);
	}
	reply_bytes(j, "data: ", 6);
	reply_bytes(j, s, strlen(s));
	reply_bytes(j, "\n\n", 2);
	free(s);
}

void reply_stream_start(struct job *j)
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

/* An OpenAI chunk on its way to the client, in the client's format. */
static void deliver_chunk(struct job *j, json_t *chunk)
{
	if (j->client == CLIENT_ANTHROPIC)
		xl_msg_stream_chunk(&j->ms, chunk);
	else if (j->client == CLIENT_RESPONSES)
		xl_resp_stream_chunk(&j->rs, chunk);
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

/* Response masking of a chunk's text (the stream masker may hold some back). */
static void mask_content(struct job *j, json_t *content)
{
	char *out = NULL;
	size_t n = 0;

	if (mask_stream_feed(&j->mstream, json_string_value(content), json_string_length(content), 0,
			     &out, &n, &j->counts) == 0)
		json_string_setn(content, out ? out : "", n);
	else
		json_string_set(content, "");
	free(out);
}

void reply_chunk(void *arg, json_t *chunk)
{
	struct job *j = arg;
	json_t *choice = json_array_get(json_object_get(chunk, "choices"), 0);
	json_t *content = json_object_get(json_object_get(choice, "delta"), "content");
	json_t *fr = json_object_get(choice, "finish_reason");

	if (j->masking && j->mask.responses) {
		if (json_is_string(content) && json_string_length(content))
			mask_content(j, content);
		if (fr && !json_is_null(fr))
			flush_mask(j);
	}
	deliver_chunk(j, chunk);
}

void reply_stream_fail(struct job *j, int status, const char *code, const char *msg)
{
	if (j->xs.failed)
		return;
	xl_fail(&j->xs.err, status, "server_error", code, "%s", msg);
	j->xs.failed = 1;
}

/* The closing events in the client's format. */
static void stream_tail(struct job *j)
{
	if (j->client == CLIENT_ANTHROPIC) {
		if (j->xs.failed)
			xl_msg_stream_error(&j->ms, &j->xs.err);
		else
			xl_msg_stream_end(&j->ms);
		return;
	}
	if (j->client == CLIENT_RESPONSES) {
		if (j->xs.failed)
			xl_resp_stream_error(&j->rs, &j->xs.err);
		else
			xl_resp_stream_end(&j->rs);
		return;
	}
	if (j->xs.failed) {
		json_t *e = xl_error_json(&j->xs.err);
		out_sse_json(j, e);
		json_decref(e);
	}
	if (!j->xs.responses) /* the Responses API ends with response.completed, no [DONE] */
		reply_bytes(j, "data: [DONE]\n\n", 14);
}

void reply_stream_end(struct job *j)
{
	if (j->reply_ended)
		return;
	if (!j->xs.failed) {
		xl_stream_end(&j->xs);
		flush_mask(j);
	}
	stream_tail(j);
	if (j->xs.failed)
		j->srv->m.stream_errors++;
	if (j->xs.usage.have) {
		j->usage = j->xs.usage;
		j->usage_known = 1;
	}
	cache_store(j);
	adm_status(&j->srv->m, 200);
	reply_flush(j);
	evhttp_send_reply_end(j->req);
	j->reply_ended = 1;
}
