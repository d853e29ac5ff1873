/*
 * pgsync: one libpq connection on the control thread's event loop, driven by a single
 * state machine (enum ps_phase):
 *
 *   DOWN --retry timer--> CONNECTING --PQconnectPoll OK--> LISTEN --> LOAD --> READY
 *   READY --NOTIFY--> FETCH --> READY        READY --resync timer--> LOAD --> READY
 *   any phase --error, timeout, lost connection--> DOWN (back-off 100 ms, doubling)
 *
 * One query is in flight at a time. Every wake-up on the socket reads what arrived
 * (PQconsumeInput), collects notifications (PQnotifies), then takes results while
 * PQisBusy() says they are complete.
 *
 * Full load: BEGIN REPEATABLE READ, then the three tables in single-row mode (memory
 * stays flat however many keys there are) into a fresh state, COMMIT, store_replace().
 * Changes during a load are not lost: LISTEN precedes every load, notifications that
 * arrive during the load are queued and fetched after the swap (the load's snapshot may
 * predate them). Notifications queued before a load starts are dropped when it starts:
 * PostgreSQL delivers a notification only after its transaction committed, so the
 * load's snapshot already contains the change. When the queue overflows (a bulk change
 * of more than PS_PENDING_MAX rows), one more full load replaces the fetches.
 *
 * Incremental change: "api_keys:U:42" queues (api_keys, 42). Queued ids of one table
 * are fetched together (WHERE id = ANY($1)), applied under store_write_begin(); an id
 * that no longer exists is deleted from the store.
 *
 * The query timeout is an inactivity timeout: it is re-armed whenever the server sends
 * something, so a large full load that keeps streaming rows is not cut, while a server
 * that stops answering is. On expiry the connection is dropped (PQfinish) and
 * re-established; the store keeps serving meanwhile.
 */
#include "pg/pgsync.h"
#include "lb/conf.h"
#include "lb/table.h"
#include "pipeline/pipeline.h"

#include "authz/idsync.h"
#include "state/endpoints.h"
#include "limit/defs.h"
#include "state/policy.h"
#include "state/state.h"
#include "util/log.h"
#include "util/xalloc.h"

#include <errno.h>
#include <event2/event.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PS_CHANNEL "jairouter_changes"
#define PS_APP_NAME "jairouter-spoa"
#define PS_BACKOFF_MIN_MS 100u
#define PS_PENDING_MAX 1024  /* queued changes before falling back to a full load */
#define PS_BATCH_MAX 256     /* ids per fetch query */
#define PS_RESULTS_PER_WAKE 4096 /* single-row results handled before yielding the loop */

enum ps_phase {
	PH_DOWN,       /* no connection; the retry timer is armed */
	PH_CONNECTING, /* PQconnectPoll in progress */
	PH_LISTEN,     /* LISTEN sent */
	PH_LOAD,       /* full load; step in load_step */
	PH_FETCH,      /* fetching a batch of changed rows */
	PH_READY,      /* connected, nothing in flight */
};

/* How one table is read and applied. */
struct ps_table {
	const char *name;       /* as in notification payloads */
	const char *select_all; /* full load */
	const char *select_ids; /* the rows whose id = ANY($1::bigint[]) */
	int ncols;
	/* Parses row `row` of `r` into `s`; stores its id in *id. 0, or -1 for a bad row. */
	int (*put)(struct state *s, const PGresult *r, int row, int64_t *id);
	void (*del)(struct state *s, int64_t id);
};

struct ps_change {
	const struct ps_table *table;
	int64_t id;
};

struct pgsync {
	struct event_base *base;
	char *conninfo;
	unsigned resync_ms, timeout_ms, retry_max_ms;

	PGconn *conn;
	enum ps_phase phase;
	struct event *io; /* on PQsocket(conn), which may change across connects */
	evutil_socket_t io_fd;
	short io_what;
	struct event *retry_timer, *timeout_timer, *resync_timer;
	unsigned backoff_ms;
	int query_failed; /* the query in flight returned an error result */

	struct state *loading; /* the full load being built */
	int load_step;
	struct timespec load_start;
	int reload_wanted;

	struct ps_change pending[PS_PENDING_MAX];
	size_t npending;
	const struct ps_table *batch_table;
	int64_t batch_ids[PS_BATCH_MAX];
	unsigned char batch_seen[PS_BATCH_MAX];
	size_t nbatch;

	struct pgsync_stats st;
};

static void ps_io_cb(evutil_socket_t fd, short what, void *arg);
static void ps_next_job(struct pgsync *ps);

/* ---- row parsing ------------------------------------------------------------------ */

static int64_t col_i64(const PGresult *r, int row, int col)
{
	return strtoll(PQgetvalue(r, row, col), NULL, 10);
}

/* Copies a column, truncated to the field (state.h sizes). */
static void col_str(char *dst, size_t size, const PGresult *r, int row, int col)
{
	size_t len = (size_t)PQgetlength(r, row, col);

	if (len >= size)
		len = size - 1;
	memcpy(dst, PQgetvalue(r, row, col), len);
	dst[len] = '\0';
}

/* Unknown status text fails closed (disabled). */
static enum st_status col_status(const PGresult *r, int row, int col)
{
	const char *v = PQgetvalue(r, row, col);

	if (strcmp(v, "active") == 0)
		return ST_ACTIVE;
	if (strcmp(v, "revoked") == 0)
		return ST_REVOKED;
	return ST_DISABLED;
}

