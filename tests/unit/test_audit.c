/*
 * test_audit: the security audit's sampling. A flood of one kind of event yields at most
 * AUDIT_SAMPLE_FULL rows per window plus one audit_summary row that counts the rest per
 * reason; another kind has its own allowance; the counters add up.
 */
#include "audit/audit.h"

#include "testlib.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static size_t count(const char *hay, const char *needle)
{
	size_t n = 0;

	for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

static void flood(const char *event, const char *reason, int n)
{
	struct audit_event e;

	memset(&e, 0, sizeof(e));
	e.event = event;
	e.reason = reason;
	e.family = 4;
	e.addr[0] = 192;
	e.addr[1] = 0;
	e.addr[2] = 2;
	e.addr[3] = 7;
	e.key_prefix = "jr-00000000";
	e.status = 401;
	for (int i = 0; i < n; i++)
		audit_emit(&e);
}

static void test_flood_is_sampled(void)
{
	struct audit_stats st;
	char *json = NULL;
	size_t rows;

	flood("auth_failure", "invalid_key", 5000);
	flood("auth_failure", "token_expired", 1000);
	flood("lockout", "too_many_failures", 3);
	rows = audit_take_batch(&json, 100000);
	/* The allowance of each kind, then nothing until the window ends. */
	CHECK_EQ_INT(rows, AUDIT_SAMPLE_FULL + 3);
	CHECK_EQ_INT(count(json, "\"event\":\"auth_failure\""), AUDIT_SAMPLE_FULL);
	free(json);
	audit_sample_flush((int64_t)time(NULL) + AUDIT_SAMPLE_S, 0);
	rows = audit_take_batch(&json, 100000);
	CHECK_EQ_INT(rows, 1); /* one summary: lockouts stayed within their allowance */
	CHECK(strstr(json, "\"event\":\"audit_summary\"") != NULL);
	CHECK(strstr(json, "auth_failure x5980 in") != NULL);
	CHECK(strstr(json, "invalid_key 4980") != NULL);
	CHECK(strstr(json, "token_expired 1000") != NULL);
	CHECK(strstr(json, "192.0.2.7") != NULL);
	free(json);
	audit_stats(&st);
	CHECK_EQ_INT(st.events, 6003);
	CHECK_EQ_INT(st.sampled_out, 5980);
	/* A new window: the allowance is back. */
	flood("auth_failure", "invalid_key", 2);
	rows = audit_take_batch(&json, 100000);
	CHECK_EQ_INT(rows, 2);
	free(json);
}

int main(void)
{
	RUN(test_flood_is_sampled);
	audit_stop();
	TEST_END();
}
