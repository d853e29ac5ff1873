/*
 * test_pgsync: pgsync against a real PostgreSQL (tests/pg/run.sh starts one, applies
 * the migrations and runs this under ASan). Changes are made through
 * scripts/jairouterctl and psql, as an operator would; the test watches the store.
 *
 *   test_pgsync DATABASE_URI      (run from the repository root)
 *
 * Prints one "ok"/"not ok" line per test, measured latencies, and "N passed, N failed".
 * JR_PG_BULK sets the number of keys of the bulk test (default 10000).
 */
#include "pg/pgsync.h"
#include "state/state.h"

#include "../unit/testlib.h"

#include <arpa/inet.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static struct event_base *base;
static struct pgsync *ps;
static const char *db_uri;
static char cur_uri[1024]; /* the connection string ps runs with now */

/* ---- helpers ---------------------------------------------------------------------- */

static double now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
}

/* Runs the loop until cond(arg) holds; returns the milliseconds it took, or -1 after
 * timeout_ms. */
static double run_until(int (*cond)(const void *), const void *arg, int timeout_ms)
{
	double t0 = now_ms();
	struct timeval tv = { 0, 2000 };
	struct event *tick = evtimer_new(base, tick_cb, NULL);
	double took = -1;

	while (now_ms() - t0 < timeout_ms) {
		if (cond(arg)) {
			took = now_ms() - t0;
			break;
		}
		evtimer_add(tick, &tv);
		event_base_loop(base, EVLOOP_ONCE);
	}
	event_free(tick);
	return took;
}

static void run_for(int ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	event_base_loopexit(base, &tv);
	event_base_dispatch(base);
}

/* Runs a shell command (the database URI is in $JAIROUTER_DATABASE, never pasted into
 * it); returns its exit status and the first line of its output in out. */
__attribute__((format(printf, 3, 4))) static int sh(char *out, size_t size, const char *fmt, ...)
{
	char cmd[2048], line[512] = "";
	va_list ap;
	FILE *f;
	int rc;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	f = popen(cmd, "r");
	if (!f)
		return -1;
	if (!fgets(line, sizeof(line), f))
		line[0] = '\0';
	while (fgetc(f) != EOF)
		;
	rc = pclose(f);
	line[strcspn(line, "\n")] = '\0';
	if (out)
		snprintf(out, size, "%s", line);
	return rc;
}

#define CTL "scripts/jairouterctl "
#define PSQL "psql -X -q -At -v ON_ERROR_STOP=1 -d \"$JAIROUTER_DATABASE\" "

static void sha256_str(const char *s, uint8_t out[ST_HASH_LEN])
{
	unsigned int n = ST_HASH_LEN;

	EVP_Digest(s, strlen(s), out, &n, EVP_sha256(), NULL);
}

static struct pgsync_stats stats(void)
{
	struct pgsync_stats st;

	pgsync_stats(ps, &st);
	return st;
}

static int is_up(const void *arg)
{
	(void)arg;
	return store_ready() && stats().status == PGSYNC_UP;
}

/* Key lookups copy what they need under the read lock. */
static int key_status(const uint8_t *hash, struct st_key *copy)
{
	const struct state *s = store_read_begin();
	const struct st_key *k = state_find_key(s, hash);
	int found = k != NULL;

	if (k && copy)
		*copy = *k;
	store_read_end();
	return found;
}

static int key_present(const void *hash)
{
	return key_status(hash, NULL);
}

static int key_revoked(const void *hash)
{
	struct st_key k;

	return key_status(hash, &k) && k.status == ST_REVOKED;
}

static int key_absent(const void *hash)
{
	return !key_status(hash, NULL);
}

static int64_t sql_int(const char *fmt_sql)
{
	char out[64];

	if (sh(out, sizeof(out), PSQL "-c \"%s\"", fmt_sql) != 0)
		return -1;
	return strtoll(out, NULL, 10);
}

/* Issues a key for tenant; stores its hash. Returns 0 on success. */
static int issue(const char *tenant, uint8_t hash[ST_HASH_LEN], char *key, size_t size)
{
	if (sh(key, size, CTL "key issue %s 2>/dev/null", tenant) != 0 || strlen(key) != 67)
		return -1;
	sha256_str(key, hash);
	return 0;
}