static int hex_nibble(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int hex_decode(uint8_t *out, size_t n, const char *hex, size_t hexlen)
{
	if (hexlen != 2 * n)
		return -1;
	for (size_t i = 0; i < n; i++) {
		int hi = hex_nibble(hex[2 * i]), lo = hex_nibble(hex[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -1;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

static int put_tenant(struct state *s, const PGresult *r, int row, int64_t *id)
{
	struct st_tenant t;

	memset(&t, 0, sizeof(t));
	t.id = *id = col_i64(r, row, 0);
	col_str(t.name, sizeof(t.name), r, row, 1);
	t.status = col_status(r, row, 2) == ST_ACTIVE ? ST_ACTIVE : ST_DISABLED;
	state_put_tenant(s, &t);
	return 0;
}

static int put_key(struct state *s, const PGresult *r, int row, int64_t *id)
{
	struct st_key k;

	memset(&k, 0, sizeof(k));
	k.id = *id = col_i64(r, row, 0);
	k.tenant_id = col_i64(r, row, 1);
	if (hex_decode(k.hash, sizeof(k.hash), PQgetvalue(r, row, 2),
		       (size_t)PQgetlength(r, row, 2)) < 0) {
		log_warn("database: api_keys row %lld has a malformed key_hash; skipped",
			 (long long)k.id);
		return -1;
	}
	col_str(k.prefix, sizeof(k.prefix), r, row, 3);
	k.status = col_status(r, row, 4);
	k.expires_at = col_i64(r, row, 5);
	state_put_key(s, &k);
	return 0;
}

/* Service type names separated by ',' as a bit set of policy_service_bit(); unknown
 * names (a newer schema) are ignored, so they enable nothing. */
static uint32_t col_model_services(const PGresult *r, int row, int col)
{
	const char *p = PQgetvalue(r, row, col);
	uint32_t mask = 0;

	while (*p) {
		size_t l = strcspn(p, ",");
		int bit = policy_service_bit(p, l);
		if (bit >= 0)
			mask |= 1u << bit;
		p += l + (p[l] == ',');
	}
	return mask;
}

/* Capability flags as a string of '1'/'0': vision, tools, json_mode, streaming. */
static uint32_t col_caps(const PGresult *r, int row, int col)
{
	static const uint32_t bits[] = { ST_CAP_VISION, ST_CAP_TOOLS, ST_CAP_JSON_MODE, ST_CAP_STREAMING };
	const char *v = PQgetvalue(r, row, col);
	uint32_t caps = 0;

	for (size_t i = 0; i < sizeof(bits) / sizeof(bits[0]) && v[i]; i++)
		if (v[i] == '1')
			caps |= bits[i];
	return caps;
}

static int put_model(struct state *s, const PGresult *r, int row, int64_t *id)
{
	struct st_model m;

	memset(&m, 0, sizeof(m));
	m.id = *id = col_i64(r, row, 0);
	col_str(m.name, sizeof(m.name), r, row, 1);
	col_str(m.backend, sizeof(m.backend), r, row, 2);
	m.status = col_status(r, row, 3) == ST_ACTIVE ? ST_ACTIVE : ST_DISABLED;
	m.created = col_i64(r, row, 4);
	col_str(m.upstream, sizeof(m.upstream), r, row, 5);
	col_str(m.provider, sizeof(m.provider), r, row, 6);
	m.services = col_model_services(r, row, 7);
	m.caps = col_caps(r, row, 8);
	m.context_length = (int32_t)col_i64(r, row, 9);
	m.price_in = strtod(PQgetvalue(r, row, 10), NULL);
	m.price_out = strtod(PQgetvalue(r, row, 11), NULL);
	state_put_model(s, &m);
	return 0;
}

static int put_alias(struct state *s, const PGresult *r, int row, int64_t *id)
{
	struct st_alias a;

	memset(&a, 0, sizeof(a));
	a.id = *id = col_i64(r, row, 0);
	a.model_id = col_i64(r, row, 1);
	col_str(a.alias, sizeof(a.alias), r, row, 2);
	state_put_alias(s, &a);
	return 0;
}

#define TENANTS_SQL "SELECT id, name, status FROM jairouter.tenants"
#define KEYS_SQL                                                                           \
	"SELECT id, tenant_id, encode(key_hash, 'hex'), prefix, status, "                 \
	"coalesce(floor(extract(epoch FROM expires_at))::bigint, 0) FROM jairouter.api_keys"
#define MODELS_SQL                                                                         \
	"SELECT id, name, backend, status, floor(extract(epoch FROM created_at))::bigint, " \
	"coalesce(upstream_name, ''), provider, array_to_string(services, ','), "          \
	"concat(vision::int, tools::int, json_mode::int, streaming::int), "                  \
	"coalesce(context_length, 0), coalesce(price_input_per_mtok, -1), "                \
	"coalesce(price_output_per_mtok, -1) FROM jairouter.models"
#define ALIASES_SQL "SELECT id, model_id, alias FROM jairouter.model_aliases"
#define BY_IDS " WHERE id = ANY($1::bigint[])"

/* ---- tenant policy rows (state/policy.h; sql/004_tenant_policy.sql) ---------------- */

static const char *col_text(const PGresult *r, int row, int col)
{
	return PQgetvalue(r, row, col); /* NUL-terminated by libpq; "" for NULL */
}

/* "*" (NULL in SQL) = every service; else names separated by ','. Unknown names are
 * ignored (a newer schema), so they grant nothing. */
static uint32_t col_services(const PGresult *r, int row, int col)
{
	if (strcmp(col_text(r, row, col), "*") == 0)
		return POL_SERVICES_ALL;
	return col_model_services(r, row, col);
}

static int put_tenant_policy(struct state *s, const PGresult *r, int row, int64_t *id)
{
	struct pol_tenant t;
	const char *ips = col_text(r, row, 2), *on_error = col_text(r, row, 3);
	const char *masking = col_text(r, row, 4);

	memset(&t, 0, sizeof(t));
	t.id = *id = col_i64(r, row, 0);
	t.services = col_services(r, row, 1);
	t.on_error = strcmp(on_error, "fail-open") == 0 ? POL_FAIL_OPEN
		     : strcmp(on_error, "fail-closed") == 0 ? POL_FAIL_CLOSED : POL_ON_ERROR_DEFAULT;
	t.masking = masking[0] ? strcmp(masking, "true") == 0 : -1;
	if (policy_iplist_parse(&t.ips, ips, strlen(ips)) < 0)
		log_warn("database: tenant %lld has an unreadable IP allow-list; it admits no address",
			 (long long)t.id);
	policy_put_tenant(state_policy(s), &t);
	policy_iplist_free(&t.ips);
	return 0;
}

static void del_tenant_policy(struct state *s, int64_t id)
{
	policy_del_tenant(state_policy(s), id);
}

static int put_key_policy(struct state *s, const PGresult *r, int row, int64_t *id)
{
	*id = col_i64(r, row, 0);
	policy_put_key(state_policy(s), *id, col_text(r, row, 1), col_text(r, row, 2));
	return 0;
}

static void del_key_policy(struct state *s, int64_t id)
{
	policy_del_key(state_policy(s), id);
}

static int put_private_model(struct state *s, const PGresult *r, int row, int64_t *id)
{
	*id = col_i64(r, row, 0);
	policy_put_private_model(state_policy(s), *id);
	return 0;
}

static void del_private_model(struct state *s, int64_t id)
{
	policy_del_private_model(state_policy(s), id);
}

static int put_grant(struct state *s, const PGresult *r, int row, int64_t *id)
{
	struct pol_grant g;

	g.id = *id = col_i64(r, row, 0);
	g.tenant_id = col_i64(r, row, 1);
	g.model_id = col_i64(r, row, 2);
	g.group_id = col_i64(r, row, 3);
	g.deny = strcmp(col_text(r, row, 4), "allow") != 0; /* unknown effect: deny */
	policy_put_grant(state_policy(s), &g);
	return 0;
}

static void del_grant(struct state *s, int64_t id)
{
	policy_del_grant(state_policy(s), id);
}

static int put_member(struct state *s, const PGresult *r, int row, int64_t *id)
{
	struct pol_member m;

	m.id = *id = col_i64(r, row, 0);
	m.group_id = col_i64(r, row, 1);
	m.model_id = col_i64(r, row, 2);
	policy_put_member(state_policy(s), &m);
	return 0;
}

static void del_member(struct state *s, int64_t id)
{
	policy_del_member(state_policy(s), id);
}

static enum pol_header col_header(const PGresult *r, int row, int col)
{
	const char *v = col_text(r, row, col);

	return strcmp(v, "authorization") == 0 ? POL_HDR_AUTHORIZATION
	       : strcmp(v, "x-api-key") == 0 ? POL_HDR_X_API_KEY
	       : strcmp(v, "api-key") == 0 ? POL_HDR_API_KEY : POL_HDR_NONE;
}

/* The sealed value is opened here, on the control thread; a row that does not open is
 * kept as broken so that requests needing it are refused instead of sent without it. */
static int put_credential(struct state *s, const PGresult *r, int row, int64_t *id)
{
	struct pol_cred_row c;
	char sealed[8300];

	c.id = *id = col_i64(r, row, 0);
	c.model_scope = strcmp(col_text(r, row, 1), "model") == 0;
	c.backend = col_text(r, row, 2);
	c.model_id = col_i64(r, row, 3);
	c.header = col_header(r, row, 4);
	c.bearer = strcmp(col_text(r, row, 5), "bearer") == 0;
	snprintf(sealed, sizeof(sealed), "%s:%s", col_text(r, row, 6), col_text(r, row, 7));
	c.sealed = sealed;
	policy_put_credential(state_policy(s), &c);
	return 0;
}

static void del_credential(struct state *s, int64_t id)
{
	policy_del_credential(state_policy(s), id);
}

#define TENANT_POLICY_SQL                                                                  \
	"SELECT id, coalesce(array_to_string(allowed_services, ','), '*'), "               \
	"coalesce(array_to_string(ip_allow, ','), ''), coalesce(settings->>'on_error', ''), " \
	"coalesce(settings->>'masking', '') FROM jairouter.tenants"
#define KEY_POLICY_SQL                                                                     \
	"SELECT id, coalesce(array_to_string(models, E'\\n'), ''), "                        \
	"coalesce(array_to_string(ip_allow, ','), '') FROM jairouter.api_keys "            \
	"WHERE (models IS NOT NULL OR ip_allow IS NOT NULL)"
#define PRIVATE_MODELS_SQL "SELECT id FROM jairouter.models WHERE visibility = 'private'"
#define GRANTS_SQL                                                                         \
	"SELECT id, tenant_id, coalesce(model_id, 0), coalesce(group_id, 0), effect "      \
	"FROM jairouter.tenant_grants"
#define MEMBERS_SQL "SELECT id, group_id, model_id FROM jairouter.model_group_members"
#define CREDENTIALS_SQL                                                                    \
	"SELECT id, scope, coalesce(backend, ''), coalesce(model_id, 0), header, scheme, "  \
	"key_id, ciphertext FROM jairouter.provider_credentials"
#define AND_IDS " AND id = ANY($1::bigint[])"

/* ---- adapter rows (state/endpoints.h; sql/008_adapter.sql) ------------------------- */

static int put_endpoint(struct state *s, const PGresult *r, int row, int64_t *id)
{
	struct st_endpoint e;

	memset(&e, 0, sizeof(e));
	e.id = *id = col_i64(r, row, 0);
	col_str(e.backend, sizeof(e.backend), r, row, 1);
	col_str(e.base_url, sizeof(e.base_url), r, row, 2);
	col_str(e.region, sizeof(e.region), r, row, 3);
	col_str(e.api_version, sizeof(e.api_version), r, row, 4);
	e.meter = strcmp(col_text(r, row, 5), "t") == 0;
	adapter_put_endpoint(state_adapter(s), &e);
	return 0;
}

static void del_endpoint(struct state *s, int64_t id)
{
	adapter_del_endpoint(state_adapter(s), id);
}

static int put_masking(struct state *s, const PGresult *r, int row, int64_t *id)
{
	struct st_masking m;

	memset(&m, 0, sizeof(m));
	m.tenant_id = *id = col_i64(r, row, 0);
	m.enabled = strcmp(col_text(r, row, 1), "true") == 0;
	col_str(m.policy, sizeof(m.policy), r, row, 2);
	adapter_put_masking(state_adapter(s), &m);
	return 0;
}

static void del_masking(struct state *s, int64_t id)
{
	adapter_del_masking(state_adapter(s), id);
}

#define ENDPOINTS_SQL                                                                      \
	"SELECT id, backend, coalesce(base_url, ''), coalesce(region, ''), "                \
	"coalesce(api_version, ''), meter_streams FROM jairouter.endpoints"
#define MASKING_SQL                                                                        \
	"SELECT id, coalesce(settings->>'masking', ''), coalesce(masking_policy::text, '') " \
	"FROM jairouter.tenants"
/* ---- routing rows (lb/conf.h; sql/005_routing.sql) --------------------------------- */

#define ROUTING_SQL                                                                        \
	"SELECT id, coalesce(model_id, 0), coalesce(backend, ''), coalesce(service, ''), "   \
	"coalesce(strategy, ''), coalesce(hash_key, ''), coalesce(hash_bound, -1)::float8, " \
	"coalesce(slow_start_ms, -1), coalesce(breaker_consecutive, -1), "                  \
	"coalesce(breaker_error_rate, -1)::float8, coalesce(breaker_min_requests, -1), "     \
	"coalesce(breaker_window_s, -1), coalesce(breaker_open_ms, -1), "                    \
	"coalesce(breaker_probes, -1) FROM jairouter.routing_policies"
#define FALLBACKS_SQL                                                                      \
	"SELECT id, model_id, position, fallback_model_id, array_to_string(reasons, ',') "    \
	"FROM jairouter.model_fallbacks"

/* The enum pl_service of a service type name; -1 for "" or an unknown name. */
static int col_service(const PGresult *r, int row, int col)
{
	const char *v = col_text(r, row, col);

	for (int i = 1; v[0] && i < PL_SVC__COUNT; i++)
		if (strcmp(pl_service_name((enum pl_service)i), v) == 0)
			return i;
	return -1;
}

static int put_routing(struct state *s, const PGresult *r, int row, int64_t *id)
{
	struct lb_policy_row p;
	const char *st = col_text(r, row, 4), *hk = col_text(r, row, 5);

	memset(&p, 0, sizeof(p));
	*id = p.id = col_i64(r, row, 0);
	p.model_id = col_i64(r, row, 1);
	col_str(p.backend, sizeof(p.backend), r, row, 2);
	p.service = col_service(r, row, 3);
	if (p.service < 0 && col_text(r, row, 3)[0])
		return -1; /* a service this agent does not know: not the global row */
	p.strategy = st[0] ? lb_strategy_parse(st, strlen(st)) : -1;
	p.hash_key = hk[0] ? lb_hash_key_parse(hk, strlen(hk)) : -1;
	p.hash_bound = strtod(col_text(r, row, 6), NULL);
	p.slow_start_ms = col_i64(r, row, 7);
	p.br_consecutive = col_i64(r, row, 8);
	p.br_error_rate = strtod(col_text(r, row, 9), NULL);
	p.br_min_requests = col_i64(r, row, 10);
	p.br_window_s = col_i64(r, row, 11);
	p.br_open_ms = col_i64(r, row, 12);
	p.br_probes = col_i64(r, row, 13);
	lb_conf_put_policy(state_lb(s), &p);
	return 0;
}

static void del_routing(struct state *s, int64_t id)
{
	lb_conf_del_policy(state_lb(s), id);
}

static int put_fallback(struct state *s, const PGresult *r, int row, int64_t *id)
{
	struct lb_fallback_row f;
	const char *v = col_text(r, row, 4);

	memset(&f, 0, sizeof(f));
	*id = f.id = col_i64(r, row, 0);
	f.model_id = col_i64(r, row, 1);
	f.position = (int)col_i64(r, row, 2);
	f.fallback_id = col_i64(r, row, 3);
	while (*v) { /* "down,circuit_open": unknown names are ignored */
		size_t n = strcspn(v, ",");
		int w = lb_why_parse(v, n);
		if (w > 0)
			f.reasons |= 1u << w;
		v += n + (v[n] == ',');
	}
	lb_conf_put_fallback(state_lb(s), &f);
	return 0;
}

static void del_fallback(struct state *s, int64_t id)
{
	lb_conf_del_fallback(state_lb(s), id);
}

#define VIRTUAL_SQL "SELECT id, model_id, coalesce(latency_budget_ms, 0) FROM jairouter.virtual_models"
#define MEMBERS_VM_SQL                                                                     \
	"SELECT id, virtual_model_id, position, model_id FROM jairouter.virtual_model_members"

static int put_virtual(struct state *s, const PGresult *r, int row, int64_t *id)
{
	struct lb_virtual_row v = { col_i64(r, row, 0), col_i64(r, row, 1), col_i64(r, row, 2) };

	*id = v.id;
	lb_conf_put_virtual(state_lb(s), &v);
	return 0;
}

static void del_virtual(struct state *s, int64_t id)
{
	lb_conf_del_virtual(state_lb(s), id);
}

static int put_vmember(struct state *s, const PGresult *r, int row, int64_t *id)
{
	struct lb_member_row m = { col_i64(r, row, 0), col_i64(r, row, 1), col_i64(r, row, 3),
				   (int)col_i64(r, row, 2) };

	*id = m.id;
	lb_conf_put_member(state_lb(s), &m);
	return 0;
}

static void del_vmember(struct state *s, int64_t id)
{
	lb_conf_del_member(state_lb(s), id);
}

/* Limit definitions (limit/defs.h; sql/006_limits_usage.sql): parsed by limdefs_put_row. */
static int put_limit(struct state *s, const PGresult *r, int row, int64_t *id)
{
	const char *v[LIMDEFS_ROW_COLS];
	char err[160];

	for (int i = 0; i < LIMDEFS_ROW_COLS; i++)
		v[i] = col_text(r, row, i);
	*id = col_i64(r, row, 0);
	if (limdefs_put_row(state_limits(s), v, err, sizeof(err)) < 0) {
		log_warn("database: limits row %lld ignored: %s", (long long)*id, err);
		limdefs_del(state_limits(s), *id);
		return -1;
	}
	return 0;
}

static void del_limit(struct state *s, int64_t id)
{
	limdefs_del(state_limits(s), id);
}

static const struct ps_table ps_tables[] = {
	{ "tenants", TENANTS_SQL, TENANTS_SQL BY_IDS, 3, put_tenant, state_del_tenant },
	{ "api_keys", KEYS_SQL, KEYS_SQL BY_IDS, 6, put_key, state_del_key },
	/* A model's private flag is applied before its catalogue row (entries of one table
	 * are fetched in this order): a model created private is never served as public,
	 * even for the one round trip between the two fetches. */
	{ "models", PRIVATE_MODELS_SQL, PRIVATE_MODELS_SQL AND_IDS, 1, put_private_model,
	  del_private_model },
	{ "models", MODELS_SQL, MODELS_SQL BY_IDS, 12, put_model, state_del_model },
	{ "model_aliases", ALIASES_SQL, ALIASES_SQL BY_IDS, 3, put_alias, state_del_alias },
	/* tenant policy */
	{ "tenants", TENANT_POLICY_SQL, TENANT_POLICY_SQL BY_IDS, 5, put_tenant_policy,
	  del_tenant_policy },
	{ "api_keys", KEY_POLICY_SQL, KEY_POLICY_SQL AND_IDS, 3, put_key_policy, del_key_policy },
	{ "tenant_grants", GRANTS_SQL, GRANTS_SQL BY_IDS, 5, put_grant, del_grant },
	{ "model_group_members", MEMBERS_SQL, MEMBERS_SQL BY_IDS, 3, put_member, del_member },
	{ "provider_credentials", CREDENTIALS_SQL, CREDENTIALS_SQL BY_IDS, 8, put_credential,
	  del_credential },
	/* identity: issuers, keys, revocations, roles (authz/idsync.h) */
#define ID_TABLE(table, NAME, put, del) \
	{ table, IDSYNC_##NAME##_SQL, IDSYNC_##NAME##_SQL BY_IDS, IDSYNC_##NAME##_COLS, put, del }
	ID_TABLE("jwt_issuers", ISSUERS, idsync_put_issuer, idsync_del_issuer),
	ID_TABLE("jwt_issuer_keys", KEYS, idsync_put_key, idsync_del_key),
	ID_TABLE("revoked_tokens", JTI, idsync_put_jti, idsync_del_jti),
	ID_TABLE("revoked_subjects", SUB, idsync_put_sub, idsync_del_sub),
	ID_TABLE("roles", ROLES, idsync_put_role, idsync_del_role),
	ID_TABLE("api_key_roles", KEY_ROLES, idsync_put_key_role, idsync_del_key_role),
	ID_TABLE("tenants", TENANTS, idsync_put_tenant, idsync_del_tenant),
	ID_TABLE("model_groups", GROUPS, idsync_put_group, idsync_del_group),
	ID_TABLE("model_group_members", MEMBERS, idsync_put_member, idsync_del_member),
#undef ID_TABLE
	/* adapter endpoints and tenant masking */
	{ "endpoints", ENDPOINTS_SQL, ENDPOINTS_SQL BY_IDS, 6, put_endpoint, del_endpoint },
	{ "tenants", MASKING_SQL, MASKING_SQL BY_IDS, 3, put_masking, del_masking },
	/* routing */
	{ "routing_policies", ROUTING_SQL, ROUTING_SQL BY_IDS, 14, put_routing, del_routing },
	{ "model_fallbacks", FALLBACKS_SQL, FALLBACKS_SQL BY_IDS, 5, put_fallback, del_fallback },
	{ "virtual_models", VIRTUAL_SQL, VIRTUAL_SQL BY_IDS, 3, put_virtual, del_virtual },
	{ "virtual_model_members", MEMBERS_VM_SQL, MEMBERS_VM_SQL BY_IDS, 4, put_vmember, del_vmember },
	/* limits */
	{ "limits", LIMITS_SQL, LIMITS_SQL AND_IDS, LIMDEFS_ROW_COLS, put_limit, del_limit },
};
#define PS_NTABLES (sizeof(ps_tables) / sizeof(ps_tables[0]))

/* ---- timers and the socket event -------------------------------------------------- */

static void timer_arm(struct event *ev, unsigned ms)
{
	struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000 };

	event_add(ev, &tv);
}

static double ms_since(const struct timespec *t0)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t0->tv_sec) * 1e3 + (double)(now.tv_nsec - t0->tv_nsec) / 1e6;
}

/* Watches the connection's current socket for `what` (EV_READ and/or EV_WRITE).
 * While connecting, libpq may close a socket and open another (next host or address)
 * that can get the same number, which epoll would not report: `renew` registers the
 * event again in any case. */
static void ps_watch_fd(struct pgsync *ps, short what, int renew)
{
	evutil_socket_t fd = PQsocket(ps->conn);

	if (!renew && ps->io && fd == ps->io_fd && what == ps->io_what)
		return;
	if (ps->io)
		event_free(ps->io);
	ps->io = event_new(ps->base, fd, what | EV_PERSIST, ps_io_cb, ps);
	ps->io_fd = fd;
	ps->io_what = what;
	event_add(ps->io, NULL);
}

static void ps_watch(struct pgsync *ps, short what)
{
	ps_watch_fd(ps, what, 0);
}

/* First line of libpq's message for the connection: host and reason, never the
 * connection string or a password. */
static const char *ps_errmsg(const struct pgsync *ps, char *buf, size_t size)
{
	const char *m = ps->conn ? PQerrorMessage(ps->conn) : "";
	size_t n = strcspn(m, "\n");

	if (n >= size)
		n = size - 1;
	memcpy(buf, m, n);
	buf[n] = '\0';
	return n ? buf : "no detail";
}

/* ---- connection life cycle -------------------------------------------------------- */

/* Forgets the connection and whatever was in flight. The store is left as it is. */
static void ps_drop(struct pgsync *ps)
{
	if (ps->io)
		event_free(ps->io);
	ps->io = NULL;
	ps->io_fd = -1;
	if (ps->conn)
		PQfinish(ps->conn);
	ps->conn = NULL;
	state_free(ps->loading);
	ps->loading = NULL;
	ps->npending = 0; /* the next connection starts with a full load */
	ps->nbatch = 0;
	ps->reload_wanted = 0;
	ps->query_failed = 0;
	event_del(ps->timeout_timer);
	ps->phase = PH_DOWN;
}

static void ps_schedule_retry(struct pgsync *ps)
{
	timer_arm(ps->retry_timer, ps->backoff_ms);
	ps->backoff_ms *= 2;
	if (ps->backoff_ms > ps->retry_max_ms)
		ps->backoff_ms = ps->retry_max_ms;
}

/* Every failure ends here: log, count, drop the connection, retry after the back-off.
 * The detail is libpq's message for the connection unless `detail` is given. */
static void ps_fail_detail(struct pgsync *ps, const char *what, const char *detail)
{
	char buf[256];

	ps->st.errors++;
	log_warn("database: %s: %s; retrying in %u ms", what,
		 detail ? detail : ps_errmsg(ps, buf, sizeof(buf)), ps->backoff_ms);
	ps_drop(ps);
	ps->st.status = PGSYNC_DOWN;
	ps_schedule_retry(ps);
}

static void ps_fail(struct pgsync *ps, const char *what)
{
	ps_fail_detail(ps, what, NULL);
}

/* Server notices and asynchronous errors (e.g. "terminating connection due to
 * administrator command") go to the log instead of libpq's default stderr print. */
static void ps_notice(void *arg, const char *message)
{
	size_t n = strcspn(message, "\n");

	(void)arg;
	log_info("database: server says: %.*s", (int)(n < 300 ? n : 300), message);
}

static void ps_connect(struct pgsync *ps)
{
	const char *const keys[] = { "fallback_application_name", "dbname", NULL };
	const char *const vals[] = { PS_APP_NAME, ps->conninfo, NULL };

	ps->conn = PQconnectStartParams(keys, vals, 1);
	if (!ps->conn) {
		log_error("database: out of memory starting a connection");
		abort();
	}
	if (PQstatus(ps->conn) == CONNECTION_BAD) {
		ps_fail(ps, "cannot start connecting");
		return;
	}
	PQsetNoticeProcessor(ps->conn, ps_notice, NULL);
	ps->phase = PH_CONNECTING;
	timer_arm(ps->timeout_timer, ps->timeout_ms);
	ps_watch_fd(ps, EV_WRITE, 1); /* libpq: poll as if PGRES_POLLING_WRITING at first */
}

/* Sends what libpq has buffered; watches for writability until it is all out. */
static void ps_flush(struct pgsync *ps)
{
	int r = PQflush(ps->conn);

	if (r < 0)
		ps_fail(ps, "send failed");
	else
		ps_watch(ps, r ? EV_READ | EV_WRITE : EV_READ);
}

/* Sends one query (params: one text parameter, or NULL for none). */
static void ps_send(struct pgsync *ps, enum ps_phase phase, const char *sql, const char *param,
		    int single_row)
{
	int ok = param ? PQsendQueryParams(ps->conn, sql, 1, NULL, &param, NULL, NULL, 0)
		       : PQsendQuery(ps->conn, sql);

	if (!ok) {
		ps_fail(ps, "query not sent");
		return;
	}
	if (single_row)
		PQsetSingleRowMode(ps->conn);
	ps->phase = phase;
	ps->query_failed = 0;
	timer_arm(ps->timeout_timer, ps->timeout_ms);
	ps_flush(ps);
}

static void ps_connected(struct pgsync *ps)
{
	const char *host = PQhost(ps->conn), *port = PQport(ps->conn), *db = PQdb(ps->conn);

	log_info("database: connected to %s:%s/%s", host ? host : "", port ? port : "",
		 db ? db : "");
	if (PQsetnonblocking(ps->conn, 1) != 0) {
		ps_fail(ps, "cannot make the connection non-blocking");
		return;
	}
	ps_send(ps, PH_LISTEN, "LISTEN " PS_CHANNEL, NULL, 0);
}

static void ps_connect_step(struct pgsync *ps)
{
	switch (PQconnectPoll(ps->conn)) {
	case PGRES_POLLING_READING: ps_watch_fd(ps, EV_READ, 1); break;
	case PGRES_POLLING_WRITING: ps_watch_fd(ps, EV_WRITE, 1); break;
	case PGRES_POLLING_OK: ps_connected(ps); break;
	default: ps_fail(ps, "connection failed"); break;
	}
}

/* ---- full load -------------------------------------------------------------------- */

static void ps_load_send_step(struct pgsync *ps)
{
	int step = ps->load_step;

	if (step == 0)
		ps_send(ps, PH_LOAD, "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY", NULL, 0);
	else if (step <= (int)PS_NTABLES)
		ps_send(ps, PH_LOAD, ps_tables[step - 1].select_all, NULL, 1);
	else
		ps_send(ps, PH_LOAD, "COMMIT", NULL, 0);
}

static void ps_load_start(struct pgsync *ps)
{
	/* Queued changes were committed before this load's snapshot: it contains them. */
	ps->npending = 0;
	ps->reload_wanted = 0;
	state_free(ps->loading);
	ps->loading = state_new();
	ps->load_step = 0;
	clock_gettime(CLOCK_MONOTONIC, &ps->load_start);
	ps_load_send_step(ps);
}

static void ps_load_finish(struct pgsync *ps)
{
	struct state *fresh = ps->loading;
	size_t nt = state_count_tenants(fresh), nk = state_count_keys(fresh);
	size_t nm = state_count_models(fresh);

	ps->loading = NULL;
	store_replace(fresh);
	ps->st.full_loads++;
	ps->st.last_load_unix = (int64_t)time(NULL);
	if (ps->st.status != PGSYNC_UP)
		log_info("database: catalogue loaded (%zu tenants, %zu keys, %zu models) in %.1f ms",
			 nt, nk, nm, ms_since(&ps->load_start));
	else
		log_debug("database: resync (%zu tenants, %zu keys, %zu models) in %.1f ms", nt, nk,
			  nm, ms_since(&ps->load_start));
	ps->st.status = PGSYNC_UP;
	ps->backoff_ms = PS_BACKOFF_MIN_MS;
	ps->phase = PH_READY;
}

static void ps_load_rows(struct pgsync *ps, const PGresult *r)
{
	const struct ps_table *t = &ps_tables[ps->load_step - 1];
	int64_t id;

	if (PQnfields(r) != t->ncols) {
		log_error("database: %s: expected %d columns, got %d", t->name, t->ncols, PQnfields(r));
		ps->query_failed = 1;
		return;
	}
	for (int i = 0, n = PQntuples(r); i < n; i++)
		t->put(ps->loading, r, i, &id);
}

/* ---- incremental changes ---------------------------------------------------------- */

/* The first ps_tables entry at or after `from` reading table `name`. Several entries
 * may read one table (the catalogue and the tenant policy parts of a row). */
static const struct ps_table *ps_table_named(const char *name, size_t len, size_t from)
{
	for (size_t i = from; i < PS_NTABLES; i++)
		if (strlen(ps_tables[i].name) == len && memcmp(ps_tables[i].name, name, len) == 0)
			return &ps_tables[i];
	return NULL;
}

static void ps_queue(struct pgsync *ps, const struct ps_table *t, int64_t id)
{
	if (ps->reload_wanted)
		return; /* the full load that follows starts after this change committed */
	for (size_t i = 0; i < ps->npending; i++)
		if (ps->pending[i].table == t && ps->pending[i].id == id)
			return;
	if (ps->npending == PS_PENDING_MAX) {
		log_info("database: more than %d changes queued; reloading everything instead",
			 PS_PENDING_MAX);
		ps->npending = 0;
		ps->reload_wanted = 1;
		return;
	}
	ps->pending[ps->npending].table = t;
	ps->pending[ps->npending++].id = id;
}

/* Payload "<table>:<op>:<id>". TRUNCATE ("<table>:T:0") asks for a full load. Unknown
 * tables (from a newer schema) are ignored; a malformed payload is logged. */
static void ps_on_notify(struct pgsync *ps, const char *payload)
{
	const char *c1 = strchr(payload, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
	const struct ps_table *t;
	char *end;
	long long id;

	ps->st.notifications++;
	if (!c2 || c2 != c1 + 2) {
		log_warn("database: malformed change notification ignored");
		return;
	}
	t = ps_table_named(payload, (size_t)(c1 - payload), 0);
	if (!t) {
		log_debug("database: change to an unknown table ignored");
		return;
	}
	if (c1[1] == 'T') {
		ps->reload_wanted = 1;
		return;
	}
	errno = 0;
	id = strtoll(c2 + 1, &end, 10);
	if (errno || *end || end == c2 + 1 || id <= 0) {
		log_warn("database: malformed change notification ignored");
		return;
	}
	for (; t; t = ps_table_named(t->name, strlen(t->name), (size_t)(t - ps_tables) + 1))
		ps_queue(ps, t, (int64_t)id);
}

static void ps_drain_notifies(struct pgsync *ps)
{
	PGnotify *n;

	while ((n = PQnotifies(ps->conn)) != NULL) {
		if (strcmp(n->relname, PS_CHANNEL) == 0)
			ps_on_notify(ps, n->extra);
		PQfreemem(n);
	}
}

/* Moves up to PS_BATCH_MAX queued ids of the first queued table into the batch. */
static void ps_take_batch(struct pgsync *ps)
{
	size_t keep = 0;

	ps->batch_table = ps->pending[0].table;
	ps->nbatch = 0;
	for (size_t i = 0; i < ps->npending; i++) {
		if (ps->pending[i].table == ps->batch_table && ps->nbatch < PS_BATCH_MAX) {
			ps->batch_seen[ps->nbatch] = 0;
			ps->batch_ids[ps->nbatch++] = ps->pending[i].id;
		} else {
			ps->pending[keep++] = ps->pending[i];
		}
	}
	ps->npending = keep;
}

static void ps_fetch_start(struct pgsync *ps)
{
	char arr[PS_BATCH_MAX * 21 + 3];
	size_t used = 0;

	ps_take_batch(ps);
	arr[used++] = '{';
	for (size_t i = 0; i < ps->nbatch; i++)
		used += (size_t)snprintf(arr + used, sizeof(arr) - used, "%s%lld", i ? "," : "",
					 (long long)ps->batch_ids[i]);
	arr[used++] = '}';
	arr[used] = '\0';
	ps_send(ps, PH_FETCH, ps->batch_table->select_ids, arr, 0);
}

static void ps_batch_mark(struct pgsync *ps, int64_t id)
{
	for (size_t i = 0; i < ps->nbatch; i++)
		if (ps->batch_ids[i] == id)
			ps->batch_seen[i] = 1;
}

static void ps_fetch_rows(struct pgsync *ps, const PGresult *r)
{
	const struct ps_table *t = ps->batch_table;
	struct state *s;
	int64_t id;

	if (PQnfields(r) != t->ncols) {
		log_error("database: %s: expected %d columns, got %d", t->name, t->ncols, PQnfields(r));
		ps->query_failed = 1;
		return;
	}
	s = store_write_begin();
	for (int i = 0, n = PQntuples(r); i < n; i++)
		if (t->put(s, r, i, &id) == 0)
			ps_batch_mark(ps, id);
	store_write_end();
}

/* Ids asked for and not returned were deleted (or their row is unusable). */
static void ps_fetch_finish(struct pgsync *ps)
{
	struct state *s = store_write_begin();

	for (size_t i = 0; i < ps->nbatch; i++)
		if (!ps->batch_seen[i])
			ps->batch_table->del(s, ps->batch_ids[i]);
	store_write_end();
	log_debug("database: applied %zu change(s) to %s", ps->nbatch, ps->batch_table->name);
	ps->nbatch = 0;
	ps->phase = PH_READY;
}

/* ---- results ---------------------------------------------------------------------- */

static void ps_on_result(struct pgsync *ps, const PGresult *r)
{
	ExecStatusType st = PQresultStatus(r);

	if (st != PGRES_SINGLE_TUPLE && st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
		char msg[256];
		const char *m = PQresultErrorMessage(r);
		size_t n = strcspn(m, "\n");

		snprintf(msg, sizeof(msg), "%.*s", (int)(n < 200 ? n : 200), m);
		log_warn("database: query failed: %s", msg[0] ? msg : PQresStatus(st));
		ps->query_failed = 1;
		return;
	}
	if (ps->query_failed || st == PGRES_COMMAND_OK)
		return;
	if (ps->phase == PH_LOAD && ps->load_step >= 1 && ps->load_step <= (int)PS_NTABLES)
		ps_load_rows(ps, r);
	else if (ps->phase == PH_FETCH)
		ps_fetch_rows(ps, r);
}

/* The query in flight has returned all its results. */
static void ps_on_query_done(struct pgsync *ps)
{
	if (ps->query_failed) {
		ps_fail(ps, "query failed");
		return;
	}
	switch (ps->phase) {
	case PH_LISTEN: ps_load_start(ps); break;
	case PH_LOAD:
		if (++ps->load_step < (int)PS_NTABLES + 2) /* BEGIN, the tables, COMMIT */
			ps_load_send_step(ps);
		else
			ps_load_finish(ps);
		break;
	case PH_FETCH: ps_fetch_finish(ps); break;
	default: break;
	}
}

static int ps_in_query(const struct pgsync *ps)
{
	return ps->phase == PH_LISTEN || ps->phase == PH_LOAD || ps->phase == PH_FETCH;
}

/* Takes complete results. After PS_RESULTS_PER_WAKE of them it yields to the loop
 * (other events on the control thread) and comes back through an activated event. */
static void ps_read_results(struct pgsync *ps)
{
	int budget = PS_RESULTS_PER_WAKE;

	while (ps->conn && ps_in_query(ps) && !PQisBusy(ps->conn)) {
		PGresult *r;

		if (budget-- == 0) {
			event_active(ps->io, EV_READ, 0);
			return;
		}
		r = PQgetResult(ps->conn);
		if (!r) {
			ps_on_query_done(ps);
			continue;
		}
		ps_on_result(ps, r);
		PQclear(r);
	}
}

/* Chooses the next query once nothing is in flight: a full load when one is due, else
 * the queued changes. Idle, the connection only listens (no timeout). */
static void ps_next_job(struct pgsync *ps)
{
	if (ps->phase != PH_READY)
		return;
	if (ps->reload_wanted)
		ps_load_start(ps);
	else if (ps->npending)
		ps_fetch_start(ps);
	else
		event_del(ps->timeout_timer);
}

static void ps_conn_io(struct pgsync *ps, short what)
{
	if (what & EV_READ) {
		if (!PQconsumeInput(ps->conn)) {
			ps_fail(ps, "connection lost");
			return;
		}
		if (ps_in_query(ps))
			timer_arm(ps->timeout_timer, ps->timeout_ms); /* the server is alive */
		ps_drain_notifies(ps);
	}
	if (ps->io_what & EV_WRITE) {
		ps_flush(ps);
		if (!ps->conn)
			return;
	}
	ps_read_results(ps);
	if (!ps->conn)
		return;
	/* libpq parses what follows a result (a NOTIFY that arrived with it) only once the
	 * result has been taken: collect those now, or they would wait for the next byte
	 * on the socket. */
	ps_drain_notifies(ps);
	ps_next_job(ps);
}

static void ps_io_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pgsync *ps = arg;

	(void)fd;
	if (ps->phase == PH_CONNECTING)
		ps_connect_step(ps);
	else if (ps->conn)
		ps_conn_io(ps, what);
}

/* ---- timers ----------------------------------------------------------------------- */

static void ps_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	ps_connect(arg);
}

static void ps_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pgsync *ps = arg;
	char detail[64];

	(void)fd;
	(void)what;
	snprintf(detail, sizeof(detail), "no answer within %u ms", ps->timeout_ms);
	ps_fail_detail(ps, ps->phase == PH_CONNECTING ? "connect timed out" : "query timed out",
		       detail);
}

static void ps_resync_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pgsync *ps = arg;

	(void)fd;
	(void)what;
	if (ps->phase == PH_DOWN || ps->phase == PH_CONNECTING || ps->phase == PH_LISTEN)
		return; /* a load follows the connection anyway */
	if (ps->phase != PH_LOAD)
		ps->reload_wanted = 1;
	ps_next_job(ps);
}

