/*
 * ident: hash tables of the identity catalogue (see ident.h).
 */
#include "authz/ident.h"

#include "util/hmap.h"
#include "util/xalloc.h"

#include <stdlib.h>
#include <string.h>

struct jti_row {
	int64_t id, issuer_id;
	char jti[JWT_STR_MAX];
};

struct sub_row {
	int64_t id, issuer_id;
	int64_t not_before;
	char sub[JWT_STR_MAX];
};

struct key_roles {
	int64_t key_id;
	int n;
	int64_t row_ids[IDENT_KEY_ROLES_MAX];
	int64_t role_ids[IDENT_KEY_ROLES_MAX];
};

struct key_role_row {
	int64_t id, key_id;
};

struct named {
	int64_t id;
	char name[IDENT_NAME_MAX];
};

struct member {
	int64_t id, group_id, model_id;
};

struct ident {
	struct hmap issuers_by_id, issuers_by_iss;
	struct hmap keys_by_id;
	struct hmap jti_by_id, jti_by_value;
	struct hmap sub_by_id, sub_by_value;
	struct hmap roles_by_id, roles_by_name;
	struct hmap key_roles_by_key, key_role_rows;
	struct hmap tenants_by_id, tenants_by_name;
	struct hmap groups_by_id, groups_by_name;
	struct hmap members_by_id, members_by_pair;
	uint64_t version;
};

/* ---- hashing and equality ---------------------------------------------------------- */

static uint64_t mix(uint64_t a, const char *s, size_t n)
{
	return hmap_hash_u64(a) ^ hmap_hash_bytes(s, n);
}

static uint64_t mix2(int64_t a, int64_t b)
{
	return hmap_hash_u64((uint64_t)a * 0x9e3779b97f4a7c15ull ^ (uint64_t)b);
}

struct scoped {
	int64_t scope;
	const char *name;
	size_t len;
};

static int eq_id(const void *item, const void *key)
{
	return *(const int64_t *)item == *(const int64_t *)key; /* every row starts with its id */
}

static int eq_issuer_iss(const void *item, const void *key)
{
	return strcmp(((const struct id_issuer *)item)->iss, key) == 0;
}

static int eq_jti(const void *item, const void *key)
{
	const struct jti_row *r = item;
	const struct scoped *k = key;

	return r->issuer_id == k->scope && strlen(r->jti) == k->len && memcmp(r->jti, k->name, k->len) == 0;
}

static int eq_sub(const void *item, const void *key)
{
	const struct sub_row *r = item;
	const struct scoped *k = key;

	return r->issuer_id == k->scope && strlen(r->sub) == k->len && memcmp(r->sub, k->name, k->len) == 0;
}

static int eq_role_name(const void *item, const void *key)
{
	const struct id_role *r = item;
	const struct scoped *k = key;

	return r->tenant_id == k->scope && strlen(r->name) == k->len && memcmp(r->name, k->name, k->len) == 0;
}

static int eq_named(const void *item, const void *key)
{
	const struct named *r = item;
	const struct scoped *k = key;

	return strlen(r->name) == k->len && memcmp(r->name, k->name, k->len) == 0;
}

static int eq_pair(const void *item, const void *key)
{
	const struct member *m = item;
	const int64_t *k = key;

	return m->group_id == k[0] && m->model_id == k[1];
}

static void copy(char *dst, size_t cap, const char *src)
{
	size_t n = strnlen(src, cap - 1);

	memcpy(dst, src, n);
	dst[n] = '\0';
}

/* ---- life ---------------------------------------------------------------------------- */

struct ident *ident_new(void)
{
	struct ident *id = xcalloc(1, sizeof(*id));
	struct hmap *maps[] = {
		&id->issuers_by_id, &id->issuers_by_iss, &id->keys_by_id, &id->jti_by_id,
		&id->jti_by_value, &id->sub_by_id, &id->sub_by_value, &id->roles_by_id,
		&id->roles_by_name, &id->key_roles_by_key, &id->key_role_rows, &id->tenants_by_id,
		&id->tenants_by_name, &id->groups_by_id, &id->groups_by_name, &id->members_by_id,
		&id->members_by_pair,
	};

	for (size_t i = 0; i < sizeof(maps) / sizeof(maps[0]); i++)
		hmap_init(maps[i]);
	return id;
}

static void free_issuer(void *item, void *arg)
{
	struct id_issuer *is = item;

	(void)arg;
	json_decref(is->role_map);
	free(is);
}

static void free_key(void *item, void *arg)
{
	struct id_key *k = item;

	(void)arg;
	jwt_key_free(&k->key);
	free(k);
}

