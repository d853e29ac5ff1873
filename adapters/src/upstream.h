/*
 * upstream: the provider request for one client request (URL, headers, body) and the
 * helpers the provider entries build it with (provider.h builds it: up_build). Pure;
 * the credential is only copied into headers, never logged, and wiped when freed.
 */
#ifndef JR_AD_UPSTREAM_H
#define JR_AD_UPSTREAM_H

#include <stddef.h>

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
	int embed_base64;              /* the client asked for base64 vectors (encoding_format) */
};

/* The operation of a client path ("/v1/chat/completions" ...). */
enum up_op up_op_of(const char *path);

/* Appends a "Name: value" header. 0, or -1 when there are too many. */
int up_add_header(struct up_request *u, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* u->url = base (without its trailing '/') followed by the formatted rest. 0, or -1 when
 * it does not fit. */
int up_url(struct up_request *u, const char *base, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

void up_free(struct up_request *u);

#endif
