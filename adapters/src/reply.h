/*
 * reply: what a job writes to its client: whole JSON answers and errors (OpenAI's
 * envelope, or Anthropic's for /v1/messages clients), the provider's raw answer, and
 * streams (chunks translated, masked, batched into one write per provider burst).
 */
#ifndef JR_AD_REPLY_H
#define JR_AD_REPLY_H

#include "job.h"

struct ad_server;
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
