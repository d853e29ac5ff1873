/*
 * idsync: how pgsync (pg/pgsync.c) reads the identity tables of sql/007_identity.sql into
 * a state's `struct ident`. Each table has a SELECT (pgsync appends its
 * "WHERE id = ANY($1)" for incremental changes), a column count, and put/del functions
 * with the row-reader signature of pg/rows.h (a row of text columns, util/row.h).
 *
 * A row that cannot be used (an unreadable key, an unknown algorithm) is logged with its
 * id and left out: an issuer without usable keys refuses its tokens, which is the safe way
 * to fail. Key material never reaches the log.
 */
#ifndef JR_AUTHZ_IDSYNC_H
#define JR_AUTHZ_IDSYNC_H

#include "state/state.h"
#include "util/row.h"

#include <jansson.h>
#include <stdint.h>

#define IDSYNC_ISSUERS_SQL                                                                   \
	"SELECT id, name, issuer, coalesce(discovery_url, ''), array_to_string(algorithms, ','), " \
	"coalesce(audience, ''), leeway_s, require_exp, coalesce(tenant_id, 0), "           \
	"coalesce(tenant_claim, ''), coalesce(role_claim, ''), role_map::text, "            \
	"coalesce(array_to_string(default_roles, E'\\n'), ''), status, coalesce(introspection_url, ''), " \
	"coalesce(introspection_client_id, ''), coalesce(introspection_client_secret, ''), "  \
	"introspection_failure FROM jairouter.jwt_issuers"
#define IDSYNC_ISSUERS_COLS 18
#define IDSYNC_KEYS_SQL "SELECT id, issuer_id, coalesce(kid, ''), jwk, status FROM jairouter.jwt_issuer_keys"
#define IDSYNC_KEYS_COLS 5
#define IDSYNC_JTI_SQL "SELECT id, issuer_id, jti FROM jairouter.revoked_tokens"
#define IDSYNC_JTI_COLS 3
#define IDSYNC_SUB_SQL                                                                       \
	"SELECT id, issuer_id, subject, floor(extract(epoch FROM not_before))::bigint "      \
	"FROM jairouter.revoked_subjects"
#define IDSYNC_SUB_COLS 4
#define IDSYNC_ROLES_SQL                                                                     \
	"SELECT id, coalesce(tenant_id, 0), name, array_to_string(allow, E'\\n'), "          \
	"array_to_string(deny, E'\\n') FROM jairouter.roles"
#define IDSYNC_ROLES_COLS 5
#define IDSYNC_KEY_ROLES_SQL "SELECT id, key_id, role_id FROM jairouter.api_key_roles"
#define IDSYNC_KEY_ROLES_COLS 3
#define IDSYNC_TENANTS_SQL "SELECT id, name FROM jairouter.tenants"
#define IDSYNC_TENANTS_COLS 2
#define IDSYNC_GROUPS_SQL "SELECT id, name FROM jairouter.model_groups"
#define IDSYNC_GROUPS_COLS 2
#define IDSYNC_MEMBERS_SQL "SELECT id, group_id, model_id FROM jairouter.model_group_members"
#define IDSYNC_MEMBERS_COLS 3

int idsync_put_issuer(struct state *s, const struct row *r, int64_t *id);
void idsync_del_issuer(struct state *s, int64_t id);
int idsync_put_key(struct state *s, const struct row *r, int64_t *id);
void idsync_del_key(struct state *s, int64_t id);
int idsync_put_jti(struct state *s, const struct row *r, int64_t *id);
void idsync_del_jti(struct state *s, int64_t id);
int idsync_put_sub(struct state *s, const struct row *r, int64_t *id);
void idsync_del_sub(struct state *s, int64_t id);
int idsync_put_role(struct state *s, const struct row *r, int64_t *id);
void idsync_del_role(struct state *s, int64_t id);
int idsync_put_key_role(struct state *s, const struct row *r, int64_t *id);
void idsync_del_key_role(struct state *s, int64_t id);
int idsync_put_tenant(struct state *s, const struct row *r, int64_t *id);
void idsync_del_tenant(struct state *s, int64_t id);
int idsync_put_group(struct state *s, const struct row *r, int64_t *id);
void idsync_del_group(struct state *s, int64_t id);
int idsync_put_member(struct state *s, const struct row *r, int64_t *id);
void idsync_del_member(struct state *s, int64_t id);

/* Parses an issuer's role_map text (a JSON object of strings) for tests. NULL when empty. */
json_t *idsync_role_map(const char *text, int *bad);

#endif /* JR_AUTHZ_IDSYNC_H */
