/*
 * pg/rows and util/row: what each catalogue reader makes of a row of text columns, as
 * pgsync hands them over from PostgreSQL (NULL as ""), without a database: the field
 * rules (integers, strings truncated to their field, statuses failing closed, service and
 * capability sets, hex hashes), the readers with decisions of their own, and rows left
 * out. tests/pg runs the same readers against a real PostgreSQL (test_pgsync).
 */
#include "lb/conf.h"
#include "lb/table.h"
#include "pg/rows.h"
#include "state/endpoints.h"
#include "state/objects.h"
#include "state/policy.h"
#include "state/state.h"
#include "util/row.h"

#include "testlib.h"

#include <stdarg.h>
#include <string.h>

/* A row of n text columns. */
static struct row mkrow(int n, ...)
{
	struct row r;
	va_list ap;

	memset(&r, 0, sizeof(r));
	r.n = n;
	va_start(ap, n);
	for (int i = 0; i < n; i++) {
		r.v[i] = va_arg(ap, const char *);
		r.len[i] = strlen(r.v[i]);
	}
	va_end(ap);
	return r;
}

/* The first reader of notification table `name` whose SELECT mentions `col`. */
static const struct ps_table *reader(const char *name, const char *col)
{
	for (size_t i = 0; i < ps_ntables; i++)
		if (strcmp(ps_tables[i].name, name) == 0 && strstr(ps_tables[i].select_all, col))
			return &ps_tables[i];
	return NULL;
}

static int put(struct state *s, const char *name, const char *col, const struct row *r, int64_t *id)
{
	const struct ps_table *t = reader(name, col);

	CHECK(t != NULL);
	if (!t)
		return -2;
	CHECK_EQ_INT(t->ncols, r->n);
	return t->put(s, r, id);
}

static void test_row_columns(void)
{
	struct row r = mkrow(3, "42", "abcdef", "");
	char small[4];

	CHECK_EQ_INT(row_i64(&r, 0), 42);
	CHECK_EQ_INT(row_i64(&r, 2), 0);  /* NULL */
	CHECK_EQ_INT(row_i64(&r, 9), 0);  /* past the row */
	CHECK_EQ_STR(row_text(&r, -1), "");
	row_str(&r, 1, small, sizeof(small));
	CHECK_EQ_STR(small, "abc"); /* truncated to the field */
	CHECK(row_is(&r, 1, "abcdef"));
	CHECK(!row_is(&r, 1, "abc"));
}

static void test_catalogue_rows(void)
{
	struct state *s = state_new();
	struct row r;
	const struct st_model *m;
	int64_t id = 0;
	char hash[65];

	r = mkrow(4, "7", "acme", "active", "{\"team\": \"search\"}");
	CHECK_EQ_INT(put(s, "tenants", "status", &r, &id), 0);
	CHECK_EQ_INT(id, 7);
	CHECK_EQ_STR(state_find_tenant(s, 7)->name, "acme");
	CHECK_EQ_STR(state_find_tenant(s, 7)->labels, "{\"team\": \"search\"}");
	r = mkrow(4, "8", "old", "suspended", "{}"); /* unknown status: disabled */
	put(s, "tenants", "status", &r, &id);
	CHECK_EQ_INT(state_find_tenant(s, 8)->status, ST_DISABLED);
	memset(hash, 'a', 64);
	hash[64] = '\0';
	r = mkrow(6, "3", "7", hash, "jr-aaaaaaaa", "revoked", "1800000000");
	CHECK_EQ_INT(put(s, "api_keys", "key_hash", &r, &id), 0);
	CHECK_EQ_INT(state_count_keys(s), 1);
	hash[10] = 'x'; /* not hex: the row is left out */
	r = mkrow(6, "4", "7", hash, "jr-bbbbbbbb", "active", "0");
	CHECK_EQ_INT(put(s, "api_keys", "key_hash", &r, &id), -1);
	CHECK_EQ_INT(id, 4);
	CHECK_EQ_INT(state_count_keys(s), 1);
	r = mkrow(12, "5", "gpt", "be_x", "active", "1700000000", "gpt-up", "openai",
		  "chat,embeddings,no_such_service", "0101", "8192", "2.5", "-1");
	CHECK_EQ_INT(put(s, "models", "upstream_name", &r, &id), 0);
	m = state_find_model_id(s, 5);
	CHECK(m != NULL);
	if (m) {
		CHECK_EQ_STR(m->backend, "be_x");
		CHECK_EQ_STR(m->upstream, "gpt-up");
		CHECK_EQ_INT(m->created, 1700000000);
		CHECK_EQ_INT(m->services, (1u << policy_service_bit("chat", 4)) |
						  (1u << policy_service_bit("embeddings", 10)));
		CHECK_EQ_INT(m->caps, ST_CAP_TOOLS | ST_CAP_STREAMING);
		CHECK_EQ_INT(m->context_length, 8192);
		CHECK(m->price_in == 2.5 && m->price_out == -1);
	}
	r = mkrow(3, "9", "5", "gpt-latest");
	CHECK_EQ_INT(put(s, "model_aliases", "alias", &r, &id), 0);
	CHECK(state_resolve_model(s, "gpt-latest", 10) == m);
	state_free(s);
}