static void free_role(void *item, void *arg)
{
	struct id_role *r = item;

	(void)arg;
	free(r->perms);
	free(r);
}

static void free_plain(void *item, void *arg)
{
	(void)arg;
	free(item);
}

void ident_free(struct ident *id)
{
	if (!id)
		return;
	hmap_each(&id->issuers_by_id, free_issuer, NULL);
	hmap_each(&id->keys_by_id, free_key, NULL);
	hmap_each(&id->roles_by_id, free_role, NULL);
	hmap_each(&id->jti_by_id, free_plain, NULL);
	hmap_each(&id->sub_by_id, free_plain, NULL);
	hmap_each(&id->key_roles_by_key, free_plain, NULL);
	hmap_each(&id->key_role_rows, free_plain, NULL);
	hmap_each(&id->tenants_by_id, free_plain, NULL);
	hmap_each(&id->groups_by_id, free_plain, NULL);
	hmap_each(&id->members_by_id, free_plain, NULL);
	hmap_clear(&id->issuers_by_id);
	hmap_clear(&id->issuers_by_iss);
	hmap_clear(&id->keys_by_id);
	hmap_clear(&id->jti_by_id);
	hmap_clear(&id->jti_by_value);
	hmap_clear(&id->sub_by_id);
	hmap_clear(&id->sub_by_value);
	hmap_clear(&id->roles_by_id);
	hmap_clear(&id->roles_by_name);
	hmap_clear(&id->key_roles_by_key);
	hmap_clear(&id->key_role_rows);
	hmap_clear(&id->tenants_by_id);
	hmap_clear(&id->tenants_by_name);
	hmap_clear(&id->groups_by_id);
	hmap_clear(&id->groups_by_name);
	hmap_clear(&id->members_by_id);
	hmap_clear(&id->members_by_pair);
	free(id);
}

/* ---- issuers and keys -------------------------------------------------------------------- */

static void bump_issuer(struct ident *id, int64_t issuer_id)
{
	struct id_issuer *is = hmap_find(&id->issuers_by_id, hmap_hash_u64((uint64_t)issuer_id),
					 eq_id, &issuer_id);

	if (is)
		is->version = ++id->version;
}

void ident_del_issuer(struct ident *id, int64_t issuer_id)
{
	struct id_issuer *is = hmap_remove(&id->issuers_by_id, hmap_hash_u64((uint64_t)issuer_id),
					   eq_id, &issuer_id);

	if (!is)
		return;
	hmap_remove(&id->issuers_by_iss, hmap_hash_bytes(is->iss, strlen(is->iss)), eq_issuer_iss, is->iss);
	free_issuer(is, NULL);
}

void ident_put_issuer(struct ident *id, const struct id_issuer *src)
{
	struct id_issuer *is = xcalloc(1, sizeof(*is));

	ident_del_issuer(id, src->id);
	*is = *src;
	is->version = ++id->version;
	hmap_insert(&id->issuers_by_id, hmap_hash_u64((uint64_t)is->id), is);
	hmap_insert(&id->issuers_by_iss, hmap_hash_bytes(is->iss, strlen(is->iss)), is);
}

void ident_del_key(struct ident *id, int64_t key_row_id)
{
	struct id_key *k = hmap_remove(&id->keys_by_id, hmap_hash_u64((uint64_t)key_row_id), eq_id,
				       &key_row_id);

	if (!k)
		return;
	bump_issuer(id, k->issuer_id);
	free_key(k, NULL);
}

void ident_put_key(struct ident *id, struct id_key *src)
{
	struct id_key *k = xcalloc(1, sizeof(*k));

	ident_del_key(id, src->id);
	*k = *src;
	memset(&src->key, 0, sizeof(src->key));
	hmap_insert(&id->keys_by_id, hmap_hash_u64((uint64_t)k->id), k);
	bump_issuer(id, k->issuer_id);
}

const struct id_issuer *ident_issuer_by_iss(const struct ident *id, const char *iss)
{
	return hmap_find(&id->issuers_by_iss, hmap_hash_bytes(iss, strlen(iss)), eq_issuer_iss, iss);
}

const struct id_issuer *ident_issuer_by_id(const struct ident *id, int64_t issuer_id)
{
	return hmap_find(&id->issuers_by_id, hmap_hash_u64((uint64_t)issuer_id), eq_id, &issuer_id);
}

struct key_collect {
	int64_t issuer_id;
	struct jwt_key *out;
	size_t n, max;
};

