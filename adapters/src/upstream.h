/*
 * upstream: the provider request for one client request (URL, headers, body), built
 * from the route and the OpenAI-form request. Pure apart from the clock it is given
 * (Bedrock's signature); the credential is only copied into headers, never logged.
 */
#ifndef JR_AD_UPSTREAM_H
#define JR_AD_UPSTREAM_H

#include <jansson.h>
#include <time.h>

#include "route.h"
#include "xlate.h"

#define UP_HEADERS_MAX 12
#define UP_URL_MAX 2048

enum up_op { UP_CHAT, UP_EMBED, UP_OTHER };

struct up_request {
	enum up_op op;
	char url[UP_URL_MAX];
	char *headers[UP_HEADERS_MAX]; /* "Name: value", owned */
	size_t nheaders;
	char *body;                    /* owned, NUL-terminated */
	size_t body_len;
	int stream;                    /* a streamed answer is expected */
	int eventstream;               /* ... in the AWS event-stream framing */
	int ndjson;                    /* ... as NDJSON lines (Ollama's native API) */
	int added_usage;               /* we asked for the usage chunk, the client did not */
	int embed_batch;               /* Gemini: batchEmbedContents */
};

/* The operation of a client path ("/v1/chat/completions" ...). */
enum up_op up_op_of(const char *path);

/* Builds the request. path is the client's path (for OpenAI-compatible servers every
 * /v1/... path is forwarded under the base URL). secret: the provider credential
 * (Bedrock: "ACCESS_KEY_ID:SECRET_ACCESS_KEY[:SESSION_TOKEN]"), may be NULL.
 * 0, or -1 with e set. */
int up_build(const struct ad_route *r, const char *path, const json_t *req, const char *secret,
	     time_t now, struct up_request *out, struct xl_error *e);
void up_free(struct up_request *u);

#endif
