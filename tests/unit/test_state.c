#include "state/state.h"
#include "state/objects.h"
#include "state/routing.h"

#include "testlib.h"

#include <stdio.h>
#include <stdlib.h>

static struct st_key mk_key(int64_t id, int64_t tenant, uint8_t fill)
{
	struct st_key k;

	memset(&k, 0, sizeof(k));
	k.id = id;
	k.tenant_id = tenant;
	memset(k.hash, fill, sizeof(k.hash));
	snprintf(k.prefix, sizeof(k.prefix), "jr-%08x", (unsigned)id);
	return k;
}

static void test_keys(void)
{
	struct state *s = state_new();
	struct st_key k = mk_key(1, 10, 0xaa), k2 = mk_key(2, 10, 0xbb);
	uint8_t h[ST_HASH_LEN];

	state_put_key(s, &k);
	state_put_key(s, &k2);
	CHECK_EQ_INT(state_count_keys(s), 2);
	memset(h, 0xaa, sizeof(h));
	CHECK(state_find_key(s, h) && state_find_key(s, h)->id == 1);
	/* Re-putting id 1 with a new hash re-indexes it. */
	k.hash[0] = 0x01;
	k.status = ST_REVOKED;
	state_put_key(s, &k);
	CHECK_EQ_INT(state_count_keys(s), 2);
	CHECK(state_find_key(s, h) == NULL);
	h[0] = 0x01;
	CHECK(state_find_key(s, h) && state_find_key(s, h)->status == ST_REVOKED);
	state_del_key(s, 1);
	state_del_key(s, 1); /* absent: fine */
	CHECK(state_find_key(s, h) == NULL);
	CHECK_EQ_INT(state_count_keys(s), 1);
	state_free(s);
}

static void test_models_and_tenants(void)
{
	struct state *s = state_new();
	struct st_model m = { .id = 5, .name = "gpt-4o", .backend = "be_openai" };
	struct st_tenant t = { 10, "acme", ST_ACTIVE, "" };

	state_put_model(s, &m);
	state_put_tenant(s, &t);
	CHECK(state_find_model(s, "gpt-4o", 6) != NULL);
	CHECK(state_find_model(s, "gpt-4", 5) == NULL);    /* no prefix matching */
	CHECK(state_find_model(s, "gpt-4o-x", 8) == NULL);
	snprintf(m.name, sizeof(m.name), "gpt-4o-mini");  /* rename by id */
	state_put_model(s, &m);
	CHECK(state_find_model(s, "gpt-4o", 6) == NULL);
	CHECK(state_find_model(s, "gpt-4o-mini", 11) != NULL);
	CHECK_EQ_INT(state_count_models(s), 1);
	CHECK_EQ_STR(state_find_tenant(s, 10)->name, "acme");
	state_del_tenant(s, 10);
	CHECK(state_find_tenant(s, 10) == NULL);
	state_free(s);
}

static void test_many_keys(void)
{
	struct state *s = state_new();

	for (int i = 0; i < 20000; i++) {
		struct st_key k = mk_key(i, 1, 0);
		memcpy(k.hash, &i, sizeof(i));
		state_put_key(s, &k);
	}
	CHECK_EQ_INT(state_count_keys(s), 20000);
	for (int i = 0; i < 20000; i += 997) {
		uint8_t h[ST_HASH_LEN] = { 0 };
		memcpy(h, &i, sizeof(i));
		CHECK(state_find_key(s, h) && state_find_key(s, h)->id == i);
	}
	state_free(s);
}

static void test_store(void)
{
	struct state *fresh = state_new();
	struct st_tenant t = { 1, "t", ST_ACTIVE, "" };

	store_init();
	CHECK(!store_ready());
	CHECK_EQ_INT(state_count_tenants(store_read_begin()), 0);
	store_read_end();
	state_put_tenant(fresh, &t);
	store_replace(fresh);
	CHECK(store_ready());
	CHECK(state_find_tenant(store_read_begin(), 1) != NULL);
	store_read_end();
	state_del_tenant(store_write_begin(), 1);
	store_write_end();
	CHECK(state_find_tenant(store_read_begin(), 1) == NULL);
	store_read_end();
	store_set_db_online(1);
	CHECK(store_db_online());
	store_destroy();
}