static void collect_key(void *item, void *arg)
{
	const struct id_key *k = item;
	struct key_collect *c = arg;

	if (k->issuer_id == c->issuer_id && k->enabled && c->n < c->max)
		c->out[c->n++] = k->key;
}

size_t ident_issuer_keys(const struct ident *id, int64_t issuer_id, struct jwt_key *out, size_t max)
{
	struct key_collect c = { issuer_id, out, 0, max };

	hmap_each(&id->keys_by_id, collect_key, &c);
	return c.n;
}

/* ---- revocations ------------------------------------------------------------------------- */

void ident_del_revoked_jti(struct ident *id, int64_t row_id)
{
	struct jti_row *r = hmap_remove(&id->jti_by_id, hmap_hash_u64((uint64_t)row_id), eq_id, &row_id);
	struct scoped k;

	if (!r)
		return;
	k = (struct scoped){ r->issuer_id, r->jti, strlen(r->jti) };
	hmap_remove(&id->jti_by_value, mix((uint64_t)r->issuer_id, r->jti, k.len), eq_jti, &k);
	free(r);
}

void ident_put_revoked_jti(struct ident *id, int64_t row_id, int64_t issuer_id, const char *jti)
{
	struct jti_row *r = xcalloc(1, sizeof(*r));

	ident_del_revoked_jti(id, row_id);
	r->id = row_id;
	r->issuer_id = issuer_id;
	copy(r->jti, sizeof(r->jti), jti);
	hmap_insert(&id->jti_by_id, hmap_hash_u64((uint64_t)row_id), r);
	hmap_insert(&id->jti_by_value, mix((uint64_t)issuer_id, r->jti, strlen(r->jti)), r);
}

int ident_jti_revoked(const struct ident *id, int64_t issuer_id, const char *jti)
{
	struct scoped k = { issuer_id, jti, strlen(jti) };

	return hmap_find(&id->jti_by_value, mix((uint64_t)issuer_id, jti, k.len), eq_jti, &k) != NULL;
}

void ident_del_revoked_sub(struct ident *id, int64_t row_id)
{
	struct sub_row *r = hmap_remove(&id->sub_by_id, hmap_hash_u64((uint64_t)row_id), eq_id, &row_id);
	struct scoped k;

	if (!r)
		return;
	k = (struct scoped){ r->issuer_id, r->sub, strlen(r->sub) };
	hmap_remove(&id->sub_by_value, mix((uint64_t)r->issuer_id, r->sub, k.len), eq_sub, &k);
	free(r);
}

void ident_put_revoked_sub(struct ident *id, int64_t row_id, int64_t issuer_id, const char *sub,
			   int64_t not_before)
{
	struct sub_row *r = xcalloc(1, sizeof(*r));

	ident_del_revoked_sub(id, row_id);
	r->id = row_id;
	r->issuer_id = issuer_id;
	r->not_before = not_before;
	copy(r->sub, sizeof(r->sub), sub);
	hmap_insert(&id->sub_by_id, hmap_hash_u64((uint64_t)row_id), r);
	hmap_insert(&id->sub_by_value, mix((uint64_t)issuer_id, r->sub, strlen(r->sub)), r);
}

int64_t ident_sub_not_before(const struct ident *id, int64_t issuer_id, const char *sub)
{
	struct scoped k = { issuer_id, sub, strlen(sub) };
	const struct sub_row *r = hmap_find(&id->sub_by_value, mix((uint64_t)issuer_id, sub, k.len),
					    eq_sub, &k);

	return r ? r->not_before : -1;
}

/* ---- roles ------------------------------------------------------------------------------- */

int ident_perm_parse(const char *text, size_t len, int deny, struct id_perm *out)
{
	static const struct {
		const char *prefix;
		enum id_perm_kind kind;
	} kinds[] = { { "service:", IDP_SERVICE }, { "model:", IDP_MODEL }, { "group:", IDP_GROUP } };

	memset(out, 0, sizeof(*out));
	out->deny = deny;
	if (len == 1 && text[0] == '*') {
		out->kind = IDP_ALL;
		return 0;
	}
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		size_t pl = strlen(kinds[i].prefix);
		if (len > pl && memcmp(text, kinds[i].prefix, pl) == 0) {
			if (len - pl >= IDENT_PERM_TARGET_MAX)
				return -1;
			out->kind = kinds[i].kind;
			memcpy(out->target, text + pl, len - pl);
			return 0;
		}
	}
	if ((len == 10 && memcmp(text, "usage:read", 10) == 0) ||
	    (len == 10 && memcmp(text, "audit:read", 10) == 0) || (len == 5 && memcmp(text, "admin", 5) == 0)) {
		out->kind = IDP_ACTION;
		memcpy(out->target, text, len);
		return 0;
	}
	return -1;
}

