/*
 * pg/ident_rows: row readers for the identity tables (see ident_rows.h).
 */
#include "pg/ident_rows.h"

#include "authz/ident.h"
#include "util/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void cpy(char *dst, size_t cap, const char *src)
{
	snprintf(dst, cap, "%s", src);
}

int pgid_put_issuer(struct state *s, const struct row *r, int64_t *id)
{
	struct id_issuer is;
	int algs, bad;
	const char *p;

	memset(&is, 0, sizeof(is));
	is.id = *id = row_i64(r, 0);
	cpy(is.name, sizeof(is.name), row_text(r, 1));
	cpy(is.iss, sizeof(is.iss), row_text(r, 2));
	cpy(is.discovery_url, sizeof(is.discovery_url), row_text(r, 3));
	algs = jwt_alg_mask(row_text(r, 4));
	cpy(is.audience, sizeof(is.audience), row_text(r, 5));
	is.leeway = (int)row_i64(r, 6);
	is.require_exp = strcmp(row_text(r, 7), "t") == 0;
	is.tenant_id = row_i64(r, 8);
	cpy(is.tenant_claim, sizeof(is.tenant_claim), row_text(r, 9));
	cpy(is.role_claim, sizeof(is.role_claim), row_text(r, 10));
	is.role_map = ident_role_map_parse(row_text(r, 11), &bad);
	p = row_text(r, 12);
	while (*p && is.ndefault_roles < IDENT_DEFAULT_ROLES_MAX) {
		size_t n = strcspn(p, "\n");
		if (n && n < IDENT_NAME_MAX) {
			memcpy(is.default_roles[is.ndefault_roles], p, n);
			is.default_roles[is.ndefault_roles++][n] = '\0';
		}
		p += n + (p[n] == '\n');
	}
	is.enabled = strcmp(row_text(r, 13), "active") == 0;
	cpy(is.introspection_url, sizeof(is.introspection_url), row_text(r, 14));
	cpy(is.client_id, sizeof(is.client_id), row_text(r, 15));
	cpy(is.client_secret, sizeof(is.client_secret), row_text(r, 16));
	is.introspection_reject = strcmp(row_text(r, 17), "reject") == 0;
	if (algs < 0 || bad) {
		/* Kept, but disabled: its tokens are refused as from a disabled issuer. */
		const char *why = algs < 0 ? "an unknown algorithm" : "an unreadable role_map";

		log_event(LOG_WARN, "db_jwt_issuer_unusable",
			  LOG_FIELDS(LOG_I("issuer_id", is.id), LOG_S("issuer", is.name),
				     LOG_S("error", why)),
			  "database: JWT issuer %lld (%s) has %s; its tokens are refused",
			  (long long)is.id, is.name, why);
		is.enabled = 0;
		algs = 0;
	}
	is.algs = (unsigned)algs;
	ident_put_issuer(state_ident(s), &is);
	return 0;
}

void pgid_del_issuer(struct state *s, int64_t id)
{
	ident_del_issuer(state_ident(s), id);
}

int pgid_put_key(struct state *s, const struct row *r, int64_t *id)
{
	struct id_key k;
	char err[128];
	const char *jwk = row_text(r, 3);

	memset(&k, 0, sizeof(k));
	k.id = *id = row_i64(r, 0);
	k.issuer_id = row_i64(r, 1);
	k.enabled = strcmp(row_text(r, 4), "active") == 0;
	if (jwk_parse_text(jwk, strlen(jwk), row_text(r, 2), &k.key, err, sizeof(err)) < 0) {
		log_event(LOG_WARN, "db_jwt_key_unusable",
			  LOG_FIELDS(LOG_I("key_id", k.id), LOG_I("issuer_id", k.issuer_id),
				     LOG_S("error", err)),
			  "database: key %lld of JWT issuer %lld is unusable: %s", (long long)k.id,
			  (long long)k.issuer_id, err);
		ident_del_key(state_ident(s), k.id);
		return 0;
	}
	ident_put_key(state_ident(s), &k);
	return 0;
}

void pgid_del_key(struct state *s, int64_t id)
{
	ident_del_key(state_ident(s), id);
}

