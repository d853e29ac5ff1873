/*
 * Fuzz target: the administration API's route table (spoa/src/api/route.c) on arbitrary
 * paths, the first byte choosing the method. Properties besides memory safety: a match
 * names an operation and its parameters lie inside the path, each 1 to 255 bytes without
 * '/'; a path that matches no method allows none, one that exists with other methods
 * allows at least one.
 */
#include "api/route.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const METHODS[] = { "GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS" };

static void check_match(const struct api_match *m, const char *path, size_t len)
{
	if (!m->op || m->nparams < 0 || m->nparams > API_PARAMS_MAX)
		abort();
	for (int i = 0; i < m->nparams; i++) {
		const struct api_param *p = &m->params[i];
		if (p->value < path || p->value + p->len > path + len || p->len == 0 || p->len > 255 ||
		    memchr(p->value, '/', p->len))
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct api_match m;
	char allow[128], *path;
	enum api_route_result r;

	if (size < 1)
		return 0;
	path = malloc(size);
	memcpy(path, data + 1, size - 1);
	path[size - 1] = '\0';
	r = api_route_match(METHODS[data[0] % 6], path, &m);
	api_route_allowed(path, allow, sizeof(allow));
	if (r == API_ROUTE_OK)
		check_match(&m, path, strlen(path));
	if (r == API_ROUTE_NOT_FOUND && allow[0])
		abort();
	if (r == API_ROUTE_BAD_METHOD && !allow[0])
		abort();
	free(path);
	return 0;
}
