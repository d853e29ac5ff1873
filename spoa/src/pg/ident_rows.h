/*
 * pg/ident_rows (prefix pgid_): how pgsync reads the identity tables of sql/007_identity.sql into
 * a state's `struct ident`. Each table has a SELECT (pgsync appends its
 * "WHERE id = ANY($1)" for incremental changes), a column count, and put/del functions
 * with the row-reader signature of pg/rows.h (a row of text columns, util/row.h).
 *
 * A row that cannot be used (an unreadable key, an unknown algorithm) is logged with its
 * id and left out: an issuer without usable keys refuses its tokens, which is the safe way
 * to fail. Key material never reaches the log.
 */
#ifndef JR_PG_IDENT_ROWS_H
#define JR_PG_IDENT_ROWS_H

#include "state/state.h"
#include "util/row.h"

#include <stdint.h>

#define PGID_ISSUERS_SQL                                                                   \
	"SELECT id, name, issuer, coalesce(discovery_url, ''), array_to_string(algorithms, ','), " \
	"coalesce(audience, ''), leeway_s, require_exp, coalesce(tenant_id, 0), "           \
	"coalesce(tenant_claim, ''), coalesce(role_claim, ''), role_map::text, "            \
	"coalesce(array_to_string(default_roles, E'\\n'), ''), status, coalesce(introspection_url, ''), " \
	"coalesce(introspection_client_id, ''), coalesce(introspection_client_secret, ''), "  \
	"introspection_failure FROM jairouter.jwt_issuers"
#define PGID_ISSUERS_COLS 18
#define PGID_KEYS_SQL "SELECT id, issuer_id, coalesce(kid, ''), jwk, status FROM jairouter.jwt_issuer_keys"
#define PGID_KEYS_COLS 5
#define PGID_JTI_SQL "SELECT id, issuer_id, jti FROM jairouter.revoked_tokens"
#define PGID_JTI_COLS 3
#define PGID_SUB_SQL                                                                       \
	"SELECT id, issuer_id, subject, floor(extract(epoch FROM not_before))::bigint "      \
	"FROM jairouter.revoked_subjects"
#define PGID_SUB_COLS 4
#define PGID_ROLES_SQL                                                                     \
	"SELECT id, coalesce(tenant_id, 0), name, array_to_string(allow, E'\\n'), "          \
	"array_to_string(deny, E'\\n') FROM jairouter.roles"
#define PGID_ROLES_COLS 5
#define PGID_KEY_ROLES_SQL "SELECT id, key_id, role_id FROM jairouter.api_key_roles"
#define PGID_KEY_ROLES_COLS 3
#define PGID_TENANTS_SQL "SELECT id, name FROM jairouter.tenants"
#define PGID_TENANTS_COLS 2
#define PGID_GROUPS_SQL "SELECT id, name FROM jairouter.model_groups"
#define PGID_GROUPS_COLS 2
#define PGID_MEMBERS_SQL "SELECT id, group_id, model_id FROM jairouter.model_group_members"
#define PGID_MEMBERS_COLS 3

int pgid_put_issuer(struct state *s, const struct row *r, int64_t *id);
void pgid_del_issuer(struct state *s, int64_t id);
int pgid_put_key(struct state *s, const struct row *r, int64_t *id);
void pgid_del_key(struct state *s, int64_t id);
int pgid_put_jti(struct state *s, const struct row *r, int64_t *id);
void pgid_del_jti(struct state *s, int64_t id);
int pgid_put_sub(struct state *s, const struct row *r, int64_t *id);
void pgid_del_sub(struct state *s, int64_t id);
int pgid_put_role(struct state *s, const struct row *r, int64_t *id);
void pgid_del_role(struct state *s, int64_t id);
int pgid_put_key_role(struct state *s, const struct row *r, int64_t *id);
void pgid_del_key_role(struct state *s, int64_t id);
int pgid_put_tenant(struct state *s, const struct row *r, int64_t *id);
void pgid_del_tenant(struct state *s, int64_t id);
int pgid_put_group(struct state *s, const struct row *r, int64_t *id);
void pgid_del_group(struct state *s, int64_t id);
int pgid_put_member(struct state *s, const struct row *r, int64_t *id);
void pgid_del_member(struct state *s, int64_t id);

#endif /* JR_PG_IDENT_ROWS_H */