int pgid_put_jti(struct state *s, const struct row *r, int64_t *id)
{
	*id = row_i64(r, 0);
	ident_put_revoked_jti(state_ident(s), *id, row_i64(r, 1), row_text(r, 2));
	return 0;
}

void pgid_del_jti(struct state *s, int64_t id)
{
	ident_del_revoked_jti(state_ident(s), id);
}

int pgid_put_sub(struct state *s, const struct row *r, int64_t *id)
{
	*id = row_i64(r, 0);
	ident_put_revoked_sub(state_ident(s), *id, row_i64(r, 1), row_text(r, 2), row_i64(r, 3));
	return 0;
}

void pgid_del_sub(struct state *s, int64_t id)
{
	ident_del_revoked_sub(state_ident(s), id);
}

/* Newline-separated permissions into perms (bounded by IDENT_PERMS_MAX in all). */
static void parse_perms(const char *p, int deny, struct id_perm *perms, int *n, int64_t role_id)
{
	while (*p) {
		size_t len = strcspn(p, "\n");
		if (len && *n < IDENT_PERMS_MAX) {
			if (ident_perm_parse(p, len, deny, &perms[*n]) == 0)
				(*n)++;
			else
				log_event(LOG_WARN, "db_role_permission_unknown",
					  LOG_FIELDS(LOG_I("role_id", role_id)),
					  "database: role %lld has an unknown permission; ignored",
					  (long long)role_id);
		}
		p += len + (p[len] == '\n');
	}
}

int pgid_put_role(struct state *s, const struct row *r, int64_t *id)
{
	static struct id_perm perms[IDENT_PERMS_MAX]; /* control thread only */
	struct id_role role;

	memset(&role, 0, sizeof(role));
	role.id = *id = row_i64(r, 0);
	role.tenant_id = row_i64(r, 1);
	cpy(role.name, sizeof(role.name), row_text(r, 2));
	role.perms = perms;
	parse_perms(row_text(r, 4), 1, perms, &role.nperms, role.id); /* denies first: they win */
	parse_perms(row_text(r, 3), 0, perms, &role.nperms, role.id);
	ident_put_role(state_ident(s), &role);
	return 0;
}

void pgid_del_role(struct state *s, int64_t id)
{
	ident_del_role(state_ident(s), id);
}

int pgid_put_key_role(struct state *s, const struct row *r, int64_t *id)
{
	int64_t have[IDENT_KEY_ROLES_MAX];
	int64_t key_id = row_i64(r, 1);

	*id = row_i64(r, 0);
	if (ident_key_roles(state_ident(s), key_id, have, IDENT_KEY_ROLES_MAX) == IDENT_KEY_ROLES_MAX)
		log_event(LOG_WARN, "db_key_roles_over_limit",
			  LOG_FIELDS(LOG_I("key_id", key_id), LOG_I("max", IDENT_KEY_ROLES_MAX),
				     LOG_I("role_id", row_i64(r, 2))),
			  "database: API key %lld has more than %d roles; role %lld ignored",
			  (long long)key_id, IDENT_KEY_ROLES_MAX, (long long)row_i64(r, 2));
	ident_put_key_role(state_ident(s), *id, key_id, row_i64(r, 2));
	return 0;
}

void pgid_del_key_role(struct state *s, int64_t id)
{
	ident_del_key_role(state_ident(s), id);
}

int pgid_put_tenant(struct state *s, const struct row *r, int64_t *id)
{
	*id = row_i64(r, 0);
	ident_put_tenant_name(state_ident(s), *id, row_text(r, 1));
	return 0;
}

void pgid_del_tenant(struct state *s, int64_t id)
{
	ident_del_tenant_name(state_ident(s), id);
}

int pgid_put_group(struct state *s, const struct row *r, int64_t *id)
{
	*id = row_i64(r, 0);
	ident_put_group(state_ident(s), *id, row_text(r, 1));
	return 0;
}

void pgid_del_group(struct state *s, int64_t id)
{
	ident_del_group(state_ident(s), id);
}

int pgid_put_member(struct state *s, const struct row *r, int64_t *id)
{
	*id = row_i64(r, 0);
	ident_put_member(state_ident(s), *id, row_i64(r, 1), row_i64(r, 2));
	return 0;
}

void pgid_del_member(struct state *s, int64_t id)
{
	ident_del_member(state_ident(s), id);
}
