/*
 * job_cache: a job and the response cache (adcache.h, docs/cache.md). The agent decides
 * which tenant and model pairs are cached and says so in the route (c, cmax, cs); here
 * the request itself decides whether it may be: an OpenAI-style chat, completions or
 * embeddings request whose body is a JSON object, without `Cache-Control: no-store` or
 * `no-cache` (HAProxy hands the client's Cache-Control over as
 * x-jairouter-cache-control: model servers never get it) and without `"store": false`. A hit is answered at once (a stream as the
 * same SSE bytes); a miss records what the client gets and stores it when the answer
 * ends well: status 200, not cut short, not larger than cmax. With a shared tier in
 * Redis (--cache-redis), a miss in memory asks Redis before going on, and a stored
 * answer is written to both.
 */
#include "job.h"

#include "adapter.h"
#include "adcache.h"

#include "util/log.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define CACHE_HEADER "x-jairouter-cache"

static int64_t mono_us(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000000 + t.tv_nsec / 1000;
}

static int cacheable_path(const char *path)
{
	return strcmp(path, "/v1/chat/completions") == 0 || strcmp(path, "/v1/completions") == 0 ||
	       strcmp(path, "/v1/embeddings") == 0;
}

/* Whether a Cache-Control value holds the directive no-store or no-cache. */
static int no_store(const char *v)
{
	const char *p = v;

	while (v && *p) {
		size_t n;
		p += strspn(p, " \t,");
		n = strcspn(p, " \t,=");
		if ((n == 8 && strncasecmp(p, "no-store", 8) == 0) || (n == 8 && strncasecmp(p, "no-cache", 8) == 0))
			return 1;
		p += strcspn(p, ",");
	}
	return 0;
}

static void set_header(struct job *j, const char *v)
{
	evhttp_add_header(evhttp_request_get_output_headers(j->req), CACHE_HEADER, v);
}

/* Whether the body says "store": false (nothing is to be kept). */
static int store_false(const char *canon, size_t len)
{
	json_t *v = json_loadb(canon, len, 0, NULL);
	int no = json_is_false(json_object_get(v, "store"));

	json_decref(v);
	return no;
}

/* The request's key, or -1 when it may not be cached. */
static int request_key(struct job *j, const char *path)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(j->req);
	size_t len = evbuffer_get_length(in), clen = 0;
	char *canon;

	if (j->client != CLIENT_OPENAI || !cacheable_path(path) ||
	    no_store(evhttp_find_header(evhttp_request_get_input_headers(j->req), "x-jairouter-cache-control")))
		return -1;
	if (!(canon = ac_canonical((const char *)evbuffer_pullup(in, -1), len, &clen)))
		return -1;
	if (store_false(canon, clen)) {
		free(canon);
		return -1;
	}
	ac_key(j->route.cache_scope, j->route.public_model, path, canon, clen, j->cache_key);
	free(canon);
	return 0;
}

/* The stored answer, as the first one went out. */
static void replay(struct job *j, const struct ac_entry *e)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(j->req);
	struct evbuffer *b = evbuffer_new();

	if (!b)
		abort(); /* out of memory: as xalloc */
	evbuffer_add(b, e->body, e->len);
	set_header(j, "hit");
	j->stream = e->stream;
	j->usage.prompt = e->prompt;
	j->usage.completion = e->completion;
	j->usage.have = 1;
	j->usage_known = 1;
	j->cache_estimated = e->usage_estimated;
	j->final_status = 200;
	adm_status(&j->srv->m, 200);
	/* A stream goes out as its SSE events in one piece with a Content-Length: headers
	 * and events in one write, not the chunked framing's three. */
	if (e->stream) {
		evhttp_add_header(h, "Content-Type", "text/event-stream; charset=utf-8");
		evhttp_add_header(h, "Cache-Control", "no-cache");
	} else {
		evhttp_add_header(h, "Content-Type", "application/json");
	}
	evhttp_send_reply(j->req, 200, "OK", b);
	evbuffer_free(b);
	j->reply_ended = 1;
}

/* The answer from Redis: a hit goes out and ends the job; a miss goes on. */
static void on_shared(void *arg, const struct ac_entry *e)
{
	struct job *j = arg;

	j->cache_get = NULL;
	if (e) {
		j->cache = 2;
		replay(j, e);
		job_report(j, 0);
		job_free(j);
		return;
	}
	set_header(j, "miss");
	j->cache_resume(j);
}

int cache_lookup(struct job *j, const char *path)
{
	const struct ac_entry *e;

	if (!j->srv->cache || j->route.cache_ttl_s <= 0 || j->route.cache_max <= 0 || !j->route.cache_scope[0])
		return 0;
	if (request_key(j, path) < 0) {
		set_header(j, "bypass");
		j->srv->m.cache_bypass++;
		return 0;
	}
	if ((e = ac_get(j->srv->cache, j->cache_key, mono_us()))) {
		j->cache = 2;
		replay(j, e);
		return 1;
	}
	j->cache = 1;
	if (j->srv->rcache && j->cache_resume &&
	    (j->cache_get = rc_lookup(j->srv->rcache, j->cache_key, on_shared, j))) {
		job_watch_client(j);
		return 2;
	}
	set_header(j, "miss");
	return 0;
}

void cache_record(struct job *j, const char *p, size_t n)
{
	if (j->cache != 1)
		return;
	if (!j->cache_buf && !(j->cache_buf = evbuffer_new()))
		abort();
	if (evbuffer_get_length(j->cache_buf) + n > (size_t)j->route.cache_max) {
		/* too large to keep: recording stops, nothing is stored */
		ac_note_too_large(j->srv->cache);
		evbuffer_free(j->cache_buf);
		j->cache_buf = NULL;
		j->cache = 0;
		return;
	}
	evbuffer_add(j->cache_buf, p, n);
}

void cache_store(struct job *j)
{
	size_t len;

	if (j->cache != 1 || !j->cache_buf)
		return;
	len = evbuffer_get_length(j->cache_buf);
	if (j->final_status == 200 && !j->client_gone && !j->xs.failed) {
		struct ac_entry e = { .stream = j->stream, .body = (char *)evbuffer_pullup(j->cache_buf, -1),
				      .len = len, .usage_estimated = !j->usage_known };
		e.prompt = j->usage_known ? j->usage.prompt : (j->prompt_chars + 3) / 4;
		e.completion = j->usage_known ? j->usage.completion : (j->xs.completion_chars + 3) / 4;
		if (ac_put(j->srv->cache, j->cache_key, e.body, len, e.stream, e.prompt, e.completion,
			   e.usage_estimated, (int64_t)j->route.cache_ttl_s * 1000000, (size_t)j->route.cache_max,
			   mono_us()) == 0 && j->srv->rcache)
			rc_store(j->srv->rcache, j->cache_key, &e, (int64_t)j->route.cache_ttl_s * 1000);
	}
	evbuffer_free(j->cache_buf);
	j->cache_buf = NULL;
	j->cache = 0;
}