void ident_del_role(struct ident *id, int64_t role_id)
{
	struct id_role *r = hmap_remove(&id->roles_by_id, hmap_hash_u64((uint64_t)role_id), eq_id, &role_id);
	struct scoped k;

	if (!r)
		return;
	k = (struct scoped){ r->tenant_id, r->name, strlen(r->name) };
	hmap_remove(&id->roles_by_name, mix((uint64_t)r->tenant_id, r->name, k.len), eq_role_name, &k);
	free_role(r, NULL);
}

void ident_put_role(struct ident *id, const struct id_role *src)
{
	struct id_role *r = xcalloc(1, sizeof(*r));

	ident_del_role(id, src->id);
	*r = *src;
	r->perms = xcalloc((size_t)(src->nperms ? src->nperms : 1), sizeof(*r->perms));
	memcpy(r->perms, src->perms, (size_t)src->nperms * sizeof(*r->perms));
	hmap_insert(&id->roles_by_id, hmap_hash_u64((uint64_t)r->id), r);
	hmap_insert(&id->roles_by_name, mix((uint64_t)r->tenant_id, r->name, strlen(r->name)), r);
}

const struct id_role *ident_role_by_id(const struct ident *id, int64_t role_id)
{
	return hmap_find(&id->roles_by_id, hmap_hash_u64((uint64_t)role_id), eq_id, &role_id);
}

const struct id_role *ident_role_by_name(const struct ident *id, int64_t tenant_id,
					 const char *name, size_t len)
{
	struct scoped k = { tenant_id, name, len };
	const struct id_role *r = NULL;

	if (tenant_id)
		r = hmap_find(&id->roles_by_name, mix((uint64_t)tenant_id, name, len), eq_role_name, &k);
	if (!r) {
		k.scope = 0;
		r = hmap_find(&id->roles_by_name, mix(0, name, len), eq_role_name, &k);
	}
	return r;
}

void ident_del_key_role(struct ident *id, int64_t row_id)
{
	struct key_role_row *row = hmap_remove(&id->key_role_rows, hmap_hash_u64((uint64_t)row_id),
					       eq_id, &row_id);
	struct key_roles *kr;

	if (!row)
		return;
	kr = hmap_find(&id->key_roles_by_key, hmap_hash_u64((uint64_t)row->key_id), eq_id, &row->key_id);
	for (int i = 0; kr && i < kr->n; i++) {
		if (kr->row_ids[i] != row_id)
			continue;
		kr->row_ids[i] = kr->row_ids[kr->n - 1];
		kr->role_ids[i] = kr->role_ids[kr->n - 1];
		kr->n--;
		break;
	}
	if (kr && kr->n == 0)
		free(hmap_remove(&id->key_roles_by_key, hmap_hash_u64((uint64_t)row->key_id), eq_id, &row->key_id));
	free(row);
}

void ident_put_key_role(struct ident *id, int64_t row_id, int64_t key_id, int64_t role_id)
{
	struct key_roles *kr;
	struct key_role_row *row;

	ident_del_key_role(id, row_id);
	kr = hmap_find(&id->key_roles_by_key, hmap_hash_u64((uint64_t)key_id), eq_id, &key_id);
	if (!kr) {
		kr = xcalloc(1, sizeof(*kr));
		kr->key_id = key_id;
		hmap_insert(&id->key_roles_by_key, hmap_hash_u64((uint64_t)key_id), kr);
	}
	if (kr->n == IDENT_KEY_ROLES_MAX)
		return; /* the loader logs it; the roles already held stay */
	kr->row_ids[kr->n] = row_id;
	kr->role_ids[kr->n++] = role_id;
	row = xcalloc(1, sizeof(*row));
	row->id = row_id;
	row->key_id = key_id;
	hmap_insert(&id->key_role_rows, hmap_hash_u64((uint64_t)row_id), row);
}

int ident_key_roles(const struct ident *id, int64_t key_id, int64_t *out, int max)
{
	const struct key_roles *kr = hmap_find(&id->key_roles_by_key, hmap_hash_u64((uint64_t)key_id),
					       eq_id, &key_id);
	int n = 0;

	for (; kr && n < kr->n && n < max; n++)
		out[n] = kr->role_ids[n];
	return n;
}

/* ---- names ------------------------------------------------------------------------------- */

