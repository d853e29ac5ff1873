/*
 * xlate: the translators between OpenAI's chat API (the gateway's pivot format) and
 * each provider family. Pure functions: JSON in, JSON out (jansson), and stream
 * translators that turn a provider's stream events into OpenAI chunk objects through a
 * callback. Nothing here does I/O; the job (job.c)
 * drives them through the provider table (provider.h).
 *
 *   client (OpenAI or Anthropic style) --xl_msg_to_openai--> OpenAI request
 *        --xl_<provider>_request--> provider request --HTTP--> provider response
 *        --xl_<provider>_response / stream--> OpenAI response or chunks
 *        --xl_openai_to_msg / xl_msg_stream--> Anthropic-style client
 */
#ifndef JR_AD_XLATE_H
#define JR_AD_XLATE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* An error to answer with (OpenAI envelope: type, code, message) and its status. */
struct xl_error {
	int status;
	const char *type;
	const char *code;
	char message[256];
	int retry_after; /* seconds for a Retry-After header; 0: none (xl_fail clears it) */
};

void xl_fail(struct xl_error *e, int status, const char *type, const char *code,
	     const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* {"error":{"message","type","param":null,"code"}} */
json_t *xl_error_json(const struct xl_error *e);

/* Usage as the provider reported it. */
struct xl_usage {
	int64_t prompt, completion;
	int have; /* the provider reported usage (else the counts are estimates) */
};

json_t *xl_usage_json(const struct xl_usage *u);

/* ---- requests: OpenAI chat request -> provider body ----------------------------- */

/* Each returns a new body, or NULL with e set (400 for what the provider cannot take). */
json_t *xl_anthropic_request(const json_t *req, const char *model, struct xl_error *e);
json_t *xl_gemini_request(const json_t *req, struct xl_error *e);
json_t *xl_bedrock_request(const json_t *req, struct xl_error *e);
json_t *xl_cohere_request(const json_t *req, const char *model, struct xl_error *e);
json_t *xl_ollama_request(const json_t *req, const char *model, struct xl_error *e);
json_t *xl_ollama_embed_request(const json_t *req, const char *model, struct xl_error *e);
json_t *xl_ollama_embed_response(const json_t *resp, const char *model, struct xl_error *e);
json_t *xl_hunyuan_request(const json_t *req, const char *model, struct xl_error *e);
json_t *xl_dashscope_request(const json_t *req, const char *model, struct xl_error *e);
/* TGI's native API (POST /generate): the messages rendered by the chat template the
 * endpoint's api-version names ("native" = ChatML, "native-chatml", "native-llama3",
 * "native-zephyr"; another is a 500 adapter_misconfigured). */
json_t *xl_tgi_request(const json_t *req, const char *api_version, struct xl_error *e);
/* The prompt alone (new string), or NULL with e set. */
char *xl_tgi_prompt(const json_t *messages, const char *api_version, struct xl_error *e);
/* OpenAI-compatible: a copy with the upstream model; include_usage added when meter
 * and streaming (*added says whether the client had not asked for it itself). */
json_t *xl_openai_request(const json_t *req, const char *model, int meter, int *added,
			  struct xl_error *e);
/* Embeddings. */
json_t *xl_cohere_embed_request(const json_t *req, const char *model, struct xl_error *e);
json_t *xl_cohere_embed_response(const json_t *resp, const char *model, struct xl_usage *u,
				 struct xl_error *e);
/* Bedrock InvokeModel: Amazon Titan text embeddings (one text) or Cohere Embed on
 * Bedrock (texts), chosen by the model id ("cohere." ...). */
json_t *xl_bedrock_embed_request(const json_t *req, const char *model, struct xl_error *e);
json_t *xl_bedrock_embed_response(const json_t *resp, const char *model, struct xl_usage *u,
				  struct xl_error *e);
json_t *xl_gemini_embed_request(const json_t *req, const char *model, int *batch,
				struct xl_error *e);
json_t *xl_gemini_embed_response(const json_t *resp, const char *model, int batch,
				 struct xl_error *e);

/* ---- non-streamed responses: provider -> OpenAI chat.completion ---------------- */

/* id/model/created fill the OpenAI envelope; usage gets the counts. */
struct xl_meta {
	const char *id;     /* response id when the provider gives none */
	const char *model;  /* the public model name */
	int64_t created;
};

json_t *xl_anthropic_response(const json_t *resp, const struct xl_meta *m, struct xl_usage *u,
			      struct xl_error *e);
json_t *xl_gemini_response(const json_t *resp, const struct xl_meta *m, struct xl_usage *u,
			   struct xl_error *e);
json_t *xl_bedrock_response(const json_t *resp, const struct xl_meta *m, struct xl_usage *u,
			    struct xl_error *e);
json_t *xl_cohere_response(const json_t *resp, const struct xl_meta *m, struct xl_usage *u,
			   struct xl_error *e);
json_t *xl_ollama_response(const json_t *resp, const struct xl_meta *m, struct xl_usage *u,
			   struct xl_error *e);
json_t *xl_hunyuan_response(const json_t *resp, const struct xl_meta *m, struct xl_usage *u,
			    struct xl_error *e);
json_t *xl_dashscope_response(const json_t *resp, const struct xl_meta *m, struct xl_usage *u,
			      struct xl_error *e);
/* TGI's answer headers with its counts (NULL when absent). */
struct xl_tgi_headers {
	const char *prompt_tokens;    /* x-prompt-tokens */
	const char *generated_tokens; /* x-generated-tokens */
};
json_t *xl_tgi_response(const json_t *resp, const struct xl_meta *m, const struct xl_tgi_headers *h,
			struct xl_usage *u, struct xl_error *e);
/* Whether path is the Responses API's create (POST /v1/responses): passed through to
 * OpenAI-compatible servers, never given stream_options. */
int xl_is_responses(const char *path);

/* OpenAI-compatible: reads usage (chat's or the Responses API's), sets the public model
 * name. */
void xl_openai_response(json_t *resp, const struct xl_meta *m, struct xl_usage *u);

/* ---- streams: provider events -> OpenAI chunks --------------------------------- */

#define XL_BLOCKS_MAX 128

typedef void (*xl_chunk_fn)(void *arg, json_t *chunk); /* chunk is borrowed */

struct xl_stream {
	int provider;           /* enum xl_provider (provider.h): the table entry */
	int passthrough;        /* OpenAI-compatible: chunks pass through, no final chunk of ours */
	char id[96];
	char model[128];
	int64_t created;
	int include_usage;      /* the client asked for the usage chunk */
	int strip_usage;        /* OpenAI-compatible: we added include_usage; drop its chunk */
	struct xl_usage usage;
	char finish[24];
	int started;            /* the role chunk went out */
	int finished;           /* the final chunk went out */
	int16_t tool_of_block[XL_BLOCKS_MAX]; /* content block -> tool call index, -1 text */
	int ntools;
	int64_t completion_chars; /* for an estimate when no usage comes */
	xl_chunk_fn emit;
	void *arg;
	int failed;
	struct xl_error err;
	/* The Responses API (POST /v1/responses) passed through: its typed events keep
	 * their names, the usage comes in response.completed, and the stored response's id
	 * (from response.created) is reported for its owner. */
	int responses;
	char object_id[128];
};

/* One line of Ollama's NDJSON stream. */
int xl_stream_ollama(struct xl_stream *s, const char *line, size_t len);
/* One Bedrock event-stream message. */
int xl_stream_bedrock(struct xl_stream *s, const char *message_type, const char *event_type,
		      const char *exception_type, const char *payload, size_t len);
/* The provider's stream ended: the final chunk (finish_reason) and, when the client
 * asked, the usage chunk. Idempotent. */
void xl_stream_end(struct xl_stream *s);

/* A chunk skeleton {"id","object","created","model","choices":[{"index":0,"delta":{},
 * "finish_reason":null}]}; *delta points at its delta object. */
json_t *xl_chunk_new(const struct xl_stream *s, json_t **delta);

/* ---- the Anthropic-style client (POST /v1/messages) ----------------------------- */

/* Anthropic Messages request -> OpenAI chat request (stream_options.include_usage is
 * set when streaming, so the final usage is known). */
json_t *xl_msg_to_openai(const json_t *req, struct xl_error *e);
/* OpenAI chat.completion -> Anthropic message. */
json_t *xl_openai_to_msg(const json_t *resp);
/* OpenAI error envelope -> Anthropic error body. */
json_t *xl_error_to_msg(const struct xl_error *e);

/* OpenAI chunks -> Anthropic SSE events, written through out(arg, bytes, len). */
typedef void (*xl_bytes_fn)(void *arg, const char *p, size_t n);

struct xl_msg_stream {
	char id[96];
	char model[128];
	int started, block_open, block_is_tool, nblocks;
	int tool_block[XL_BLOCKS_MAX]; /* OpenAI tool call index -> block index + 1 */
	char stop_reason[24];
	struct xl_usage usage;
	int ended;
	xl_bytes_fn out;
	void *arg;
};

void xl_msg_stream_init(struct xl_msg_stream *m, const char *model, xl_bytes_fn out, void *arg);
void xl_msg_stream_chunk(struct xl_msg_stream *m, const json_t *chunk);
void xl_msg_stream_end(struct xl_msg_stream *m);
/* An error in the middle of a stream: Anthropic's "event: error". */
void xl_msg_stream_error(struct xl_msg_stream *m, const struct xl_error *e);

/* ---- the Responses API client (POST /v1/responses, translated) ------------------- */

/* The answer's identity and the client's request, whose settings the answer echoes. */
struct xl_resp_meta {
	const char *id;      /* "resp_..." (the output items' ids derive from it) */
	const char *model;   /* the public model name */
	int64_t created;
	const json_t *req;   /* the client's Responses request (borrowed) */
};

/* Responses request -> OpenAI chat request (stream_options.include_usage set when
 * streaming). NULL with e set: 400 for what the provider cannot take (xlate_responses.c
 * lists what survives). */
json_t *xl_resp_to_openai(const json_t *req, struct xl_error *e);
/* OpenAI chat.completion -> response object (not stored: "store": false). */
json_t *xl_openai_to_resp(const json_t *chat, const struct xl_resp_meta *m);

#define XL_RESP_ITEMS_MAX 32

struct xl_resp_item {
	int is_call;
	char id[200], call_id[128], name[128];
	char *text; /* the text or the arguments so far (allocated) */
	size_t len;
};

/* OpenAI chunks -> the Responses API's typed events, written through out(arg, ...). */
struct xl_resp_stream {
	struct xl_resp_meta meta;
	int64_t seq;
	int started, ended, open, nitems; /* open: the item receiving deltas, -1 none */
	struct xl_resp_item items[XL_RESP_ITEMS_MAX];
	char finish[24];
	struct xl_usage usage;
	xl_bytes_fn out;
	void *arg;
};

void xl_resp_stream_init(struct xl_resp_stream *s, const struct xl_resp_meta *m, xl_bytes_fn out, void *arg);
void xl_resp_stream_chunk(struct xl_resp_stream *s, const json_t *chunk);
/* The closing events and response.completed (or .incomplete) with the usage. */
void xl_resp_stream_end(struct xl_resp_stream *s);
/* An error in the middle of a stream: the Responses API's "error" event. */
void xl_resp_stream_error(struct xl_resp_stream *s, const struct xl_error *e);
void xl_resp_stream_free(struct xl_resp_stream *s);

/* Maps between finish reasons. */
const char *xl_finish_from_anthropic(const char *stop_reason);
const char *xl_finish_to_anthropic(const char *finish_reason);

#endif
