/* Helpers shared by the translators and the provider table (not part of the xlate API). */
#ifndef JR_AD_XLATE_INT_H
#define JR_AD_XLATE_INT_H

#include "xlate.h"

/* The fields of a Vertex AI entry (struct provider) other than its answer's: the URL
 * from the route, chat only, SSE streams, a service account exchanged for a Bearer
 * token; build: the entry's request builder. */
#define XL_VERTEX_PROVIDER(build)                                                        \
	.default_url = "", .framing = PROV_SSE, .ops = PROV_OP(UP_CHAT),                 \
	.auth_header = "Authorization", .auth_scheme = "Bearer ", .grant = oa_google_grant, \
	.request = (build)

/* A message's content as plain text: a string, or its text parts joined. New string. */
char *xl_text_of(const json_t *content);
/* Splits "data:<mime>;base64,<data>". 0 with *mime (bounded) and *b64 set, else -1. */
int xl_data_url(const char *url, char *mime, size_t mcap, const char **b64);
/* Copies src[skey] into dst[dkey] when present and not null. */
void xl_copy(json_t *dst, const char *dkey, const json_t *src, const char *skey);
/* The max tokens of an OpenAI request (max_completion_tokens, then max_tokens); -1. */
json_int_t xl_max_tokens(const json_t *req);
/* stop: a string or an array of strings -> a new array (NULL when absent). */
json_t *xl_stop_array(const json_t *req);
/* Emits the role chunk once, before any content. */
void xl_stream_start(struct xl_stream *s);
/* Clears s for a new stream (xl_stream_init sets the provider on top). */
void xl_stream_reset(struct xl_stream *s, const struct xl_meta *m, int include_usage,
		     xl_chunk_fn emit, void *arg);
/* One stream event's JSON (new reference), or NULL with s->err set and s->failed. */
json_t *xl_event_json(struct xl_stream *s, const char *data, size_t len);
/* Emits a text delta. */
void xl_emit_text(struct xl_stream *s, const char *text, size_t len);
/* Emits a tool call start (id, name) or arguments (either may be NULL). */
void xl_emit_tool(struct xl_stream *s, int index, const char *id, const char *name,
		  const char *args);
/* The tool calls' argument strings, parsed as JSON objects for providers that want
 * objects; invalid JSON -> NULL. */
json_t *xl_parse_args(const json_t *arguments);
/* A tool call's function arguments parsed as a JSON object (new reference), or NULL
 * with a 400 naming call k. */
json_t *xl_call_args(const json_t *fn, size_t k, struct xl_error *e);
/* Appends item (reference stolen) to the array `key` of the last message of list when
 * that message has this role, else appends a new {"role": role, key: [item]}: providers
 * that require alternating roles (Anthropic, Bedrock "content", Gemini "parts"). */
void xl_push_grouped(json_t *list, const char *role, const char *key, json_t *item);
/* How a provider spells the blocks of a message (xl_push_content). */
struct xl_blocks {
	const char *key;                      /* the message's block array: "content", "parts" */
	json_t *(*text)(const json_t *text);  /* a text block (new reference) */
	/* An image block for an image_url part; url is NULL when the part has none. NULL after
	 * xl_fail() when the provider cannot take it. */
	json_t *(*image)(const char *url, struct xl_error *e);
};
/* A user or assistant content (a string, null, or an array of text and image_url parts)
 * appended to list as the provider's blocks under role (xl_push_grouped). Other part
 * types and other content shapes are refused with a 400. Returns 0 or -1. */
int xl_push_content(json_t *list, const char *role, const json_t *content,
		    const struct xl_blocks *b, struct xl_error *e);

/* The walk over an OpenAI chat conversation that every message-translating provider
 * shares: shape checks and errors here, the provider's own blocks in the callbacks. Each
 * callback returns 0, or -1 after xl_fail(). */
struct xl_walk {
	/* A system or developer message, as text. */
	int (*system)(void *arg, const char *text, struct xl_error *e);
	/* A user message's content (a string or parts). */
	int (*user)(void *arg, const json_t *content, struct xl_error *e);
	/* An assistant message's content (may be null); its tool calls follow, one each. */
	int (*assistant)(void *arg, const json_t *content, struct xl_error *e);
	/* One tool call of an assistant message: its function object and its arguments
	 * parsed as a JSON object (reference stolen). */
	int (*tool_call)(void *arg, const json_t *call, const json_t *fn, json_t *args,
			 struct xl_error *e);
	/* A tool message: the message and its content as text. */
	int (*tool_result)(void *arg, const json_t *msg, const char *text, struct xl_error *e);
};
int xl_walk_messages(const json_t *messages, const struct xl_walk *w, void *arg,
		     struct xl_error *e);
/* The turns and system blocks a provider that groups blocks by role builds from the
 * conversation (Anthropic, Bedrock, Gemini). Its walk takes xl_turns_system, _user and
 * _assistant with arg a struct xl_turns, and its own tool call and result callbacks. */
struct xl_turns {
	json_t *msgs;                    /* the turns: the provider's messages or contents */
	json_t *sys;                     /* a b->text block for each system message */
	const struct xl_blocks *b;
	const char *assistant;           /* the assistant's role: "assistant", "model" */
	const json_t *messages;          /* the request's messages, for callbacks that look back */
};
int xl_turns_system(void *arg, const char *text, struct xl_error *e);
int xl_turns_user(void *arg, const json_t *content, struct xl_error *e);
int xl_turns_assistant(void *arg, const json_t *content, struct xl_error *e);

/* Appends t to the growing string *text of *len bytes (allocated as needed; aborts on
 * out-of-memory). */
void xl_append_text(char **text, size_t *len, const char *t);
/* Appends an OpenAI tool call {"id","type":"function","function":{"name","arguments"}}
 * to calls; arguments: input as compact JSON text ("{}" when it has none). */
void xl_append_call(json_t *calls, const json_t *id, const json_t *name, const json_t *input);
/* {"role":"assistant","content": text or null, "tool_calls": calls when not empty};
 * calls' reference is stolen. */
json_t *xl_assistant_message(const char *text, json_t *calls);
/* A JSON value as compact text, "{}" when absent (new string, may be NULL). */
char *xl_dump_object(const json_t *v);

/* An OpenAI embeddings request's input (a string or an array of strings) as a new array
 * of strings, at most max of them; NULL with a 400 (token arrays, empty or too many). */
json_t *xl_embed_texts(const json_t *req, size_t max, struct xl_error *e);
/* OpenAI's embeddings list: vectors (an array of number arrays, reference stolen), the
 * public model, the prompt tokens (usage). NULL with a 502 when a vector is not an array. */
json_t *xl_embed_list(json_t *vectors, const char *model, int64_t prompt_tokens, struct xl_error *e);

/* An embeddings list's vectors as OpenAI's base64 form (little-endian float32), in place. */
void xl_embed_base64(json_t *list);

/* For the provider entries' request builders: a 500 "adapter_misconfigured" for a URL
 * that does not fit (body, when given, is released). Returns NULL. */
json_t *xl_url_failed(json_t *body, struct xl_error *e);

#endif
