#include "api/route.h"

#include <stdio.h>
#include <string.h>

#define PARAM_MAX 255

struct route {
	const char *method;
	const char *pattern; /* after API_PREFIX */
	const char *op;
};

static const struct route routes[] = {
	{ "GET", "me", "me" },
	{ "GET", "tenants", "tenants.list" },
	{ "POST", "tenants", "tenants.create" },
	{ "GET", "tenants/{tenant}", "tenants.get" },
	{ "PATCH", "tenants/{tenant}", "tenants.patch" },
	{ "GET", "tenants/{tenant}/keys", "keys.list" },
	{ "POST", "tenants/{tenant}/keys", "keys.create" },
	{ "DELETE", "keys/{id}", "keys.revoke" },
	{ "POST", "keys/{id}/roles", "keys.roles.add" },
	{ "DELETE", "keys/{id}/roles/{role}", "keys.roles.remove" },
	{ "GET", "models", "models.list" },
	{ "GET", "models/{model}/routing", "routing.get" },
	{ "PUT", "models/{model}/routing", "routing.put" },
	{ "GET", "limits", "limits.list" },
	{ "POST", "limits", "limits.create" },
	{ "DELETE", "limits/{id}", "limits.delete" },
	{ "GET", "roles", "roles.list" },
	{ "POST", "roles", "roles.create" },
	{ "DELETE", "roles/{id}", "roles.delete" },
	{ "GET", "issuers", "issuers.list" },
	{ "POST", "issuers", "issuers.create" },
	{ "GET", "issuers/{issuer}", "issuers.get" },
	{ "PATCH", "issuers/{issuer}", "issuers.patch" },
	{ "DELETE", "issuers/{issuer}", "issuers.delete" },
	{ "POST", "issuers/{issuer}/keys", "issuers.keys.add" },
	{ "DELETE", "issuers/{issuer}/keys/{kid}", "issuers.keys.delete" },
	{ "GET", "usage", "usage" },
	{ "GET", "audit", "audit" },
};

/* Matches one segment of the pattern at *pat against the path at *p; advances both. */
static int segment(const char **pat, const char **p, struct api_match *m)
{
	const char *pe = strchr(*pat, '/'), *e = strchr(*p, '/');
	size_t plen = pe ? (size_t)(pe - *pat) : strlen(*pat);
	size_t len = e ? (size_t)(e - *p) : strlen(*p);

	if ((*pat)[0] == '{') {
		if (len == 0 || len > PARAM_MAX || m->nparams == API_PARAMS_MAX)
			return 0;
		m->params[m->nparams].name = *pat + 1;
		m->params[m->nparams].value = *p;
		m->params[m->nparams].len = len;
		m->nparams++;
	} else if (plen != len || memcmp(*pat, *p, len) != 0) {
		return 0;
	}
	*pat += plen;
	*p += len;
	if (**pat != **p) /* one ends where the other goes on */
		return 0;
	if (**pat == '/') {
		(*pat)++;
		(*p)++;
	}
	return 1;
}

static int path_matches(const char *pattern, const char *path, struct api_match *m)
{
	m->nparams = 0;
	while (*pattern || *path) {
		if (!segment(&pattern, &path, m))
			return 0;
	}
	return 1;
}

/* The path after the prefix, or NULL. */
static const char *relative(const char *path)
{
	size_t n = strlen(API_PREFIX);

	if (!path || strlen(path) > API_PATH_MAX || strncmp(path, API_PREFIX, n) != 0 || !path[n])
		return NULL;
	return path + n;
}

enum api_route_result api_route_match(const char *method, const char *path, struct api_match *m)
{
	const char *rel = relative(path);
	int seen = 0;

	memset(m, 0, sizeof(*m));
	for (size_t i = 0; rel && i < sizeof(routes) / sizeof(routes[0]); i++) {
		struct api_match try;
		if (!path_matches(routes[i].pattern, rel, &try))
			continue;
		seen = 1;
		if (strcmp(routes[i].method, method) == 0) {
			*m = try;
			m->op = routes[i].op;
			return API_ROUTE_OK;
		}
	}
	return seen ? API_ROUTE_BAD_METHOD : API_ROUTE_NOT_FOUND;
}

void api_route_allowed(const char *path, char *buf, size_t cap)
{
	const char *rel = relative(path);
	size_t used = 0;

	buf[0] = '\0';
	for (size_t i = 0; rel && i < sizeof(routes) / sizeof(routes[0]); i++) {
		struct api_match try;
		int n;
		if (!path_matches(routes[i].pattern, rel, &try))
			continue;
		n = snprintf(buf + used, cap - used, "%s%s", used ? ", " : "", routes[i].method);
		if (n < 0 || (size_t)n >= cap - used) {
			buf[used] = '\0'; /* whole method names only */
			return;
		}
		used += (size_t)n;
	}
}
