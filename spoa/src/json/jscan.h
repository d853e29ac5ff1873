/*
 * jscan: a strict, non-allocating JSON validator that also picks out the few top-level
 * members a routing decision needs (model, stream, max_tokens or max_output_tokens,
 * previous_response_id) and the ones the usage plan of a direct stream needs
 * (stream_options and its include_usage, the root's closing brace).
 *
 * Why the agent reads the body itself instead of trusting HAProxy's json_query: a body
 * such as {"model":"cheap","model":"premium"} is routed by json_query on the first key
 * while most upstream parsers use the last, and json_query accepts documents that are
 * not JSON at all. jscan validates the whole document (RFC 8259 grammar, depth-limited)
 * and compares keys after unescaping, so "mod\u0065l" is a duplicate "model" too.
 *
 * Pure: bytes in, struct out; never reads past len; recursion bounded by max_depth.
 */
#ifndef JR_JSCAN_H
#define JR_JSCAN_H

#include <stddef.h>
#include <stdint.h>

#define JSCAN_MODEL_MAX 128 /* decoded model names of this size or more are "too long" */
#define JSCAN_DEFAULT_DEPTH 64

enum jscan_type {
	JSCAN_ABSENT = 0,
	JSCAN_NULL,
	JSCAN_BOOL,
	JSCAN_NUMBER,
	JSCAN_STRING,
	JSCAN_ARRAY,
	JSCAN_OBJECT,
};

enum jscan_error {
	JSCAN_OK = 0,
	JSCAN_SYNTAX = -1,     /* not JSON */
	JSCAN_TOO_DEEP = -2,   /* nesting beyond max_depth */
};

struct jscan_top {
	enum jscan_type root;       /* type of the document's value */
	unsigned model_count;       /* top-level "model" members (after unescaping keys) */
	enum jscan_type model_type; /* type of the (first) model value */
	char model[JSCAN_MODEL_MAX];/* decoded string value, NUL-terminated */
	size_t model_len;
	int model_too_long;         /* decoded value does not fit model[] */
	int model_has_nul;          /* decoded value contains U+0000 */
	size_t model_offset;        /* the (first) string value as written: its opening quote */
	size_t model_raw_len;       /* ... and its length, both quotes included */
	enum jscan_type stream_type;
	int stream;                 /* when stream_type == JSCAN_BOOL */
	unsigned prev_count;        /* top-level "previous_response_id" members (Responses API) */
	enum jscan_type prev_type;  /* type of the (first) one */
	char prev[JSCAN_MODEL_MAX]; /* decoded string value, NUL-terminated */
	size_t prev_len;
	int prev_too_long;          /* decoded value does not fit prev[] */
	/* max_tokens, or the Responses API's max_output_tokens (the last one written). */
	enum jscan_type max_tokens_type;
	int64_t max_tokens;         /* when an integer that fits; else max_tokens_type is NUMBER and max_tokens = -1 */
	unsigned stream_options_count;      /* top-level "stream_options" members */
	enum jscan_type stream_options_type; /* type of the (first) one */
	size_t stream_options_offset;       /* its value as written: first byte ... */
	size_t stream_options_raw_len;      /* ... and length */
	int include_usage;          /* stream_options.include_usage is true (its last occurrence) */
	size_t root_close_offset;   /* the root object's closing '}' */
	size_t error_offset;        /* where a syntax error was found */
};

/* Scans p[0..len). Returns JSCAN_OK or a negative enum jscan_error. */
int jscan_top(const char *p, size_t len, unsigned max_depth, struct jscan_top *out);

/* One member asked of jscan_members: how many top-level members carry the key (keys
 * compared after unescaping), and the last one's value as written (what upstream
 * parsers, which keep the last duplicate, read). */
struct jscan_member {
	unsigned count;
	enum jscan_type type;
	size_t offset, len;  /* the last value's bytes, from p */
	int is_integer;      /* a number written as an integer that fits int64 ... */
	int64_t integer;     /* ... and its value */
};

/* Validates p[0..len) as one JSON object and describes its top-level members named
 * keys[0..n) (each at most 23 bytes) in out[0..n). Returns JSCAN_OK or an error. */
int jscan_members(const char *p, size_t len, unsigned max_depth, const char *const *keys, size_t n,
		  struct jscan_member *out);

/* Decodes the JSON string token p[0..len) (quotes included) into out[0..cap),
 * NUL-terminated; *n its length. -1 when not one string token or it does not fit. */
int jscan_string(const char *p, size_t len, char *out, size_t cap, size_t *n);

#endif /* JR_JSCAN_H */
