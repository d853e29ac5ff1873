/*
 * pg/rows: the catalogue tables pgsync reads (see rows.h). A row whose columns map onto a
 * struct is read by a table of field rules (util/row.h) next to its SELECT; only rows
 * that need a decision (a hex hash, an IP list, a sealed credential, a list of names)
 * keep a few lines of their own.
 */
#include "pg/rows.h"

#include "pg/ident_rows.h"

#include "lb/conf.h"
#include "lb/table.h"
#include "limit/defs.h"
#include "pipeline/pipeline.h"
#include "state/endpoints.h"
#include "state/objects.h"
#include "state/policy.h"
#include "state/routing.h"
#include "util/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BY_IDS " WHERE id = ANY($1::bigint[])"
#define AND_IDS " AND id = ANY($1::bigint[])"
#define NFIELDS(f) (sizeof(f) / sizeof((f)[0]))

/* ---- column conversions ----------------------------------------------------------- */

/* Unknown status text fails closed (disabled). */
static void conv_status(const char *v, void *field)
{
	*(enum st_status *)field = strcmp(v, "active") == 0    ? ST_ACTIVE
				   : strcmp(v, "revoked") == 0 ? ST_REVOKED : ST_DISABLED;
}

/* Active or not (tenants and models have no revoked state). */
static void conv_active(const char *v, void *field)
{
	*(enum st_status *)field = strcmp(v, "active") == 0 ? ST_ACTIVE : ST_DISABLED;
}

/* Tenant labels (a flat JSON object, sql/004) for the info metric: kept when they fit
 * ST_LABELS_MAX, else none (the tenant itself still loads). */
static void conv_labels(const char *v, void *field)
{
	char *out = field;

	if (strlen(v) < ST_LABELS_MAX)
		memcpy(out, v, strlen(v) + 1);
	else
		out[0] = '\0';
}

/* Service type names separated by ',' as a bit set of policy_service_bit(); unknown
 * names (a newer schema) are ignored, so they enable nothing. */
