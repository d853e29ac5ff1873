/*
 * The agent's two PostgreSQL writers against a real, migrated database (tests/pg/run.sh
 * passes its connection string): usage/ aggregates usage per hour, tenant, key, model and
 * end user and writes it in batches (usage_daily and usage_hourly), folds end users beyond
 * the tenant's daily cap or the buffer's share into "(other)", writes what is left when it stops, and reads this month's
 * usage back for the local quotas (the seed); audit/ writes security-audit events in
 * batches. Results are read back with libpq and compared by count.
 *
 *   test_writers CONNINFO
 */
#include "audit/audit.h"
#include "limit/limiter.h"
#include "usage/usage.h"
#include "util/log.h"

#include "../unit/testlib.h"

#include <event2/event.h>
#include <libpq-fe.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *conninfo;
static struct event_base *base;
static int seeded_rows = -1;
static int64_t seeded_tokens;

/* One integer from a query (-1 on error or no row). */
static long long sql_int(const char *q)
{
	PGconn *c = PQconnectdb(conninfo);
	PGresult *r = PQexec(c, q);
	long long v = -1;

	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 && !PQgetisnull(r, 0, 0))
		v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	else if (PQresultStatus(r) != PGRES_TUPLES_OK)
		fprintf(stderr, "  query failed: %s", PQerrorMessage(c));
	PQclear(r);
	PQfinish(c);
	return v;
}

/* The requests of tenant t's usage_hourly row for one end user (an SQL literal). */
static long long user_requests(int t, const char *user_literal)
{
	char q[256];

	snprintf(q, sizeof(q), "SELECT requests FROM jairouter.usage_hourly WHERE tenant_id = %d AND end_user = %s", t,
		 user_literal);
	return sql_int(q);
}

static int64_t today(void)
{
	time_t t = time(NULL);

	return (int64_t)(t - t % 86400);
}

static void rec(int64_t tenant, int64_t pt, int64_t ct, int64_t cost, int estimated)
{
	struct usage_rec u = { today(), tenant, 10 * tenant, 100, pt, ct, cost, estimated, 0, 0, NULL, 0 };

	usage_add(&u);
}

static void rec_user(int64_t tenant, const char *user, size_t len, int failed)
{
	struct usage_rec u = { today(), tenant, 10 * tenant, 100, 5, 1, 2, 0, failed, 0, user, len };

	usage_add(&u);
}

/* Runs the loop until pred() holds, at most `turns` wake-ups of the flush timers. */
static int run_until(int (*pred)(void), int turns)
{
	for (int i = 0; i < turns && !pred(); i++)
		event_base_loop(base, EVLOOP_ONCE);
	return pred();
}

static int usage_written_2(void)
{
	struct usage_stats s;

	usage_stats(&s);
	return s.rows_written >= 2;
}

/* Two requests of tenant 1 and one of tenant 2 become two rows (per day, tenant, key,
 * model), written by the periodic flush. */
static void test_usage_batches(void)
{
	usage_start(base, conninfo, 20, 1000);
	rec(1, 10, 5, 7, 0);
	rec(1, 30, 15, 3, 0);
	rec(2, 1, 1, 0, 1);
	CHECK(run_until(usage_written_2, 500));
	CHECK_EQ_INT(sql_int("SELECT requests FROM jairouter.usage_daily WHERE tenant_id = 1"), 2);
	CHECK_EQ_INT(sql_int("SELECT prompt_tokens + completion_tokens FROM jairouter.usage_daily "
			     "WHERE tenant_id = 1"), 60);
	CHECK_EQ_INT(sql_int("SELECT (cost * 1000000)::bigint FROM jairouter.usage_daily WHERE tenant_id = 1"), 10);
	CHECK_EQ_INT(sql_int("SELECT estimated_requests FROM jairouter.usage_daily WHERE tenant_id = 2"), 1);
	usage_stop();
}

/* Usage added just before the stop is written by the stop itself (no flush ran). */
static void test_usage_stop_writes_the_rest(void)
{
	usage_start(base, conninfo, 600000, 1000);
	rec(3, 7, 0, 0, 0);
	usage_stop();
	CHECK_EQ_INT(sql_int("SELECT requests FROM jairouter.usage_daily WHERE tenant_id = 3"), 1);
}

static void exec_sql(const char *q)
{
	PGconn *c = PQconnectdb(conninfo);
	PGresult *r = PQexec(c, q);

	CHECK_EQ_INT(PQresultStatus(r), PGRES_COMMAND_OK);
	PQclear(r);
	PQfinish(c);
}

/* End users reach usage_hourly as given, quotes and backslashes included; control
 * characters and invalid UTF-8 become '?', UTF-8 is kept; failures are counted. */