/* ---- tests ------------------------------------------------------------------------ */

static uint8_t key1_hash[ST_HASH_LEN];
static char key1[128];

static void test_bad_options(void)
{
	struct pgsync_opts o = { 0 };

	CHECK(pgsync_start(base, &o) == NULL);
	o.conninfo = "host='unterminated";
	CHECK(pgsync_start(base, &o) == NULL);
	o.conninfo = "postgresql://[::1";
	CHECK(pgsync_start(base, &o) == NULL);
	pgsync_stop(NULL);
}

static void test_initial_load(void)
{
	struct pgsync_opts o = { .conninfo = db_uri, .retry_max_ms = 1000 };
	double t;

	CHECK_EQ_INT(sh(NULL, 0, CTL "tenant add acme >/dev/null"), 0);
	CHECK_EQ_INT(sh(NULL, 0, CTL "model add seed-model be_seed >/dev/null"), 0);
	CHECK_EQ_INT(issue("acme", key1_hash, key1, sizeof(key1)), 0);
	snprintf(cur_uri, sizeof(cur_uri), "%s", db_uri);
	ps = pgsync_start(base, &o);
	CHECK(ps != NULL);
	if (!ps)
		return;
	CHECK_EQ_INT(stats().status, PGSYNC_CONNECTING);
	t = run_until(is_up, NULL, 5000);
	CHECK(t >= 0);
	printf("# initial connect + load: %.1f ms\n", t);
	CHECK(stats().full_loads >= 1);
	CHECK(stats().last_load_unix > 0);
	CHECK(key_present(key1_hash));
}

static void test_key_issue_appears(void)
{
	uint8_t hash[ST_HASH_LEN];
	char key[128];
	struct st_key k;
	double t;

	CHECK_EQ_INT(issue("acme", hash, key, sizeof(key)), 0);
	t = run_until(key_present, hash, 1000);
	CHECK(t >= 0);
	printf("# issue -> in store: %.1f ms (after the CLI returned)\n", t);
	CHECK(key_status(hash, &k));
	CHECK_EQ_INT(k.status, ST_ACTIVE);
	CHECK_EQ_INT(k.expires_at, 0);
	CHECK(strncmp(k.prefix, key, 11) == 0 && strlen(k.prefix) == 11);
	CHECK(k.tenant_id == sql_int("SELECT id FROM jairouter.tenants WHERE name = 'acme'"));
}

static void test_key_expiry(void)
{
	uint8_t hash[ST_HASH_LEN];
	char key[128];
	struct st_key k;

	CHECK_EQ_INT(sh(key, sizeof(key), CTL "key issue acme --expires '2030-01-01 00:00Z' "
					      "--name expiring 2>/dev/null"), 0);
	sha256_str(key, hash);
	CHECK(run_until(key_present, hash, 1000) >= 0);
	CHECK(key_status(hash, &k));
	CHECK_EQ_INT(k.expires_at, 1893456000);
}

static void test_key_revoke(void)
{
	char cmd_out[256];
	double t0, t;

	t0 = now_ms();
	CHECK_EQ_INT(sh(cmd_out, sizeof(cmd_out), CTL "key revoke %.11s", key1), 0);
	t = run_until(key_revoked, key1_hash, 1000);
	CHECK(t >= 0);
	printf("# revoke -> status flips: %.1f ms after the CLI returned (%.1f ms incl. CLI)\n", t,
	       now_ms() - t0);
}

static int tenant_disabled(const void *arg)
{
	const struct state *s = store_read_begin();
	const struct st_tenant *t = state_find_tenant(s, *(const int64_t *)arg);
	int r = t && t->status == ST_DISABLED && strcmp(t->name, "acme") == 0;

	store_read_end();
	return r;
}

static void test_tenant_disable(void)
{
	int64_t id = sql_int("SELECT id FROM jairouter.tenants WHERE name = 'acme'");

	CHECK_EQ_INT(sh(NULL, 0, CTL "tenant disable acme >/dev/null"), 0);
	CHECK(run_until(tenant_disabled, &id, 1000) >= 0);
}