/* A policy row with every setting "inherit", in the scope given. */
static struct lb_policy_row mk_policy(int64_t id, int64_t model, const char *backend, int service)
{
	struct lb_policy_row r;

	memset(&r, 0, sizeof(r));
	r.id = id;
	r.model_id = model;
	snprintf(r.backend, sizeof(r.backend), "%s", backend);
	r.service = service;
	return r;
}

static void test_routing_policy_chain(void)
{
	struct state *s = state_new();
	struct lb_conf *c = state_lb(s);
	const struct lb_policy_row *rows[LB_POLICY_SCOPES];
	struct lb_policy_row r;

	CHECK_EQ_INT(lb_conf_policy_chain(c, 7, "be_x", 1, rows), 0);
	r = mk_policy(1, 0, "", -1); /* global */
	lb_conf_put_policy(c, &r);
	r = mk_policy(2, 0, "", 1); /* service 1 */
	lb_conf_put_policy(c, &r);
	r = mk_policy(3, 0, "be_x", -1);
	lb_conf_put_policy(c, &r);
	r = mk_policy(4, 7, "", -1);
	lb_conf_put_policy(c, &r);
	CHECK_EQ_INT(lb_conf_count_policies(c), 4);
	CHECK_EQ_INT(lb_conf_policy_chain(c, 7, "be_x", 1, rows), 4);
	CHECK(rows[0]->id == 4 && rows[1]->id == 3 && rows[2]->id == 2 && rows[3]->id == 1);
	/* Other scopes, or none asked for: only what applies, most specific first. */
	CHECK_EQ_INT(lb_conf_policy_chain(c, 8, "be_y", 2, rows), 1);
	CHECK_EQ_INT(rows[0]->id, 1);
	CHECK_EQ_INT(lb_conf_policy_chain(c, 0, "be_x", -1, rows), 2);
	CHECK(rows[0]->id == 3 && rows[1]->id == 1);
	/* An upsert may move a row to another scope; a deleted row is gone from its scope. */
	r = mk_policy(3, 0, "be_y", -1);
	lb_conf_put_policy(c, &r);
	lb_conf_del_policy(c, 4);
	CHECK_EQ_INT(lb_conf_policy_chain(c, 7, "be_x", 1, rows), 2);
	CHECK(rows[0]->id == 2 && rows[1]->id == 1);
	CHECK_EQ_INT(lb_conf_policy_chain(c, 7, "be_y", 1, rows), 3);
	CHECK(rows[0]->id == 3 && rows[1]->id == 2 && rows[2]->id == 1);
	CHECK_EQ_INT(lb_conf_count_policies(c), 3);
	state_free(s);
}

/* Stored objects: a local entry (id 0) is replaced by its PostgreSQL row, found by kind
 * and id, and removed by the row's id; ids are checked as sql/012 checks them. */
static void test_objects(void)
{
	struct state *s = state_new();
	struct objects *o = state_objects(s);
	struct st_object a = { 0, OBJ_RESPONSE, "resp_1", 7, 3, NULL, 0, "", 0, 0 };
	const struct st_object *f;

	objects_put(o, &a);
	CHECK_EQ_INT(objects_count(o), 1);
	CHECK(objects_find(o, OBJ_FILE, "resp_1", 6) == NULL);
	a.id = 42;
	a.tenant_id = 8;
	objects_put(o, &a);
	CHECK_EQ_INT(objects_count(o), 1);
	f = objects_find(o, OBJ_RESPONSE, "resp_1", 6);
	CHECK(f && f->id == 42 && f->tenant_id == 8 && f->model_id == 3);
	CHECK(objects_find(o, OBJ_RESPONSE, "resp_", 5) == NULL);
	objects_del(o, 41);
	CHECK_EQ_INT(objects_count(o), 1);
	objects_del(o, 42);
	CHECK_EQ_INT(objects_count(o), 0);
	CHECK(obj_id_valid("resp_AZaz09.-", 13));
	CHECK(!obj_id_valid("resp 1", 6));
	CHECK(!obj_id_valid("", 0));
	CHECK_EQ_INT(obj_kind_of("batch"), OBJ_BATCH);
	CHECK_EQ_INT(obj_kind_of("nope"), -1);
	state_free(s);
}