/* ---- public API ------------------------------------------------------------------- */

static int ps_conninfo_ok(const char *conninfo)
{
	char *err = NULL;
	PQconninfoOption *o;

	if (!conninfo || !conninfo[0])
		return 0;
	o = PQconninfoParse(conninfo, &err);
	PQfreemem(err); /* may quote the string, so it is not logged */
	if (!o)
		return 0;
	PQconninfoFree(o);
	return 1;
}

static void ps_set_opts(struct pgsync *ps, const struct pgsync_opts *o)
{
	ps->resync_ms = o->resync_interval_ms ? o->resync_interval_ms : 60000;
	ps->timeout_ms = o->query_timeout_ms ? o->query_timeout_ms : 5000;
	ps->retry_max_ms = o->retry_max_ms ? o->retry_max_ms : 5000;
	if (ps->retry_max_ms < PS_BACKOFF_MIN_MS)
		ps->retry_max_ms = PS_BACKOFF_MIN_MS;
	if (ps->backoff_ms > ps->retry_max_ms)
		ps->backoff_ms = ps->retry_max_ms;
	event_del(ps->resync_timer);
	timer_arm(ps->resync_timer, ps->resync_ms);
}

struct pgsync *pgsync_start(struct event_base *base, const struct pgsync_opts *opts)
{
	struct pgsync *ps;

