/* Helpers for the adapter's unit tests: JSON literals and path lookups, streams fed
 * whole events, the header lines of a provider request. */
#ifndef JR_TEST_ADAPTER_HELPERS_H
#define JR_TEST_ADAPTER_HELPERS_H

#include "provider.h"
#include "testlib.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static inline json_t *J(const char *text)
{
	json_error_t err;
	json_t *j = json_loads(text, 0, &err);

	if (!j)
		fprintf(stderr, "  bad test JSON: %s: %s\n", err.text, text);
	return j;
}

/* "a.b.0.c": object keys and array indexes. */
static inline json_t *P(const json_t *j, const char *path)
{
	char buf[256], *tok, *save = NULL;

	snprintf(buf, sizeof(buf), "%s", path);
	for (tok = strtok_r(buf, ".", &save); tok && j; tok = strtok_r(NULL, ".", &save))
		j = json_is_array(j) ? json_array_get(j, (size_t)atoi(tok)) : json_object_get(j, tok);
	return (json_t *)j;
}

static inline const char *PS(const json_t *j, const char *path)
{
	const char *s = json_string_value(P(j, path));
	return s ? s : "(absent)";
}

static inline long long PI(const json_t *j, const char *path)
{
	const json_t *v = P(j, path);
	return json_is_integer(v) ? (long long)json_integer_value(v) : -999;
}

/* Equality with a JSON literal. */
static inline int PEQ(const json_t *j, const char *path, const char *literal)
{
	json_t *want = json_loads(literal, JSON_DECODE_ANY, NULL);
	int eq = json_equal(P(j, path), want);

	if (!eq) {
		char *got = json_dumps(P(j, path), JSON_COMPACT | JSON_ENCODE_ANY);
		fprintf(stderr, "  %s = %s, want %s\n", path, got ? got : "(absent)", literal);
		free(got);
	}
	json_decref(want);
	return eq;
}

/* An xl_chunk_fn that keeps each chunk in the array arg. */
static inline void collect_chunk(void *arg, json_t *chunk)
{
	json_array_append(arg, chunk);
}

/* The chunks (a new array) of provider fam's stream, with usage, fed the SSE events ev1
 * and ev2 (both named event, which may be NULL) and ended. */
static inline json_t *stream_of_two(enum xl_provider fam, const struct xl_meta *m, const char *event, const char *ev1,
				    const char *ev2)
{
	json_t *chunks = json_array();
	struct xl_stream s;

	xl_stream_init(&s, fam, m, 1, collect_chunk, chunks);
	CHECK_EQ_INT(xl_stream_sse(&s, event, ev1, strlen(ev1)), 0);
	CHECK_EQ_INT(xl_stream_sse(&s, event, ev2, strlen(ev2)), 0);
	xl_stream_end(&s);
	return chunks;
}

/* The chunks of a stream that said "Hel" then "lo", stopped, and counted 2 completion
 * tokens: the role chunk, two deltas, the finish and the usage chunk. */
static inline void check_hello_chunks(const json_t *chunks)
{
	CHECK_EQ_STR(PS(chunks, "1.choices.0.delta.content"), "Hel");
	CHECK_EQ_STR(PS(chunks, "2.choices.0.delta.content"), "lo");
	CHECK_EQ_STR(PS(chunks, "3.choices.0.finish_reason"), "stop");
	CHECK_EQ_INT(PI(chunks, "4.usage.completion_tokens"), 2);
}

/* A translation of a client's JSON for a provider (a request, a message list), given
 * its model or API version. */
typedef json_t *(*xl_build_fn)(const json_t *in, const char *arg, struct xl_error *e);

/* fn refuses the JSON literal: NULL, with status (unless 0) and code (unless NULL) in its
 * error. */
static inline void check_refused(xl_build_fn fn, const char *arg, const char *literal, int status, const char *code)
{
	json_t *in = J(literal), *out;
	struct xl_error e;

	out = fn(in, arg, &e);
	CHECK(out == NULL);
	json_decref(out);
	if (status)
		CHECK_EQ_INT(e.status, status);
	if (code)
		CHECK_EQ_STR(e.code, code);
	json_decref(in);
}

/* How many of u's header lines are line ("Name: value"), or with prefix set start with it. */
static inline int header_count(const struct up_request *u, const char *line, int prefix)
{
	int n = 0;

	for (size_t i = 0; i < u->nheaders; i++)
		n += prefix ? strncmp(u->headers[i], line, strlen(line)) == 0 : strcmp(u->headers[i], line) == 0;
	return n;
}

#endif
