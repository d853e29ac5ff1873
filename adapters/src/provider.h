/*
 * provider: the table of provider families. Each family is one `struct provider` entry,
 * defined in its own translator file (xlate_<family>.c) and listed in provider.c: how
 * its request is built (URL, body, its own headers), where its credential goes, how its
 * non-streamed answer and its stream events become OpenAI's. Everything that differs
 * between providers is reached through this table; nothing else switches on a family.
 *
 * Layering (no file includes one above it):
 *   family, xlate_common (shared translator helpers), pct, route, upstream
 *     <- xlate_<family> (one entry each) <- provider.c (the table, dispatch)
 *     <- job, server (I/O)
 *
 * Adding a provider: a file xlate_<family>.c with its translators and its entry, and the
 * table: family.h/family.c (its index, name and catalogue kinds), this header's extern
 * line and provider.c's row. docs/adapter.md.
 */
#ifndef JR_AD_PROVIDER_H
#define JR_AD_PROVIDER_H

#include "family.h"
#include "oauth.h"
#include "upstream.h"
#include "xlate.h"

#include <jansson.h>
#include <time.h>

struct ad_route;

/* An operation's bit in struct provider.ops; PROV_ALL_OPS: every /v1 path forwarded. */
#define PROV_OP(op) (1u << (op))
#define PROV_ALL_OPS (PROV_OP(UP_CHAT) | PROV_OP(UP_EMBED) | PROV_OP(UP_OTHER))

/* How a streamed answer is framed (the job picks the decoder). */
enum prov_framing { PROV_SSE, PROV_NDJSON, PROV_EVENTSTREAM };

/* What a request builder is given. */
struct prov_call {
	const struct ad_route *route;
	const char *path;       /* the client's path ("/v1/chat/completions" ...) */
	const json_t *req;      /* the request in OpenAI's form */
	const char *base;       /* the base URL: the route's, else the entry's default */
	const char *model_enc;  /* the upstream model, percent-encoded for a URL path */
};

/* What a response translator is given besides the answer. */
struct prov_answer {
	const struct xl_meta *meta;
	enum up_op op;
	int embed_batch;        /* Gemini: the request was a batchEmbedContents */
	int embed_base64;       /* translated vectors are sent as base64 float32 (encoding_format) */
	/* A response header's value (name in lower case), NULL when absent; header may be
	 * NULL (no headers known). TGI counts the prompt tokens in a header. */
	const char *(*header)(void *arg, const char *name);
	void *header_arg;
};

/* One event of a stream that is not SSE (NDJSON line, AWS event-stream message). */
struct prov_event {
	const char *message_type, *event_type, *exception_type; /* event stream headers */
	const char *data;
	size_t len;
};

struct provider {
	/* The public base URL ("{region}" stands for the route's region, us-east-1 when none);
	 * "" when the route must give one. */
	const char *default_url;
	enum prov_framing framing; /* of a streamed answer */
	unsigned ops;              /* the operations offered: PROV_OP(UP_CHAT) | ... */
	/* Answers are OpenAI's already: passed through (non-JSON ones as they come), the
	 * stream ends with the provider's [DONE], no final chunk of our own. */
	int openai_compatible;
	/* A streamed request may be answered 200 with a JSON body (a failure, as Hunyuan's
	 * {"Response": {"Error": ...}}): such an answer goes to the response translator. */
	int json_on_failure;
	/* The credential as a header "<auth_header>: <auth_scheme><secret>"; NULL when the
	 * entry signs the request instead (sign). */
	const char *auth_header, *auth_scheme;
	/* The credential's grant (oauth.h): a secret exchanged for an access token, which
	 * then goes in "Authorization: Bearer" (tokens.h fetches it); NULL or OA_NONE: the
	 * secret is used as it is. */
	enum oa_grant (*grant)(const char *secret);
	/* The provider body for c (URL in u->url, own headers added, u->stream cleared for
	 * operations that do not stream). NULL with e set. */
	json_t *(*request)(const struct prov_call *c, struct up_request *u, struct xl_error *e);
	/* Signs the finished request (body and headers in u); NULL when none. 0, or -1 with e. */
	int (*sign)(const struct ad_route *r, const char *secret, time_t now, struct up_request *u,
		    struct xl_error *e);
	/* The provider's JSON answer -> OpenAI's (new reference), usage in u. NULL with e. */
	json_t *(*response)(json_t *resp, const struct prov_answer *a, struct xl_usage *u,
			    struct xl_error *e);
	/* PROV_SSE: one event's parsed JSON (event: the SSE event name or NULL). */
	int (*sse)(struct xl_stream *s, const char *event, json_t *j);
	/* PROV_NDJSON, PROV_EVENTSTREAM: one raw event. */
	int (*event)(struct xl_stream *s, const struct prov_event *ev);
};

extern const struct provider prov_openai, prov_azure, prov_anthropic, prov_gemini, prov_bedrock,
	prov_cohere, prov_ollama, prov_vertex_gemini, prov_vertex_anthropic, prov_hunyuan, prov_dashscope,
	prov_tgi;

/* The entry of a family; NULL when out of range. */
const struct provider *prov_get(int family);

/* Builds the provider request for one client request. path is the client's path; secret
 * the provider credential (Bedrock: "ACCESS_KEY_ID:SECRET_ACCESS_KEY[:SESSION_TOKEN]"),
 * may be NULL. 0, or -1 with e set. */
int up_build(const struct ad_route *r, const char *path, const json_t *req, const char *secret,
	     time_t now, struct up_request *out, struct xl_error *e);
/* The same with an access token the credential was exchanged for ("Authorization:
 * Bearer <token>" instead of the entry's own credential header). */
int up_build_token(const struct ad_route *r, const char *path, const json_t *req, const char *token,
		   time_t now, struct up_request *out, struct xl_error *e);

/* The grant of the route's credential: OA_NONE when the secret is used as it is. */
enum oa_grant prov_grant(const struct ad_route *r, const char *secret);

/* The non-streamed JSON answer of family p -> OpenAI's. NULL with e set. */
json_t *prov_response(enum xl_provider p, json_t *resp, const struct prov_answer *a,
		      struct xl_usage *u, struct xl_error *e);

/* Maps a provider's error answer (status and body) to the OpenAI envelope and the
 * status the client gets. */
void xl_upstream_error(enum xl_provider p, long status, const char *body, size_t len,
		       struct xl_error *e);

/* ---- streams ------------------------------------------------------------------- */

void xl_stream_init(struct xl_stream *s, enum xl_provider p, const struct xl_meta *m,
		    int include_usage, xl_chunk_fn emit, void *arg);
/* One SSE event. Returns 0, or -1 with s->err set (a provider error event or an
 * unreadable event). */
int xl_stream_sse(struct xl_stream *s, const char *event, const char *data, size_t len);
/* One NDJSON line or event-stream message, to the entry's event translator. */
int xl_stream_event(struct xl_stream *s, const struct prov_event *ev);

#endif
