/*
 * job: one request from HAProxy and its upstream transfer, from the moment it is
 * accepted until it is reported and freed. job.c owns the lifecycle and the transfer
 * (curl easy handle, the provider's bytes into a buffer or a stream decoder);
 * job_reply.c everything written to the client (JSON answers and errors, translated and
 * masked streams batched into one write per provider burst).
 *
 *   job_new -> job_start [-> an access token (tokens.h), waited for when not cached]
 *     -> up_build, curl -> provider bytes (job.c: on_write)
 *     -> reply_* -> the driver: transfer ended -> job_report, job_free
 */
#ifndef JR_AD_JOB_H
#define JR_AD_JOB_H

#include "eventstream.h"
#include "mask.h"
#include "rcache.h"
#include "route.h"
#include "driver.h"
#include "sse.h"
#include "tokens.h"
#include "upstream.h"
#include "xlate.h"

#include <curl/curl.h>

struct ad_server;
struct evhttp_request;
struct evhttp_connection;
struct evbuffer;

enum job_mode { MODE_NONE, MODE_BUFFER, MODE_STREAM };

struct job {
	struct drv_xfer xfer;       /* first: the driver's callback (CURLOPT_PRIVATE) */
	struct job *prev, *next;    /* every job in flight (drain on SIGTERM) */
	struct ad_server *srv;
	struct evhttp_request *req;
	struct evhttp_connection *evcon;
	char id[128];
	/* Tracing (docs/observability.md): the gateway's trace context as HAProxy sent it
	 * ("" when absent or malformed), the span of the provider call (its id goes upstream),
	 * and the wall clock in microseconds at the request, after the translation, at the
	 * provider's first byte. The report line carries them to the agent, which exports. */
	char traceparent[64];
	char call_span[17];
	int64_t t_start_us, t_built_us, t_first_us;
	int client;                 /* enum ad_client */
	struct ad_route route;
	struct up_request up;
	struct tok_waiter tokw;     /* waiting for the provider's access token */
	int grant;                  /* enum oa_grant of the credential */
	json_t *oreq;               /* the request, kept while waiting for the token */
	char path[256];             /* its path, idem */
	CURL *easy;
	struct curl_slist *hdrs;
	char curl_err[CURL_ERROR_SIZE];
	long status;
	enum job_mode mode;
	int stream;                 /* the client asked for a stream */
	int include_usage;          /* the client asked for the usage chunk */
	struct evbuffer *body;      /* MODE_BUFFER: the whole answer (at most body_max bytes) */
	size_t body_max;
	int too_large;              /* the answer outgrew body_max: the transfer was ended */
	struct sse_parser sse;
	struct nd_parser nd;
	struct es_decoder es;
	struct xl_stream xs;
	struct xl_msg_stream ms;
	struct xl_resp_stream rs;   /* CLIENT_RESPONSES */
	json_t *client_req;         /* CLIENT_RESPONSES: the client's request (echoed) */
	char rsp_id[160];           /* CLIENT_RESPONSES: "resp_<request id>" */
	int masking;
	struct mask_policy mask;
	struct mask_stream mstream;
	struct mask_counts counts;
	struct evbuffer *out;        /* stream bytes not yet handed to evhttp */
	int reply_started, reply_ended;
	int paused;
	int client_gone;
	int64_t prompt_chars;       /* for an estimate when no usage comes */
	char resp_id[160];          /* "chatcmpl-<request id>" for answers without their own */
	struct xl_usage usage;
	int usage_known;
	int final_status;
	int reported;
	/* The response cache (docs/cache.md): 1 miss (the answer is recorded and stored
	 * when it ends well), 2 hit (answered from the cache); the key, and the bytes the
	 * client got so far (dropped when they outgrow the route's cmax). */
	int cache;
	uint8_t cache_key[32];
	struct evbuffer *cache_buf;
	int cache_estimated;        /* a hit whose stored usage was an estimate */
	struct rc_get *cache_get;   /* a lookup in Redis under way (rcache.h) */
	void (*cache_resume)(struct job *j); /* what follows a miss in Redis (server.c) */
};

/* A new job for req, linked into the server's list. */
struct job *job_new(struct ad_server *s, struct evhttp_request *req, int client);
/* Unlinks, releases everything and frees j. */
void job_free(struct job *j);

/* Builds the provider request for oreq (the OpenAI-form request; path: what the client
 * asked, as OpenAI's path) and starts the transfer; when the credential is exchanged for
 * an access token not yet cached, the transfer starts once the token is in (the job
 * waits: j->tokw). 0, or -1 (an error answer may have gone out: j->reply_ended). */
int job_start(struct job *j, const json_t *oreq, const char *path, const char *secret);

/* The drain deadline: every job still running is ended, reported and freed. */
void job_end_all(struct ad_server *s);

/* Frees the job when its client goes away while it waits (for a token, Redis). */
void job_watch_client(struct job *j);

/* The usage line (once per job; aborted: the client or the adapter gave up). */
void job_report(struct job *j, int aborted);

/* ---- the response cache (job_cache.c) ------------------------------------------- */

/* Before the transfer: when the route caches this tenant and model and the request may
 * be cached, a stored answer goes out (1: answered, the job only reports) or the job
 * records its answer (0; so does every request that is not answered from the cache).
 * 2: not in memory, asked of Redis: the job waits; a hit is answered, reported and the
 * job freed; a miss calls j->cache_resume (set it before), which goes on. */
int cache_lookup(struct job *j, const char *path);
/* Bytes the client gets, recorded on a miss. */
void cache_record(struct job *j, const char *p, size_t n);
/* The answer ended: stored when it ended well; the recording is released either way. */
void cache_store(struct job *j);

/* ---- what a job writes to its client (job_reply.c) ------------------------------- */

struct evhttp_request;

/* A complete JSON answer (body: reference stolen). */
void reply_json(struct job *j, int status, json_t *body);
/* An error answer in the client's format. */
void reply_error(struct job *j, const struct xl_error *e);
/* xl_fail() and reply_error() in one. */
void reply_fail(struct job *j, int status, const char *type, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
/* An OpenAI-style error for a request that has no job. */
void reply_refuse(struct ad_server *s, struct evhttp_request *req, int status, const char *type, const char *code,
		  const char *msg);

/* The whole (non-streamed) provider answer is in: translate and reply. */
void reply_buffered(struct job *j);

/* Streams: the headers (once), an OpenAI chunk from the translator (xl_chunk_fn), the
 * bytes gathered so far out to the client, and the end ([DONE] or message_stop, or the
 * error event when the stream failed). */
void reply_stream_start(struct job *j);
void reply_chunk(void *job, json_t *chunk);
void reply_bytes(void *job, const char *p, size_t n);
void reply_flush(struct job *j);
void reply_stream_end(struct job *j);
/* Marks the stream failed (the first reason wins); reply_stream_end sends it. */
void reply_stream_fail(struct job *j, int status, const char *code, const char *msg);

#endif