/* Files and batches (sql/016): the object's JSON is copied in, with its created_at and
 * purpose; a newer state seen locally keeps the row id it updates; objects_each visits
 * every object. */
static void count_one(const struct st_object *obj, void *arg)
{
	(void)obj;
	(*(int *)arg)++;
}

static void test_objects_json(void)
{
	static const char file[] = "{\"id\":\"file-1\",\"object\":\"file\",\"created_at\":1700000001,"
				   "\"purpose\":\"batch\"}";
	struct state *s = state_new();
	struct objects *o = state_objects(s);
	struct st_object a = { 9, OBJ_FILE, "file-1", 7, 3, NULL, 0, "", 0, 0 }, b;
	const struct st_object *f;
	int n = 0;

	CHECK_EQ_INT(obj_set_json(&a, file, strlen(file)), 0);
	CHECK(a.created_at == 1700000001);
	CHECK_EQ_STR(a.purpose, "batch");
	objects_put(o, &a);
	free(a.json);
	f = objects_find(o, OBJ_FILE, "file-1", 6);
	CHECK(f && f->json && strcmp(f->json, file) == 0 && f->id == 9);
	b = (struct st_object){ 0, OBJ_FILE, "file-1", 7, 3, NULL, 0, "", 0, 0 };
	objects_put(o, &b);
	f = objects_find(o, OBJ_FILE, "file-1", 6);
	CHECK(f && f->id == 9 && f->json == NULL);
	b.tenant_id = 8; /* another tenant's claim keeps no row id */
	objects_put(o, &b);
	f = objects_find(o, OBJ_FILE, "file-1", 6);
	CHECK(f && f->id == 0);
	CHECK_EQ_INT(obj_set_json(&b, "{\"id\":\"file-1\",\"object\":\"file\",\"deleted\":true}", 46), 0);
	CHECK(b.deleted == 1);
	free(b.json);
	CHECK_EQ_INT(obj_set_json(&b, "[1]", 3), -1);
	CHECK_EQ_INT(obj_set_json(&b, "{\"created_at\":1.5}", 18), 0);
	CHECK(b.created_at == 0);
	free(b.json);
	objects_each(o, count_one, &n);
	CHECK_EQ_INT(n, 1);
	/* The per-tenant index follows puts (also a change of owner) and deletes; responses
	 * are not in it. */
	n = 0;
	objects_each_of_tenant(o, 8, count_one, &n);
	CHECK_EQ_INT(n, 1);
	n = 0;
	objects_each_of_tenant(o, 7, count_one, &n);
	CHECK_EQ_INT(n, 0);
	b = (struct st_object){ 21, OBJ_BATCH, "batch_1", 8, 3, NULL, 0, "", 0, 0 };
	objects_put(o, &b);
	b = (struct st_object){ 22, OBJ_RESPONSE, "resp_9", 8, 3, NULL, 0, "", 0, 0 };
	objects_put(o, &b);
	n = 0;
	objects_each_of_tenant(o, 8, count_one, &n);
	CHECK_EQ_INT(n, 2);
	objects_del(o, 21);
	n = 0;
	objects_each_of_tenant(o, 8, count_one, &n);
	CHECK_EQ_INT(n, 1);
	state_free(s);
}

int main(void)
{
	RUN(test_keys);
	RUN(test_models_and_tenants);
	RUN(test_many_keys);
	RUN(test_store);
	RUN(test_routing_policy_chain);
	RUN(test_objects);
	RUN(test_objects_json);
	TEST_END();
}
