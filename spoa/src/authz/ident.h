/*
 * ident: the identity part of the in-memory catalogue (sql/007_identity.sql): JWT
 * issuers and their static keys, revoked token ids and subjects, roles, the roles of API
 * keys, and the names the role checks need (tenants, model groups and their members).
 *
 * One `struct ident` lives inside each `struct state` (state_ident()), so it is loaded,
 * swapped and locked together with the rest of the catalogue: a full load builds a fresh
 * one, a NOTIFY changes the live one under the store's write lock, and every reader holds
 * the store's read lock while it looks (pointers are valid only under that lock; callers
 * copy out what they keep).
 *
 * Bounds: a role holds at most IDENT_PERMS_MAX permissions (the SQL allows 64 allow and 64
 * deny); a key at most IDENT_KEY_ROLES_MAX roles (more are ignored and logged once by the
 * loader); an issuer at most IDENT_DEFAULT_ROLES_MAX default roles.
 */
#ifndef JR_AUTHZ_IDENT_H
#define JR_AUTHZ_IDENT_H

#include "jwt/jwt.h"

#include <stddef.h>
#include <stdint.h>

#define IDENT_NAME_MAX 64
#define IDENT_CLAIM_MAX 272 /* a dotted claim path (SQL: at most 4 segments of 64) */
#define IDENT_URL_MAX 512
#define IDENT_PERM_TARGET_MAX 128
#define IDENT_PERMS_MAX 128
#define IDENT_KEY_ROLES_MAX 16
#define IDENT_DEFAULT_ROLES_MAX 16

struct id_issuer {
	int64_t id;
	char name[IDENT_NAME_MAX];
	char iss[JWT_STR_MAX];
	char discovery_url[IDENT_URL_MAX]; /* "" = static keys only */
	unsigned algs;                     /* 1 << enum jwt_alg */
	char audience[JWT_STR_MAX];        /* "" = not checked */
	int leeway;
	int require_exp;
	int64_t tenant_id;                 /* fixed tenant, or 0: tenant_claim names it */
	char tenant_claim[IDENT_CLAIM_MAX];
	char role_claim[IDENT_CLAIM_MAX];  /* "" = no role claim */
	json_t *role_map;                  /* object claim value -> role name; NULL or empty: none */
	char default_roles[IDENT_DEFAULT_ROLES_MAX][IDENT_NAME_MAX];
	int ndefault_roles;
	int enabled;
	/* RFC 7662 introspection of opaque tokens ("" = none); never logged. */
	char introspection_url[IDENT_URL_MAX];
	char client_id[128];
	char client_secret[256];
	int introspection_reject; /* on failure: 401 (1) or 503 (0) */
	uint64_t version; /* changes whenever this issuer or one of its keys changes */
};

struct id_key {
	int64_t id;
	int64_t issuer_id;
	int enabled;
	struct jwt_key key;
};

enum id_perm_kind {
	IDP_ALL = 1,  /* "*" */
	IDP_SERVICE,  /* service:<name>|* */
	IDP_MODEL,    /* model:<name>|* */
	IDP_GROUP,    /* group:<name> */
	IDP_ACTION,   /* usage:read, audit:read, admin */
};

struct id_perm {
	enum id_perm_kind kind;
	int deny;
	char target[IDENT_PERM_TARGET_MAX]; /* "*" or a name; the whole text for IDP_ACTION */
};

struct id_role {
	int64_t id;
	int64_t tenant_id; /* 0 = global */
	char name[IDENT_NAME_MAX];
	int nperms;
	struct id_perm *perms;
};

struct ident;

struct ident *ident_new(void);
void ident_free(struct ident *id);

/* Writers (the loader, under the store's write lock or on a state not yet published).
 * A put replaces the row with the same id. */
void ident_put_issuer(struct ident *id, const struct id_issuer *is); /* takes role_map */
/* An issuer's role_map text (a JSON object of strings, each shorter than IDENT_NAME_MAX):
 * the object, or NULL when empty or unreadable (*bad = 1 then). */
json_t *ident_role_map_parse(const char *text, int *bad);
void ident_del_issuer(struct ident *id, int64_t issuer_id);
void ident_put_key(struct ident *id, struct id_key *k); /* takes k->key */
void ident_del_key(struct ident *id, int64_t key_row_id);
void ident_put_revoked_jti(struct ident *id, int64_t row_id, int64_t issuer_id, const char *jti);
void ident_del_revoked_jti(struct ident *id, int64_t row_id);
void ident_put_revoked_sub(struct ident *id, int64_t row_id, int64_t issuer_id, const char *sub,
			   int64_t not_before);
void ident_del_revoked_sub(struct ident *id, int64_t row_id);
void ident_put_role(struct ident *id, const struct id_role *r); /* copies perms */
void ident_del_role(struct ident *id, int64_t role_id);
void ident_put_key_role(struct ident *id, int64_t row_id, int64_t key_id, int64_t role_id);
void ident_del_key_role(struct ident *id, int64_t row_id);
void ident_put_tenant_name(struct ident *id, int64_t tenant_id, const char *name);
void ident_del_tenant_name(struct ident *id, int64_t tenant_id);
void ident_put_group(struct ident *id, int64_t group_id, const char *name);
void ident_del_group(struct ident *id, int64_t group_id);
void ident_put_member(struct ident *id, int64_t row_id, int64_t group_id, int64_t model_id);
void ident_del_member(struct ident *id, int64_t row_id);

/* Parses a permission ("service:chat", "model:gpt-4o", "admin", ...). 0 or -1. */
int ident_perm_parse(const char *text, size_t len, int deny, struct id_perm *out);

/* Readers (under the store's read lock). */
const struct id_issuer *ident_issuer_by_iss(const struct ident *id, const char *iss);
const struct id_issuer *ident_issuer_by_id(const struct ident *id, int64_t issuer_id);
/* Copies (shallow) the enabled keys of an issuer into out; returns how many (<= max). */
size_t ident_issuer_keys(const struct ident *id, int64_t issuer_id, struct jwt_key *out, size_t max);
int ident_jti_revoked(const struct ident *id, int64_t issuer_id, const char *jti);
/* The not_before of a revoked subject (unix seconds), or -1 when it is not revoked. */
int64_t ident_sub_not_before(const struct ident *id, int64_t issuer_id, const char *sub);
int64_t ident_tenant_by_name(const struct ident *id, const char *name, size_t len); /* 0: none */
/* A tenant's own role of that name, else the global one; NULL when neither. */
const struct id_role *ident_role_by_name(const struct ident *id, int64_t tenant_id,
					 const char *name, size_t len);
const struct id_role *ident_role_by_id(const struct ident *id, int64_t role_id);
/* The role ids of an API key (0 when it has none). */
int ident_key_roles(const struct ident *id, int64_t key_id, int64_t *out, int max);
/* Whether the model is a member of the group named name. */
int ident_model_in_group(const struct ident *id, int64_t model_id, const char *name);
size_t ident_count_issuers(const struct ident *id);
void ident_each_issuer(const struct ident *id, void (*fn)(const struct id_issuer *, void *), void *arg);
size_t ident_count_roles(const struct ident *id);

#endif /* JR_AUTHZ_IDENT_H */