static uint32_t service_mask(const char *p)
{
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

static void conv_services(const char *v, void *field)
{
	*(uint32_t *)field = service_mask(v);
}

/* Capability flags as a string of '1'/'0': vision, tools, json_mode, streaming. */
static void conv_caps(const char *v, void *field)
{
	static const uint32_t bits[] = { ST_CAP_VISION, ST_CAP_TOOLS, ST_CAP_JSON_MODE, ST_CAP_STREAMING };
	uint32_t caps = 0;

	for (size_t i = 0; i < sizeof(bits) / sizeof(bits[0]) && v[i]; i++)
		if (v[i] == '1')
			caps |= bits[i];
	*(uint32_t *)field = caps;
}

/* ---- the catalogue (state/state.h) ------------------------------------------------ */

#define TENANTS_SQL "SELECT id, name, status, labels::text FROM jairouter.tenants"
static const struct row_field tenant_fields[] = {
	ROW_FIELD(RK_I64, struct st_tenant, id),
	ROW_FIELD(RK_STR, struct st_tenant, name),
	ROW_CUSTOM(conv_active, struct st_tenant, status),
	ROW_CUSTOM(conv_labels, struct st_tenant, labels),
};

static int put_tenant(struct state *s, const struct row *r, int64_t *id)
{
	struct st_tenant t;

	*id = row_i64(r, 0);
	if (row_read(r, tenant_fields, NFIELDS(tenant_fields), &t, sizeof(t)) < 0)
		return -1;
	state_put_tenant(s, &t);
	return 0;
}

#define KEYS_SQL                                                                           \
	"SELECT id, tenant_id, encode(key_hash, 'hex'), prefix, status, "                 \
	"coalesce(floor(extract(epoch FROM expires_at))::bigint, 0) FROM jairouter.api_keys"
static const struct row_field key_fields[] = {
	ROW_FIELD(RK_I64, struct st_key, id),
	ROW_FIELD(RK_I64, struct st_key, tenant_id),
	ROW_FIELD(RK_HEX, struct st_key, hash),
	ROW_FIELD(RK_STR, struct st_key, prefix),
	ROW_CUSTOM(conv_status, struct st_key, status),
	ROW_FIELD(RK_I64, struct st_key, expires_at),
};

static int put_key(struct state *s, const struct row *r, int64_t *id)
{
	struct st_key k;

	*id = row_i64(r, 0);
	if (row_read(r, key_fields, NFIELDS(key_fields), &k, sizeof(k)) < 0) {
		log_event(LOG_WARN, "db_key_hash_malformed", LOG_FIELDS(LOG_I("key_id", *id)),
			  "database: api_keys row %lld has a malformed key_hash; skipped",
			  (long long)*id);
		return -1;
	}
	state_put_key(s, &k);
	return 0;
}

#define MODELS_SQL                                                                         \
	"SELECT id, name, backend, status, floor(extract(epoch FROM created_at))::bigint, " \
	"coalesce(upstream_name, ''), provider, array_to_string(services, ','), "          \
	"concat(vision::int, tools::int, json_mode::int, streaming::int), "                  \
	"coalesce(context_length, 0), coalesce(price_input_per_mtok, -1), "                \
	"coalesce(price_output_per_mtok, -1) FROM jairouter.models"
static const struct row_field model_fields[] = {
	ROW_FIELD(RK_I64, struct st_model, id),
	ROW_FIELD(RK_STR, struct st_model, name),
	ROW_FIELD(RK_STR, struct st_model, backend),
	ROW_CUSTOM(conv_active, struct st_model, status),
	ROW_FIELD(RK_I64, struct st_model, created),
	ROW_FIELD(RK_STR, struct st_model, upstream),
	ROW_FIELD(RK_STR, struct st_model, provider),
	ROW_CUSTOM(conv_services, struct st_model, services),
	ROW_CUSTOM(conv_caps, struct st_model, caps),
	ROW_FIELD(RK_I32, struct st_model, context_length),
	ROW_FIELD(RK_F64, struct st_model, price_in),
	ROW_FIELD(RK_F64, struct st_model, price_out),
};

static int put_model(struct state *s, const struct row *r, int64_t *id)
{
	struct st_model m;

	*id = row_i64(r, 0);
	if (row_read(r, model_fields, NFIELDS(model_fields), &m, sizeof(m)) < 0)
		return -1;
	state_put_model(s, &m);
	return 0;
}

#define ALIASES_SQL "SELECT id, model_id, alias FROM jairouter.model_aliases"
static const struct row_field alias_fields[] = {
	ROW_FIELD(RK_I64, struct st_alias, id),
	ROW_FIELD(RK_I64, struct st_alias, model_id),
	ROW_FIELD(RK_STR, struct st_alias, alias),
};

static int put_alias(struct state *s, const struct row *r, int64_t *id)
{
	struct st_alias a;

	*id = row_i64(r, 0);
	if (row_read(r, alias_fields, NFIELDS(alias_fields), &a, sizeof(a)) < 0)
		return -1;
	state_put_alias(s, &a);
	return 0;
}

/* ---- tenant policy (state/policy.h; sql/004_tenant_policy.sql) --------------------- */

#define TENANT_POLICY_SQL                                                                  \
	"SELECT id, coalesce(array_to_string(allowed_services, ','), '*'), "               \
	"coalesce(array_to_string(ip_allow, ','), ''), coalesce(settings->>'on_error', ''), " \
	"coalesce(settings->>'masking', ''), coalesce(settings->>'files_model', '') "        \
	"FROM jairouter.tenants"

/* "*" (NULL in SQL) = every service; else names separated by ','. Unknown names are
 * ignored (a newer schema), so they grant nothing. */
static int put_tenant_policy(struct state *s, const struct row *r, int64_t *id)
{
	struct pol_tenant t;
	const char *ips = row_text(r, 2), *masking = row_text(r, 4);

	memset(&t, 0, sizeof(t));
	t.id = *id = row_i64(r, 0);
	t.services = row_is(r, 1, "*") ? POL_SERVICES_ALL : service_mask(row_text(r, 1));
	t.on_error = row_is(r, 3, "fail-open") ? POL_FAIL_OPEN
		     : row_is(r, 3, "fail-closed") ? POL_FAIL_CLOSED : POL_ON_ERROR_DEFAULT;
	t.masking = masking[0] ? strcmp(masking, "true") == 0 : -1;
	snprintf(t.files_model, sizeof(t.files_model), "%s", row_text(r, 5));
	if (policy_iplist_parse(&t.ips, ips, strlen(ips)) < 0)
		log_event(LOG_WARN, "db_tenant_allowlist_unreadable",
			  LOG_FIELDS(LOG_I("tenant_id", t.id)),
			  "database: tenant %lld has an unreadable IP allow-list; "
			  "it admits no address",
			  (long long)t.id);
	policy_put_tenant(state_policy(s), &t);
	policy_iplist_free(&t.ips);
	return 0;
}

static void del_tenant_policy(struct state *s, int64_t id)
{
	policy_del_tenant(state_policy(s), id);
}

#define KEY_POLICY_SQL                                                                     \
	"SELECT id, coalesce(array_to_string(models, E'\\n'), ''), "                        \
	"coalesce(array_to_string(ip_allow, ','), '') FROM jairouter.api_keys "            \
	"WHERE (models IS NOT NULL OR ip_allow IS NOT NULL)"

static int put_key_policy(struct state *s, const struct row *r, int64_t *id)
{
	*id = row_i64(r, 0);
	policy_put_key(state_policy(s), *id, row_text(r, 1), row_text(r, 2));
	return 0;
}

static void del_key_policy(struct state *s, int64_t id)
{
	policy_del_key(state_policy(s), id);
}

#define PRIVATE_MODELS_SQL "SELECT id FROM jairouter.models WHERE visibility = 'private'"

static int put_private_model(struct state *s, const struct row *r, int64_t *id)
{
	*id = row_i64(r, 0);
	policy_put_private_model(state_policy(s), *id);
	return 0;
}

static void del_private_model(struct state *s, int64_t id)
{
	policy_del_private_model(state_policy(s), id);
}

#define GRANTS_SQL                                                                         \
	"SELECT id, tenant_id, coalesce(model_id, 0), coalesce(group_id, 0), effect "      \
	"FROM jairouter.tenant_grants"

/* An effect other than "allow" (a newer schema) denies. */
static void conv_deny(const char *v, void *field)
{
	*(int *)field = strcmp(v, "allow") != 0;
}

static const struct row_field grant_fields[] = {
	ROW_FIELD(RK_I64, struct pol_grant, id),
	ROW_FIELD(RK_I64, struct pol_grant, tenant_id),
	ROW_FIELD(RK_I64, struct pol_grant, model_id),
	ROW_FIELD(RK_I64, struct pol_grant, group_id),
	ROW_CUSTOM(conv_deny, struct pol_grant, deny),
};

static int put_grant(struct state *s, const struct row *r, int64_t *id)
{
	struct pol_grant g;

	*id = row_i64(r, 0);
	if (row_read(r, grant_fields, NFIELDS(grant_fields), &g, sizeof(g)) < 0)
		return -1;
	policy_put_grant(state_policy(s), &g);
	return 0;
}

static void del_grant(struct state *s, int64_t id)
{
	policy_del_grant(state_policy(s), id);
}

#define MEMBERS_SQL "SELECT id, group_id, model_id FROM jairouter.model_group_members"
static const struct row_field member_fields[] = {
	ROW_FIELD(RK_I64, struct pol_member, id),
	ROW_FIELD(RK_I64, struct pol_member, group_id),
	ROW_FIELD(RK_I64, struct pol_member, model_id),
};

static int put_member(struct state *s, const struct row *r, int64_t *id)
{
	struct pol_member m;

	*id = row_i64(r, 0);
	if (row_read(r, member_fields, NFIELDS(member_fields), &m, sizeof(m)) < 0)
		return -1;
	policy_put_member(state_policy(s), &m);
	return 0;
}

static void del_member(struct state *s, int64_t id)
{
	policy_del_member(state_policy(s), id);
}

#define CREDENTIALS_SQL                                                                    \
	"SELECT id, scope, coalesce(backend, ''), coalesce(model_id, 0), header, scheme, "  \
	"key_id, ciphertext FROM jairouter.provider_credentials"

static enum pol_header header_of(const struct row *r, int col)
{
	return row_is(r, col, "authorization") ? POL_HDR_AUTHORIZATION
	       : row_is(r, col, "x-api-key") ? POL_HDR_X_API_KEY
	       : row_is(r, col, "api-key") ? POL_HDR_API_KEY : POL_HDR_NONE;
}

/* The sealed value is opened here, on the control thread; a row that does not open is
 * kept as broken so that requests needing it are refused instead of sent without it. */
static int put_credential(struct state *s, const struct row *r, int64_t *id)
{
	struct pol_cred_row c;
	char sealed[8300];

	c.id = *id = row_i64(r, 0);
	c.model_scope = row_is(r, 1, "model");
	c.backend = row_text(r, 2);
	c.model_id = row_i64(r, 3);
	c.header = header_of(r, 4);
	c.bearer = row_is(r, 5, "bearer");
	snprintf(sealed, sizeof(sealed), "%s:%s", row_text(r, 6), row_text(r, 7));
	c.sealed = sealed;
	policy_put_credential(state_policy(s), &c);
	return 0;
}

static void del_credential(struct state *s, int64_t id)
{
	policy_del_credential(state_policy(s), id);
}

/* ---- adapter rows (state/endpoints.h; sql/008_adapter.sql) ------------------------- */

#define ENDPOINTS_SQL                                                                      \
	"SELECT id, backend, coalesce(base_url, ''), coalesce(region, ''), "                \
	"coalesce(api_version, ''), meter_streams FROM jairouter.endpoints"
static const struct row_field endpoint_fields[] = {
	ROW_FIELD(RK_I64, struct st_endpoint, id),
	ROW_FIELD(RK_STR, struct st_endpoint, backend),
	ROW_FIELD(RK_STR, struct st_endpoint, base_url),
	ROW_FIELD(RK_STR, struct st_endpoint, region),
	ROW_FIELD(RK_STR, struct st_endpoint, api_version),
	ROW_FIELD(RK_IS_T, struct st_endpoint, meter),
};

static int put_endpoint(struct state *s, const struct row *r, int64_t *id)
{
	struct st_endpoint e;

	*id = row_i64(r, 0);
	if (row_read(r, endpoint_fields, NFIELDS(endpoint_fields), &e, sizeof(e)) < 0)
		return -1;
	adapter_put_endpoint(state_adapter(s), &e);
	return 0;
}

static void del_endpoint(struct state *s, int64_t id)
{
	adapter_del_endpoint(state_adapter(s), id);
}

#define MASKING_SQL                                                                        \
	"SELECT id, coalesce(settings->>'masking', ''), coalesce(masking_policy::text, '') " \
	"FROM jairouter.tenants"
static const struct row_field masking_fields[] = {
	ROW_FIELD(RK_I64, struct st_masking, tenant_id),
	ROW_FIELD(RK_IS_TRUE, struct st_masking, enabled),
	ROW_FIELD(RK_STR, struct st_masking, policy),
};

static int put_masking(struct state *s, const struct row *r, int64_t *id)
{
	struct st_masking m;

	*id = row_i64(r, 0);
	if (row_read(r, masking_fields, NFIELDS(masking_fields), &m, sizeof(m)) < 0)
		return -1;
	adapter_put_masking(state_adapter(s), &m);
	return 0;
}

static void del_masking(struct state *s, int64_t id)
{
	adapter_del_masking(state_adapter(s), id);
}

/* ---- stored API objects (state/objects.h; sql/012_api_objects.sql) ---------------- */

#define OBJECTS_SQL                                                                        \
	"SELECT id, kind, object_id, tenant_id, coalesce(model_id, 0), coalesce(object, ''), " \
	"coalesce(key_id, 0) "                                                               \
	"FROM jairouter.api_objects"

static void conv_kind(const char *v, void *field)
{
	*(int *)field = obj_kind_of(v);
}

static const struct row_field object_fields[] = {
	ROW_FIELD(RK_I64, struct st_object, id),
	ROW_CUSTOM(conv_kind, struct st_object, kind),
	ROW_FIELD(RK_STR, struct st_object, object_id),
	ROW_FIELD(RK_I64, struct st_object, tenant_id),
	ROW_FIELD(RK_I64, struct st_object, model_id),
};

static int put_object(struct state *s, const struct row *r, int64_t *id)
{
	struct st_object o;
	const char *json;

	memset(&o, 0, sizeof(o));
	*id = row_i64(r, 0);
	if (row_read(r, object_fields, NFIELDS(object_fields), &o, sizeof(o)) < 0 || (int)o.kind < 0)
		return -1;
	o.json = NULL;
	o.key_id = row_i64(r, 6);
	json = row_text(r, 5);
	if (json[0] && obj_set_json(&o, json, strlen(json)) < 0)
		o.json = NULL; /* longer than the agent keeps: listed without it */
	objects_put(state_objects(s), &o);
	free(o.json);
	return 0;
}

static void del_object(struct state *s, int64_t id)
{
	objects_del(state_objects(s), id);
}

/* ---- routing rows (lb/conf.h; sql/005_routing.sql) --------------------------------- */

#define ROUTING_SQL                                                                        \
	"SELECT id, coalesce(model_id, 0), coalesce(backend, ''), coalesce(service, ''), "   \
	"coalesce(strategy, ''), coalesce(hash_key, ''), coalesce(hash_bound, -1)::float8, " \
	"coalesce(slow_start_ms, -1), coalesce(breaker_consecutive, -1), "                  \
	"coalesce(breaker_error_rate, -1)::float8, coalesce(breaker_min_requests, -1), "     \
	"coalesce(breaker_window_s, -1), coalesce(breaker_open_ms, -1), "                    \
	"coalesce(breaker_probes, -1) FROM jairouter.routing_policies"

/* The enum pl_service of a service type name; -1 for "" or an unknown name. */
static int service_of(const char *v)
{
	for (int i = 1; v[0] && i < PL_SVC__COUNT; i++)
		if (strcmp(pl_service_name((enum pl_service)i), v) == 0)
			return i;
	return -1;
}

static int put_routing(struct state *s, const struct row *r, int64_t *id)
{
	struct lb_policy_row p;
	const char *st = row_text(r, 4), *hk = row_text(r, 5);

	memset(&p, 0, sizeof(p));
	*id = p.id = row_i64(r, 0);
	p.model_id = row_i64(r, 1);
	row_str(r, 2, p.backend, sizeof(p.backend));
	p.service = service_of(row_text(r, 3));
	if (p.service < 0 && row_text(r, 3)[0])
		return -1; /* a service this agent does not know: not the global row */
	p.strategy = st[0] ? lb_strategy_parse(st, strlen(st)) : -1;
	p.hash_key = hk[0] ? lb_hash_key_parse(hk, strlen(hk)) : -1;
	p.hash_bound = row_f64(r, 6);
	p.slow_start_ms = row_i64(r, 7);
	p.br_consecutive = row_i64(r, 8);
	p.br_error_rate = row_f64(r, 9);
	p.br_min_requests = row_i64(r, 10);
	p.br_window_s = row_i64(r, 11);
	p.br_open_ms = row_i64(r, 12);
	p.br_probes = row_i64(r, 13);
	lb_conf_put_policy(state_lb(s), &p);
	return 0;
}

static void del_routing(struct state *s, int64_t id)
{
	lb_conf_del_policy(state_lb(s), id);
}

#define FALLBACKS_SQL                                                                      \
	"SELECT id, model_id, position, fallback_model_id, array_to_string(reasons, ',') "    \
	"FROM jairouter.model_fallbacks"

/* "down,circuit_open": unknown names are ignored. */
static void conv_reasons(const char *v, void *field)
{
	uint32_t reasons = 0;

	while (*v) {
		size_t n = strcspn(v, ",");
		int w = lb_why_parse(v, n);
		if (w > 0)
			reasons |= 1u << w;
		v += n + (v[n] == ',');
	}
	*(uint32_t *)field = reasons;
}

static const struct row_field fallback_fields[] = {
	ROW_FIELD(RK_I64, struct lb_fallback_row, id),
	ROW_FIELD(RK_I64, struct lb_fallback_row, model_id),
	ROW_FIELD(RK_INT, struct lb_fallback_row, position),
	ROW_FIELD(RK_I64, struct lb_fallback_row, fallback_id),
	ROW_CUSTOM(conv_reasons, struct lb_fallback_row, reasons),
};

static int put_fallback(struct state *s, const struct row *r, int64_t *id)
{
	struct lb_fallback_row f;

	*id = row_i64(r, 0);
	if (row_read(r, fallback_fields, NFIELDS(fallback_fields), &f, sizeof(f)) < 0)
		return -1;
	lb_conf_put_fallback(state_lb(s), &f);
	return 0;
}

static void del_fallback(struct state *s, int64_t id)
{
	lb_conf_del_fallback(state_lb(s), id);
}

#define VIRTUAL_SQL "SELECT id, model_id, coalesce(latency_budget_ms, 0) FROM jairouter.virtual_models"
static const struct row_field virtual_fields[] = {
	ROW_FIELD(RK_I64, struct lb_virtual_row, id),
	ROW_FIELD(RK_I64, struct lb_virtual_row, model_id),
	ROW_FIELD(RK_I64, struct lb_virtual_row, latency_budget_ms),
};

static int put_virtual(struct state *s, const struct row *r, int64_t *id)
{
	struct lb_virtual_row v;

	*id = row_i64(r, 0);
	if (row_read(r, virtual_fields, NFIELDS(virtual_fields), &v, sizeof(v)) < 0)
		return -1;
	lb_conf_put_virtual(state_lb(s), &v);
	return 0;
}

static void del_virtual(struct state *s, int64_t id)
{
	lb_conf_del_virtual(state_lb(s), id);
}

#define MEMBERS_VM_SQL                                                                     \
	"SELECT id, virtual_model_id, position, model_id FROM jairouter.virtual_model_members"
static const struct row_field vmember_fields[] = {
	ROW_FIELD(RK_I64, struct lb_member_row, id),
	ROW_FIELD(RK_I64, struct lb_member_row, virtual_id),
	ROW_FIELD(RK_INT, struct lb_member_row, position),
	ROW_FIELD(RK_I64, struct lb_member_row, model_id),
};

static int put_vmember(struct state *s, const struct row *r, int64_t *id)
{
	struct lb_member_row m;

	*id = row_i64(r, 0);
	if (row_read(r, vmember_fields, NFIELDS(vmember_fields), &m, sizeof(m)) < 0)
		return -1;
	lb_conf_put_member(state_lb(s), &m);
	return 0;
}

static void del_vmember(struct state *s, int64_t id)
{
	lb_conf_del_member(state_lb(s), id);
}

/* ---- limit definitions (limit/defs.h; sql/006_limits_usage.sql) -------------------- */

static int put_limit(struct state *s, const struct row *r, int64_t *id)
{
	char err[160];

	*id = row_i64(r, 0);
	if (r->n < LIMDEFS_ROW_COLS ||
	    limdefs_put_row(state_limits(s), r->v, err, sizeof(err)) < 0) {
		const char *why = r->n < LIMDEFS_ROW_COLS ? "too few columns" : err;

		log_event(LOG_WARN, "db_limits_row_ignored",
			  LOG_FIELDS(LOG_I("row_id", *id), LOG_S("error", why)),
			  "database: limits row %lld ignored: %s", (long long)*id, why);
		limdefs_del(state_limits(s), *id);
		return -1;
	}
	return 0;
}

static void del_limit(struct state *s, int64_t id)
{
	limdefs_del(state_limits(s), id);
}
/* ---- response cache policies (state/endpoints.h; sql/018_cache.sql) ----------------- */

#define CACHE_SQL                                                                          \
	"SELECT id, tenant_id, model_id, ttl_s, max_entry_bytes, scope = 'shared', "        \
	"hit_price_factor FROM jairouter.cache_policies"
static const struct row_field cache_fields[] = {
	ROW_FIELD(RK_I64, struct st_cache, id),
	ROW_FIELD(RK_I64, struct st_cache, tenant_id),
	ROW_FIELD(RK_I64, struct st_cache, model_id),
	ROW_FIELD(RK_I64, struct st_cache, ttl_s),
	ROW_FIELD(RK_I64, struct st_cache, max_entry_bytes),
	ROW_FIELD(RK_IS_T, struct st_cache, shared),
	ROW_FIELD(RK_F64, struct st_cache, hit_price_factor),
};

static int put_cache(struct state *s, const struct row *r, int64_t *id)
{
	struct st_cache c;

	*id = row_i64(r, 0);
	if (row_read(r, cache_fields, NFIELDS(cache_fields), &c, sizeof(c)) < 0)
		return -1;
	adapter_put_cache(state_adapter(s), &c);
	return 0;
}

static void del_cache(struct state *s, int64_t id)
{
	adapter_del_cache(state_adapter(s), id);
}

/* ---- the table -------------------------------------------------------------------- */

#define ID_TABLE(table, NAME, put, del) \
	{ table, PGID_##NAME##_SQL, PGID_##NAME##_SQL BY_IDS, PGID_##NAME##_COLS, put, del }

const struct ps_table ps_tables[] = {
	{ "tenants", TENANTS_SQL, TENANTS_SQL BY_IDS, 4, put_tenant, state_del_tenant },
	{ "api_keys", KEYS_SQL, KEYS_SQL BY_IDS, 6, put_key, state_del_key },
	/* A model's private flag is applied before its catalogue row (entries of one table
	 * are fetched in this order): a model created private is never served as public,
	 * even for the one round trip between the two fetches. */
	{ "models", PRIVATE_MODELS_SQL, PRIVATE_MODELS_SQL AND_IDS, 1, put_private_model,
	  del_private_model },
	{ "models", MODELS_SQL, MODELS_SQL BY_IDS, 12, put_model, state_del_model },
	{ "model_aliases", ALIASES_SQL, ALIASES_SQL BY_IDS, 3, put_alias, state_del_alias },
	/* tenant policy */
	{ "tenants", TENANT_POLICY_SQL, TENANT_POLICY_SQL BY_IDS, 6, put_tenant_policy,
	  del_tenant_policy },
	{ "api_keys", KEY_POLICY_SQL, KEY_POLICY_SQL AND_IDS, 3, put_key_policy, del_key_policy },
	{ "tenant_grants", GRANTS_SQL, GRANTS_SQL BY_IDS, 5, put_grant, del_grant },
	{ "model_group_members", MEMBERS_SQL, MEMBERS_SQL BY_IDS, 3, put_member, del_member },
	{ "provider_credentials", CREDENTIALS_SQL, CREDENTIALS_SQL BY_IDS, 8, put_credential,
	  del_credential },
	/* identity: issuers, keys, revocations, roles (pg/ident_rows.h) */
	ID_TABLE("jwt_issuers", ISSUERS, pgid_put_issuer, pgid_del_issuer),
	ID_TABLE("jwt_issuer_keys", KEYS, pgid_put_key, pgid_del_key),
	ID_TABLE("revoked_tokens", JTI, pgid_put_jti, pgid_del_jti),
	ID_TABLE("revoked_subjects", SUB, pgid_put_sub, pgid_del_sub),
	ID_TABLE("roles", ROLES, pgid_put_role, pgid_del_role),
	ID_TABLE("api_key_roles", KEY_ROLES, pgid_put_key_role, pgid_del_key_role),
	ID_TABLE("tenants", TENANTS, pgid_put_tenant, pgid_del_tenant),
	ID_TABLE("model_groups", GROUPS, pgid_put_group, pgid_del_group),
	ID_TABLE("model_group_members", MEMBERS, pgid_put_member, pgid_del_member),
	/* adapter endpoints and tenant masking */
	{ "endpoints", ENDPOINTS_SQL, ENDPOINTS_SQL BY_IDS, 6, put_endpoint, del_endpoint },
	{ "tenants", MASKING_SQL, MASKING_SQL BY_IDS, 3, put_masking, del_masking },
	/* response cache */
	{ "cache_policies", CACHE_SQL, CACHE_SQL BY_IDS, 7, put_cache, del_cache },
	/* routing */
	{ "routing_policies", ROUTING_SQL, ROUTING_SQL BY_IDS, 14, put_routing, del_routing },
	{ "model_fallbacks", FALLBACKS_SQL, FALLBACKS_SQL BY_IDS, 5, put_fallback, del_fallback },
	{ "virtual_models", VIRTUAL_SQL, VIRTUAL_SQL BY_IDS, 3, put_virtual, del_virtual },
	{ "virtual_model_members", MEMBERS_VM_SQL, MEMBERS_VM_SQL BY_IDS, 4, put_vmember, del_vmember },
	/* owners of stored API objects */
	{ "api_objects", OBJECTS_SQL, OBJECTS_SQL BY_IDS, 7, put_object, del_object },
	/* limits */
	{ "limits", LIMITS_SQL, LIMITS_SQL AND_IDS, LIMDEFS_ROW_COLS, put_limit, del_limit },
};

const size_t ps_ntables = sizeof(ps_tables) / sizeof(ps_tables[0]);
