/*
 * Fuzz target: the JSON scanner on arbitrary bytes. Besides memory safety it checks two
 * properties: a decoded model always fits its buffer, and a document that scans OK still
 * scans OK when wrapped as the value of another key (the grammar is compositional).
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

	if (t.model_len >= JSCAN_MODEL_MAX || strlen(t.model) > t.model_len)
		__builtin_trap();
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