static void named_del(struct hmap *by_id, struct hmap *by_name, int64_t rid)
{
	struct named *r = hmap_remove(by_id, hmap_hash_u64((uint64_t)rid), eq_id, &rid);
	struct scoped k;

	if (!r)
		return;
	k = (struct scoped){ 0, r->name, strlen(r->name) };
	hmap_remove(by_name, hmap_hash_bytes(r->name, k.len), eq_named, &k);
	free(r);
}

static void named_put(struct hmap *by_id, struct hmap *by_name, int64_t rid, const char *name)
{
	struct named *r = xcalloc(1, sizeof(*r));

	named_del(by_id, by_name, rid);
	r->id = rid;
	copy(r->name, sizeof(r->name), name);
	hmap_insert(by_id, hmap_hash_u64((uint64_t)rid), r);
	hmap_insert(by_name, hmap_hash_bytes(r->name, strlen(r->name)), r);
}

static int64_t named_find(const struct hmap *by_name, const char *name, size_t len)
{
	struct scoped k = { 0, name, len };
	const struct named *r = hmap_find(by_name, hmap_hash_bytes(name, len), eq_named, &k);

	return r ? r->id : 0;
}

void ident_put_tenant_name(struct ident *id, int64_t tenant_id, const char *name)
{
	named_put(&id->tenants_by_id, &id->tenants_by_name, tenant_id, name);
}

void ident_del_tenant_name(struct ident *id, int64_t tenant_id)
{
	named_del(&id->tenants_by_id, &id->tenants_by_name, tenant_id);
}

int64_t ident_tenant_by_name(const struct ident *id, const char *name, size_t len)
{
	return named_find(&id->tenants_by_name, name, len);
}

void ident_put_group(struct ident *id, int64_t group_id, const char *name)
{
	named_put(&id->groups_by_id, &id->groups_by_name, group_id, name);
}

void ident_del_group(struct ident *id, int64_t group_id)
{
	named_del(&id->groups_by_id, &id->groups_by_name, group_id);
}

void ident_del_member(struct ident *id, int64_t row_id)
{
	struct member *m = hmap_remove(&id->members_by_id, hmap_hash_u64((uint64_t)row_id), eq_id, &row_id);
	int64_t pair[2];

	if (!m)
		return;
	pair[0] = m->group_id;
	pair[1] = m->model_id;
	hmap_remove(&id->members_by_pair, mix2(pair[0], pair[1]), eq_pair, pair);
	free(m);
}

void ident_put_member(struct ident *id, int64_t row_id, int64_t group_id, int64_t model_id)
{
	struct member *m = xcalloc(1, sizeof(*m));

	ident_del_member(id, row_id);
	m->id = row_id;
	m->group_id = group_id;
	m->model_id = model_id;
	hmap_insert(&id->members_by_id, hmap_hash_u64((uint64_t)row_id), m);
	hmap_insert(&id->members_by_pair, mix2(group_id, model_id), m);
}

int ident_model_in_group(const struct ident *id, int64_t model_id, const char *name)
{
	int64_t pair[2] = { named_find(&id->groups_by_name, name, strlen(name)), model_id };

	return pair[0] && hmap_find(&id->members_by_pair, mix2(pair[0], pair[1]), eq_pair, pair);
}

size_t ident_count_issuers(const struct ident *id)
{
	return id->issuers_by_id.count;
}

size_t ident_count_roles(const struct ident *id)
{
	return id->roles_by_id.count;
}

struct each_issuer {
	void (*fn)(const struct id_issuer *, void *);
	void *arg;
};

static void each_issuer(void *item, void *arg)
{
	struct each_issuer *e = arg;

	e->fn(item, e->arg);
}

void ident_each_issuer(const struct ident *id, void (*fn)(const struct id_issuer *, void *), void *arg)
{
	struct each_issuer e = { fn, arg };

	hmap_each(&id->issuers_by_id, each_issuer, &e);
}

json_t *ident_role_map_parse(const char *text, int *bad)
{
	json_error_t e;
	json_t *m = json_loads(text, JSON_REJECT_DUPLICATES, &e);
	const char *k;
	json_t *v;

	*bad = 0;
	if (!m || !json_is_object(m)) {
		*bad = 1;
		json_decref(m);
		return NULL;
	}
	json_object_foreach(m, k, v) {
		if (!json_is_string(v) || json_string_length(v) >= IDENT_NAME_MAX) {
			*bad = 1;
			json_decref(m);
			return NULL;
		}
	}
	if (json_object_size(m) == 0) {
		json_decref(m);
		return NULL;
	}
	return m;
}