static int model_is(const char *name, const char *backend, enum st_status status)
{
	const struct state *s = store_read_begin();
	const struct st_model *m = state_find_model(s, name, strlen(name));
	int r = m && strcmp(m->backend, backend) == 0 && m->status == status;

	store_read_end();
	return r;
}

static int model_active(const void *arg)
{
	return model_is(arg, "be_new", ST_ACTIVE);
}

static int model_disabled(const void *arg)
{
	return model_is(arg, "be_new", ST_DISABLED);
}

static void test_model_add_disable(void)
{
	CHECK(model_is("seed-model", "be_seed", ST_ACTIVE));
	CHECK_EQ_INT(sh(NULL, 0, CTL "model add new-model be_new >/dev/null"), 0);
	CHECK(run_until(model_active, "new-model", 1000) >= 0);
	CHECK_EQ_INT(sh(NULL, 0, CTL "model disable new-model >/dev/null"), 0);
	CHECK(run_until(model_disabled, "new-model", 1000) >= 0);
}

static int tenant_gone(const void *arg)
{
	const struct state *s = store_read_begin();
	int r = state_find_tenant(s, *(const int64_t *)arg) == NULL;

	store_read_end();
	return r;
}

/* A deleted tenant disappears, and its keys with it (ON DELETE CASCADE notifies each). */
static void test_delete_cascade(void)
{
	uint8_t hash[ST_HASH_LEN];
	char key[128];
	int64_t id;

	CHECK_EQ_INT(sh(NULL, 0, CTL "tenant add doomed >/dev/null"), 0);
	CHECK_EQ_INT(issue("doomed", hash, key, sizeof(key)), 0);
	CHECK(run_until(key_present, hash, 1000) >= 0);
	id = sql_int("SELECT id FROM jairouter.tenants WHERE name = 'doomed'");
	CHECK_EQ_INT(sql_int("WITH d AS (DELETE FROM jairouter.tenants WHERE name = 'doomed' "
			     "RETURNING 1) SELECT count(*) FROM d"), 1);
	CHECK(run_until(key_absent, hash, 1000) >= 0);
	CHECK(run_until(tenant_gone, &id, 1000) >= 0);
}

/* Garbage on the channel is counted and ignored; the connection stays up. */
static void test_malformed_notifications(void)
{
	uint64_t before = stats().notifications;

	CHECK_EQ_INT(sh(NULL, 0, PSQL "-c \"NOTIFY jairouter_changes, 'garbage'\" "
				  "-c \"NOTIFY jairouter_changes, 'api_keys:U:abc'\" "
				  "-c \"NOTIFY jairouter_changes, 'api_keys:U:-1'\" "
				  "-c \"NOTIFY jairouter_changes, 'other_table:U:1'\" "
				  "-c \"NOTIFY jairouter_changes, 'api_keys:U:999999999'\""),
		     0);
	run_for(200);
	CHECK(stats().notifications >= before + 5);
	CHECK_EQ_INT(stats().status, PGSYNC_UP);
	CHECK(key_present(key1_hash));
}

static int reloaded_since(const void *arg)
{
	return is_up(NULL) && stats().full_loads > *(const uint64_t *)arg;
}

/* The server kills our session: the store keeps serving, pgsync reconnects, reloads
 * (picking up a change made while it was away) and listens again. */
static void test_reconnect(void)
{
	uint64_t loads = stats().full_loads, errors = stats().errors;
	uint8_t hash[ST_HASH_LEN], hash2[ST_HASH_LEN];
	char key[128];
	double t;

	CHECK_EQ_INT(sql_int("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
			     "WHERE application_name = 'jairouter-spoa'"),
		     1);
	CHECK_EQ_INT(sh(NULL, 0, CTL "tenant add returning >/dev/null"), 0);
	CHECK_EQ_INT(issue("returning", hash, key, sizeof(key)), 0);
	CHECK(key_present(key1_hash)); /* still served from memory */
	t = run_until(reloaded_since, &loads, 3000);
	CHECK(t >= 0);
	printf("# session killed -> reconnected and reloaded: %.1f ms\n", t);
	CHECK(stats().errors > errors);
	CHECK(key_present(hash));
	CHECK_EQ_INT(issue("returning", hash2, key, sizeof(key)), 0);
	CHECK(run_until(key_present, hash2, 1000) >= 0);
}