	if (!base || !opts || !ps_conninfo_ok(opts->conninfo)) {
		log_error("database: the connection string is missing or cannot be parsed");
		return NULL;
	}
	ps = xcalloc(1, sizeof(*ps));
	ps->base = base;
	ps->conninfo = xstrdup(opts->conninfo);
	ps->io_fd = -1;
	ps->backoff_ms = PS_BACKOFF_MIN_MS;
	ps->retry_timer = evtimer_new(base, ps_retry_cb, ps);
	ps->timeout_timer = evtimer_new(base, ps_timeout_cb, ps);
	ps->resync_timer = event_new(base, -1, EV_PERSIST, ps_resync_cb, ps);
	ps->st.status = PGSYNC_CONNECTING;
	ps_set_opts(ps, opts);
	ps_connect(ps);
	return ps;
}

void pgsync_reconfigure(struct pgsync *ps, const struct pgsync_opts *opts)
{
	if (!ps || !opts)
		return;
	ps_set_opts(ps, opts);
	if (opts->conninfo && strcmp(opts->conninfo, ps->conninfo) == 0)
		return;
	if (!ps_conninfo_ok(opts->conninfo)) {
		log_error("database: new connection string cannot be parsed; keeping the old one");
		return;
	}
	free(ps->conninfo);
	ps->conninfo = xstrdup(opts->conninfo);
	log_info("database: connection settings changed; reconnecting");
	ps_drop(ps);
	event_del(ps->retry_timer);
	if (ps->st.status == PGSYNC_UP)
		ps->st.status = PGSYNC_DOWN;
	ps->backoff_ms = PS_BACKOFF_MIN_MS;
	ps_connect(ps);
}

void pgsync_reload(struct pgsync *ps)
{
	if (!ps || ps->phase == PH_DOWN || ps->phase == PH_CONNECTING || ps->phase == PH_LISTEN)
		return; /* a full load follows the connection anyway */
	ps->reload_wanted = 1;
	ps_next_job(ps);
}

void pgsync_stats(const struct pgsync *ps, struct pgsync_stats *out)
{
	if (!ps) {
		memset(out, 0, sizeof(*out));
		out->status = PGSYNC_DOWN;
		return;
	}
	*out = ps->st;
}

void pgsync_stop(struct pgsync *ps)
{
	if (!ps)
		return;
	ps_drop(ps);
	event_free(ps->retry_timer);
	event_free(ps->timeout_timer);
	event_free(ps->resync_timer);
	free(ps->conninfo);
	free(ps);
}
