/*
 * api/route: the administration API's operations, by method and path (pure: no I/O,
 * no allocation). A path is what follows API_PREFIX; "{name}" segments are parameters.
 * docs/admin-api.md and docs/admin-api.openapi.yaml list the same table.
 */
#ifndef JR_API_ROUTE_H
#define JR_API_ROUTE_H

#include <stddef.h>

#define API_PREFIX "/jairouter/admin/v1/"
#define API_PARAMS_MAX 2
#define API_PATH_MAX 1024

struct api_param {
	const char *name;  /* the pattern's name, e.g. "tenant" */
	const char *value; /* points into the matched path (still percent-encoded) */
	size_t len;
};

struct api_match {
	const char *op; /* the operation's name, passed to jairouter.admin_api() */
	int nparams;
	struct api_param params[API_PARAMS_MAX];
};

enum api_route_result {
	API_ROUTE_OK = 0,
	API_ROUTE_NOT_FOUND = -1,  /* no operation has this path: 404 */
	API_ROUTE_BAD_METHOD = -2, /* the path exists with other methods: 405 */
};

/* Matches method ("GET", "POST", "PATCH", "DELETE") and path (from the request line,
 * without the query string). A parameter is 1 to 255 bytes without '/'; a path longer
 * than API_PATH_MAX never matches. */
enum api_route_result api_route_match(const char *method, const char *path, struct api_match *m);

/* The methods a path allows, e.g. "GET, POST" (for Allow on a 405); "" when none. */
void api_route_allowed(const char *path, char *buf, size_t cap);

#endif /* JR_API_ROUTE_H */