static int64_t bulk_target;

static int keys_reach(const void *arg)
{
	const struct state *s = store_read_begin();
	int r = (int64_t)state_count_keys(s) >= bulk_target;

	(void)arg;
	store_read_end();
	return r;
}

/* A bulk insert overflows the change queue: one full load replaces the fetches. Then a
 * reconfigure (new connection string) measures a full load on its own. */
static void test_bulk_and_full_load(void)
{
	const char *env = getenv("JR_PG_BULK");
	long n = env ? atol(env) : 10000;
	char cmd[512], uri2[1024];
	struct pgsync_opts o = { .retry_max_ms = 1000 };
	uint64_t loads;
	double t;

	bulk_target = (int64_t)n + sql_int("SELECT count(*) FROM jairouter.api_keys");
	snprintf(cmd, sizeof(cmd),
		 "INSERT INTO jairouter.api_keys (tenant_id, name, prefix, key_hash) "
		 "SELECT (SELECT id FROM jairouter.tenants WHERE name = 'acme'), 'bulk', "
		 "'jr-' || lpad(to_hex(i), 8, '0'), sha256(convert_to('bulk' || i, 'UTF8')) "
		 "FROM generate_series(1, %ld) AS i",
		 n);
	CHECK_EQ_INT(sh(NULL, 0, PSQL "-c \"%s\"", cmd), 0);
	t = run_until(keys_reach, NULL, 10000);
	CHECK(t >= 0);
	printf("# bulk insert of %ld keys -> in store: %.1f ms (after the insert returned)\n", n, t);

	loads = stats().full_loads;
	snprintf(uri2, sizeof(uri2), "%s%sconnect_timeout=5", db_uri,
		 strchr(db_uri, '?') ? "&" : "?");
	o.conninfo = uri2;
	snprintf(cur_uri, sizeof(cur_uri), "%s", uri2);
	pgsync_reconfigure(ps, &o);
	t = run_until(reloaded_since, &loads, 10000);
	CHECK(t >= 0);
	printf("# reconnect + full load of %lld keys: %.1f ms\n", (long long)bulk_target, t);
	CHECK(keys_reach(NULL));
}

/* Applies intervals to the running synchroniser (same connection string: no reconnect). */
static void set_intervals(unsigned resync_ms, unsigned timeout_ms)
{
	struct pgsync_opts o = { .conninfo = cur_uri, .resync_interval_ms = resync_ms,
				 .query_timeout_ms = timeout_ms, .retry_max_ms = 1000 };

	pgsync_reconfigure(ps, &o);
}

/* Holds an exclusive lock on api_keys for `secs` seconds from a background psql; returns
 * once the lock is held. A full load then stops at the api_keys query. */
static int lock_api_keys(double secs)
{
	double t0 = now_ms();

	if (sh(NULL, 0, "(" PSQL "-c 'BEGIN' -c 'LOCK TABLE jairouter.api_keys IN ACCESS "
			"EXCLUSIVE MODE' -c 'SELECT pg_sleep(%.1f)' -c 'COMMIT') >/dev/null 2>&1 &",
	       secs) != 0)
		return -1;
	while (now_ms() - t0 < 3000) {
		if (sql_int("SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
			    "WHERE c.relname = 'api_keys' AND l.mode = 'AccessExclusiveLock' "
			    "AND l.granted") == 1)
			return 0;
		usleep(20000);
	}
	return -1;
}

static int tenant_acme_active(const void *arg)
{
	const struct state *s = store_read_begin();
	const struct st_tenant *t = state_find_tenant(s, *(const int64_t *)arg);
	int r = t && t->status == ST_ACTIVE;

	store_read_end();
	return r;
}

/* A change committed while a full load runs is older than nothing the load saw: the
 * load's snapshot (taken at its first query) predates it, so only the notification,
 * queued during the load and applied after the swap, brings it in. */