static void test_usage_end_users(void)
{
	usage_start(base, conninfo, 600000, 1000);
	rec_user(4, "alice@example.com", 17, 0);
	rec_user(4, "alice@example.com", 17, 1);
	rec_user(4, "o\"b\\x", 5, 0);
	rec_user(4, "a\tb\xff\xc3\xa9", 6, 0);
	rec_user(4, NULL, 0, 0);
	usage_stop();
	CHECK_EQ_INT(sql_int("SELECT requests FROM jairouter.usage_hourly WHERE tenant_id = 4 "
			     "AND end_user = 'alice@example.com' AND hour = date_trunc('day', now())"), 2);
	CHECK_EQ_INT(sql_int("SELECT failed_requests FROM jairouter.usage_hourly WHERE tenant_id = 4 "
			     "AND end_user = 'alice@example.com'"), 1);
	CHECK_EQ_INT(user_requests(4, "'o\"b\\x'"), 1);
	CHECK_EQ_INT(user_requests(4, "U&'a?b?\\00e9'"), 1);
	CHECK_EQ_INT(user_requests(4, "''"), 1);
	CHECK_EQ_INT(sql_int("SELECT requests FROM jairouter.usage_daily WHERE tenant_id = 4"), 5);
	CHECK_EQ_INT(sql_int("SELECT failed_requests FROM jairouter.usage_daily WHERE tenant_id = 4"), 1);
}

/* With a cap of 2 users per tenant and day, the third and fourth users of tenant 5 are
 * recorded as "(other)"; the day's totals keep all four. */
static void test_usage_user_cap(void)
{
	exec_sql("UPDATE jairouter.usage_settings SET users_per_tenant_day = 2");
	usage_start(base, conninfo, 600000, 1000);
	rec_user(5, "u1", 2, 0);
	rec_user(5, "u2", 2, 0);
	rec_user(5, "u3", 2, 0);
	rec_user(5, "u4", 2, 0);
	usage_stop();
	exec_sql("UPDATE jairouter.usage_settings SET users_per_tenant_day = 1000");
	CHECK_EQ_INT(sql_int("SELECT count(*) FROM jairouter.usage_hourly WHERE tenant_id = 5 "
			     "AND end_user IN ('u1', 'u2')"), 2);
	CHECK_EQ_INT(user_requests(5, "'(other)'"), 2);
	CHECK_EQ_INT(sql_int("SELECT count(*) FROM jairouter.usage_users WHERE tenant_id = 5"), 2);
	CHECK_EQ_INT(sql_int("SELECT requests FROM jairouter.usage_daily WHERE tenant_id = 5"), 4);
}

/* A buffer of 4 rows takes 3 named users; the next users fold into "(other)". */
static void test_usage_buffer_folds_users(void)
{
	struct usage_stats s;

	usage_start(base, conninfo, 600000, 4);
	rec_user(6, "a", 1, 0);
	rec_user(6, "b", 1, 0);
	rec_user(6, "c", 1, 0);
	rec_user(6, "d", 1, 0);
	rec_user(6, "e", 1, 0);
	usage_stats(&s);
	CHECK_EQ_INT(s.rows_pending, 4);
	CHECK_EQ_INT(s.users_folded, 2);
	usage_stop();
	CHECK_EQ_INT(user_requests(6, "'(other)'"), 2);
	CHECK_EQ_INT(sql_int("SELECT requests FROM jairouter.usage_daily WHERE tenant_id = 6"), 5);
}

static void seed(const struct usage_seed_row *rows, size_t n)
{
	seeded_rows = (int)n;
	seeded_tokens = 0;
	for (size_t i = 0; i < n; i++)
		seeded_tokens += rows[i].tokens;
}

static int seed_came(void)
{
	return seeded_rows >= 0;
}

/* At start, this month's usage is read back for the local quota counters. */
static void test_usage_seed(void)
{
	usage_set_seed(seed);
	usage_start(base, conninfo, 20, 1000);
	CHECK(run_until(seed_came, 500));
	CHECK_EQ_INT(seeded_rows, 3);
	CHECK_EQ_INT(seeded_tokens, 60 + 2 + 7);
	usage_stop();
	usage_set_seed(NULL);
}

static int audit_written_2(void)
{
	struct audit_stats s;

	audit_stats(&s);
	return s.written >= 2;
}

static void test_audit_rows(void)
{
	struct audit_event e = { .event = "auth_failure", .reason = "bad_signature", .family = 4,
				 .addr = { 192, 0, 2, 7 }, .issuer = "https://idp.example",
				 .subject = "mallory", .status = 401 };

	CHECK_EQ_INT(audit_start(base, conninfo, "node-a"), 0);
	audit_emit(&e);
	e.event = "lockout";
	e.reason = "too_many_failures";
	e.tenant_id = 0;
	audit_emit(&e);
	CHECK(run_until(audit_written_2, 500));
	CHECK_EQ_INT(sql_int("SELECT count(*) FROM jairouter.security_audit WHERE node = 'node-a'"), 2);
	CHECK_EQ_INT(sql_int("SELECT count(*) FROM jairouter.security_audit WHERE client = '192.0.2.7' "
			     "AND subject = 'mallory' AND tenant_id IS NULL AND status = 401"), 2);
	CHECK_EQ_INT(sql_int("SELECT count(*) FROM jairouter.security_audit WHERE event = 'lockout'"), 1);
	audit_stop();
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: test_writers CONNINFO\n");
		return 2;
	}
	conninfo = argv[1];
	log_set_level(LOG_ERROR);
	base = event_base_new();
	RUN(test_usage_batches);
	RUN(test_usage_stop_writes_the_rest);
	RUN(test_usage_seed);
	RUN(test_usage_end_users);
	RUN(test_usage_user_cap);
	RUN(test_usage_buffer_folds_users);
	RUN(test_audit_rows);
	event_base_free(base);
	TEST_END();
}
