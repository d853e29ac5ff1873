/*
 * Fuzz target: the JSON scanner on arbitrary bytes. Besides memory safety it checks two
 * properties: a decoded model always fits its buffer, and a document that scans OK still
 * scans OK when wrapped as the value of another key (the grammar is compositional).
 * jscan_members agrees with jscan_top on whether an object is valid, reports values
 * inside the input, and jscan_string decodes each string value it reports.
 */
#include "json/jscan.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct jscan_top t;
	char *wrapped;
	int rc = jscan_top((const char *)data, size, 32, &t);

	static const char *const keys[] = { "model", "url", "body", "id", "status" };
	struct jscan_member m[5];
	int mrc = jscan_members((const char *)data, size, 32, keys, 5, m);
	char s[64];
	size_t n;

	if (t.model_len >= JSCAN_MODEL_MAX || strlen(t.model) > t.model_len)
		__builtin_trap();
	if ((mrc == JSCAN_OK) != (rc == JSCAN_OK && t.root == JSCAN_OBJECT))
		__builtin_trap();
	for (int i = 0; mrc == JSCAN_OK && i < 5; i++) {
		if (m[i].count && (m[i].offset > size || m[i].len > size - m[i].offset || !m[i].len))
			__builtin_trap();
		if (m[i].count && m[i].type == JSCAN_STRING &&
		    jscan_string((const char *)data + m[i].offset, m[i].len, s, sizeof(s), &n) == 0 && n >= sizeof(s))
			__builtin_trap();
	}
	if (rc != JSCAN_OK || size > 4096)
		return 0;
	wrapped = malloc(size + 8);
	memcpy(wrapped, "{\"x\":", 5);
	memcpy(wrapped + 5, data, size);
	wrapped[size + 5] = '}';
	if (jscan_top(wrapped, size + 6, 33, &t) != JSCAN_OK)
		__builtin_trap();
	free(wrapped);
	return 0;
}