static void test_change_during_full_load(void)
{
	int64_t id = sql_int("SELECT id FROM jairouter.tenants WHERE name = 'acme'");
	uint64_t loads = stats().full_loads, notes;

	CHECK(!tenant_acme_active(&id)); /* disabled by test_tenant_disable */
	CHECK_EQ_INT(lock_api_keys(1.0), 0);
	set_intervals(50, 5000); /* a resync starts within 50 ms and blocks on the lock */
	run_for(150);
	set_intervals(60000, 5000);
	CHECK_EQ_INT(stats().full_loads, loads); /* still loading */
	notes = stats().notifications;
	CHECK_EQ_INT(sh(NULL, 0, CTL "tenant enable acme >/dev/null"), 0);
	CHECK(run_until(reloaded_since, &loads, 3000) >= 0);
	CHECK(run_until(tenant_acme_active, &id, 1000) >= 0);
	CHECK(stats().notifications > notes);
	CHECK_EQ_INT(stats().status, PGSYNC_UP);
}

static int is_down(const void *arg)
{
	(void)arg;
	return stats().status == PGSYNC_DOWN;
}

/* A query that does not answer within the timeout drops the connection; the store
 * keeps serving; once the server answers again, pgsync is back UP. */
static void test_query_timeout(void)
{
	uint64_t errors = stats().errors, loads = stats().full_loads;

	CHECK_EQ_INT(lock_api_keys(1.5), 0);
	set_intervals(50, 300);
	CHECK(run_until(is_down, NULL, 2000) >= 0);
	set_intervals(60000, 300);
	CHECK(stats().errors > errors);
	CHECK(key_present(key1_hash));
	CHECK(run_until(reloaded_since, &loads, 5000) >= 0);
	set_intervals(60000, 5000);
}

static int errors_reach(const void *arg)
{
	struct pgsync_stats st;

	pgsync_stats(arg, &st);
	return st.errors >= 2 && st.status == PGSYNC_DOWN;
}

/* A server that accepts TCP and never answers: the connect timeout fires, the
 * synchroniser retries, and the store is untouched. */
static void test_timeout_on_silent_server(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	char uri[128];
	struct pgsync_opts o = { .query_timeout_ms = 150, .retry_max_ms = 200 };
	struct pgsync *silent;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CHECK(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	CHECK(listen(fd, 8) == 0);
	CHECK(getsockname(fd, (struct sockaddr *)&sa, &len) == 0);
	snprintf(uri, sizeof(uri), "postgresql://nobody@127.0.0.1:%d/none", ntohs(sa.sin_port));
	o.conninfo = uri;
	silent = pgsync_start(base, &o);
	CHECK(silent != NULL);
	CHECK(run_until(errors_reach, silent, 3000) >= 0);
	CHECK(key_present(key1_hash));
	pgsync_stop(silent);
	close(fd);
}

static void test_refused(void)
{
	struct pgsync_opts o = { .conninfo = "postgresql://nobody@127.0.0.1:1/none",
				 .retry_max_ms = 100 };
	struct pgsync *p = pgsync_start(base, &o);

	CHECK(p != NULL);
	CHECK(run_until(errors_reach, p, 2000) >= 0);
	pgsync_stop(p);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: test_pgsync DATABASE_URI\n");
		return 2;
	}
	db_uri = argv[1];
	setenv("JAIROUTER_DATABASE", db_uri, 1);
	setvbuf(stdout, NULL, _IOLBF, 0);
	base = event_base_new();
	store_init();

	RUN(test_bad_options);
	RUN(test_initial_load);
	if (!ps)
		TEST_END();
	RUN(test_key_issue_appears);
	RUN(test_key_expiry);
	RUN(test_key_revoke);
	RUN(test_tenant_disable);
	RUN(test_model_add_disable);
	RUN(test_delete_cascade);
	RUN(test_malformed_notifications);
	RUN(test_reconnect);
	RUN(test_change_during_full_load);
	RUN(test_query_timeout);
	RUN(test_bulk_and_full_load); /* last of the store tests: JR_PG_BULK may be large */
	RUN(test_timeout_on_silent_server);
	RUN(test_refused);

	pgsync_stop(ps);
	store_destroy();
	event_base_free(base);
	TEST_END();
}
