/* Helpers for the adapter's unit tests: JSON literals and path lookups. */
#ifndef JR_TEST_ADAPTER_HELPERS_H
#define JR_TEST_ADAPTER_HELPERS_H

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

#endif