static void test_policy_and_routing_rows(void)
{
	struct state *s = state_new();
	struct lb_fallback_row fb[4];
	const struct pol_tenant *t;
	const struct st_endpoint *e;
	struct row r;
	int64_t id;

	r = mkrow(6, "7", "*", "10.0.0.0/8", "fail-open", "", "files-model");
	CHECK_EQ_INT(put(s, "tenants", "allowed_services", &r, &id), 0);
	t = policy_tenant(state_policy(s), 7);
	CHECK(t && t->services == POL_SERVICES_ALL && t->on_error == POL_FAIL_OPEN && t->masking == -1);
	CHECK(t && strcmp(t->files_model, "files-model") == 0);
	r = mkrow(1, "5");
	CHECK_EQ_INT(put(s, "models", "visibility", &r, &id), 0);
	CHECK(policy_model_private(state_policy(s), 5));
	r = mkrow(6, "2", "be_x", "https://example.invalid/v1", "", "", "t");
	CHECK_EQ_INT(put(s, "endpoints", "meter_streams", &r, &id), 0);
	e = adapter_find_endpoint(state_adapter(s), "be_x");
	CHECK(e && e->meter == 1 && strcmp(e->base_url, "https://example.invalid/v1") == 0);
	r = mkrow(5, "11", "5", "1", "6", "down,no_such_reason,saturated");
	CHECK_EQ_INT(put(s, "model_fallbacks", "reasons", &r, &id), 0);
	CHECK_EQ_INT(lb_conf_fallbacks(state_lb(s), 5, fb, 4), 1);
	CHECK_EQ_INT(fb[0].fallback_id, 6);
	CHECK_EQ_INT(fb[0].reasons, (1u << LB_W_DOWN) | (1u << LB_W_SATURATED));
	/* A routing row for a service this agent does not know is not the global row. */
	r = mkrow(14, "3", "0", "", "teleport", "least_conn", "", "-1", "-1", "-1", "-1", "-1", "-1",
		  "-1", "-1");
	CHECK_EQ_INT(put(s, "routing_policies", "strategy", &r, &id), -1);
	state_free(s);
}

/* api_objects rows (sql/012, sql/016): the object's JSON comes with its row; a JSON
 * the agent does not keep (not an object) leaves the owner without it. */
static void test_object_rows(void)
{
	struct state *s = state_new();
	const struct st_object *o;
	struct row r;
	int64_t id;

	r = mkrow(7, "3", "file", "file-abc", "7", "2",
		  "{\"id\":\"file-abc\",\"object\":\"file\",\"created_at\":1700000000,\"purpose\":\"batch\"}", "11");
	CHECK_EQ_INT(put(s, "api_objects", "object", &r, &id), 0);
	o = objects_find(state_objects(s), OBJ_FILE, "file-abc", 8);
	CHECK(o && o->id == 3 && o->tenant_id == 7 && o->model_id == 2 && o->created_at == 1700000000);
	CHECK(o && o->json && strcmp(o->purpose, "batch") == 0 && o->key_id == 11);
	r = mkrow(7, "4", "batch", "batch_x", "7", "2", "not json", "0");
	CHECK_EQ_INT(put(s, "api_objects", "object", &r, &id), 0);
	o = objects_find(state_objects(s), OBJ_BATCH, "batch_x", 7);
	CHECK(o && o->json == NULL);
	state_free(s);
}

int main(void)
{
	RUN(test_row_columns);
	RUN(test_object_rows);
	RUN(test_catalogue_rows);
	RUN(test_policy_and_routing_rows);
	TEST_END();
}
