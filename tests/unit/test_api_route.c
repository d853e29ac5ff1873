/* The administration API's route table (spoa/src/api/route.c). */
#include "api/route.h"

#include "testlib.h"

#include <string.h>

static void test_fixed_paths(void)
{
	struct api_match m;

	CHECK_EQ_INT(api_route_match("GET", "/jairouter/admin/v1/me", &m), API_ROUTE_OK);
	CHECK_EQ_STR(m.op, "me");
	CHECK_EQ_INT(m.nparams, 0);
	CHECK_EQ_INT(api_route_match("GET", "/jairouter/admin/v1/tenants", &m), API_ROUTE_OK);
	CHECK_EQ_STR(m.op, "tenants.list");
	CHECK_EQ_INT(api_route_match("POST", "/jairouter/admin/v1/tenants", &m), API_ROUTE_OK);
	CHECK_EQ_STR(m.op, "tenants.create");
	CHECK_EQ_INT(api_route_match("GET", "/jairouter/admin/v1/usage", &m), API_ROUTE_OK);
	CHECK_EQ_STR(m.op, "usage");
}

static void test_parameters(void)
{
	struct api_match m;

	CHECK_EQ_INT(api_route_match("POST", "/jairouter/admin/v1/tenants/acme%20corp/keys", &m), API_ROUTE_OK);
	CHECK_EQ_STR(m.op, "keys.create");
	CHECK_EQ_INT(m.nparams, 1);
	CHECK(strncmp(m.params[0].name, "tenant}", 7) == 0);
	CHECK_EQ_INT(m.params[0].len, 11);
	CHECK(memcmp(m.params[0].value, "acme%20corp", 11) == 0);
	CHECK_EQ_INT(api_route_match("DELETE", "/jairouter/admin/v1/keys/42", &m), API_ROUTE_OK);
	CHECK_EQ_STR(m.op, "keys.revoke");
	CHECK(m.params[0].len == 2 && memcmp(m.params[0].value, "42", 2) == 0);
}

static void test_not_found(void)
{
	struct api_match m;
	char longpath[API_PATH_MAX + 64];

	CHECK_EQ_INT(api_route_match("GET", "/jairouter/admin/v1/", &m), API_ROUTE_NOT_FOUND);
	CHECK_EQ_INT(api_route_match("GET", "/jairouter/admin/v1/me/", &m), API_ROUTE_NOT_FOUND);
	CHECK_EQ_INT(api_route_match("GET", "/jairouter/admin/v1/tenants//keys", &m), API_ROUTE_NOT_FOUND);
	CHECK_EQ_INT(api_route_match("GET", "/jairouter/admin/v1/tenants/a/keys/b", &m), API_ROUTE_NOT_FOUND);
	CHECK_EQ_INT(api_route_match("GET", "/jairouter/admin/v2/me", &m), API_ROUTE_NOT_FOUND);
	CHECK_EQ_INT(api_route_match("GET", "/v1/models", &m), API_ROUTE_NOT_FOUND);
	CHECK_EQ_INT(api_route_match("GET", NULL, &m), API_ROUTE_NOT_FOUND);
	CHECK_EQ_INT(api_route_match("GET", "/jairouter/admin/v1/mex", &m), API_ROUTE_NOT_FOUND);
	memset(longpath, 'a', sizeof(longpath) - 1);
	longpath[sizeof(longpath) - 1] = '\0';
	memcpy(longpath, "/jairouter/admin/v1/keys/", 25);
	CHECK_EQ_INT(api_route_match("DELETE", longpath, &m), API_ROUTE_NOT_FOUND);
}

static void test_parameter_bounds(void)
{
	struct api_match m;
	char path[64 + 300];

	/* 255 bytes is the longest parameter; 256 is no match. */
	snprintf(path, sizeof(path), "/jairouter/admin/v1/keys/%0255d", 7);
	CHECK_EQ_INT(api_route_match("DELETE", path, &m), API_ROUTE_OK);
	snprintf(path, sizeof(path), "/jairouter/admin/v1/keys/%0256d", 7);
	CHECK_EQ_INT(api_route_match("DELETE", path, &m), API_ROUTE_NOT_FOUND);
}

static void test_methods(void)
{
	struct api_match m;
	char allow[64];

	CHECK_EQ_INT(api_route_match("PUT", "/jairouter/admin/v1/me", &m), API_ROUTE_BAD_METHOD);
	CHECK_EQ_INT(api_route_match("DELETE", "/jairouter/admin/v1/tenants/acme/keys", &m),
		     API_ROUTE_BAD_METHOD);
	api_route_allowed("/jairouter/admin/v1/tenants/acme/keys", allow, sizeof(allow));
	CHECK_EQ_STR(allow, "GET, POST");
	api_route_allowed("/jairouter/admin/v1/nothing", allow, sizeof(allow));
	CHECK_EQ_STR(allow, "");
	api_route_allowed("/jairouter/admin/v1/tenants/acme/keys", allow, 5);
	CHECK_EQ_STR(allow, "GET");
}

int main(void)
{
	RUN(test_fixed_paths);
	RUN(test_parameters);
	RUN(test_not_found);
	RUN(test_parameter_bounds);
	RUN(test_methods);
	TEST_END();
}
