/*
 * identity: bearer tokens that are not API keys (JWTs from the issuers of
 * sql/007_identity.sql), the verified-token cache, the address lock-out and the audit of
 * refused credentials. docs/identity.md is the operator's guide.
 *
 * A JWT is decided in this order (each refusal is 401 authentication_error):
 *   size -> cache -> parse -> issuer by `iss` (known, enabled) -> key by `kid` ->
 *   signature with the issuer's pinned algorithms -> exp/nbf/iat/aud -> revoked jti or
 *   subject -> tenant (fixed or from a claim) -> roles (from a claim, or the defaults).
 *
 * Verified-token cache: per worker thread (no lock, no sharing), TOKCACHE_SETS x 2 entries
 * keyed by the SHA-256 of the token. An entry lives until the token's exp (+ leeway) and
 * at most TOKCACHE_TTL seconds, so role renames are seen within that time. A hit still
 * checks, under the store's read lock, that the issuer is unchanged (its version moves
 * with every change of the issuer or its keys) and that neither the jti nor the subject
 * has been revoked since: revocation never waits for the cache. When both entries of a
 * set are taken, the one that expires first is replaced.
 *
 * Keys are published by the loader under the store's write lock; a worker copies the one
 * key it needs (a reference on the EVP_PKEY) under the read lock and verifies outside it.
 */
#include "pipeline/pipeline.h"

#include "abuse/abuse.h"
#include "audit/audit.h"
#include "auth/apikey.h"
#include "authz/ident.h"
#include "jwt/jwt.h"
#include "oidc/oidc.h"
#include "util/log.h"

#include <curl/curl.h>
#include <event2/event.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TOKCACHE_SETS 1024
#define TOKCACHE_TTL 60
#define KEYS_PER_ISSUER_MAX 64 /* keys of one issuer considered (a JWKS rarely has 5) */

struct tok_entry {
	uint8_t digest[SHA256_DIGEST_LENGTH];
	int used;
	int64_t valid_until;
	int64_t issuer_id;
	uint64_t issuer_version;
	uint64_t oidc_gen; /* the generation of the issuer's fetched keys (oidc/) */
	int64_t tenant_id;
	int64_t iat; /* -1 when the token has none */
	int inactive; /* introspection said "active": false (negative cache) */
	int nroles;
	int64_t role_ids[PL_ROLES_MAX];
	char issuer_name[ST_PREFIX_MAX];
	char iss[JWT_STR_MAX], sub[JWT_STR_MAX], jti[JWT_STR_MAX];
};

static _Thread_local struct tok_entry *tokcache;

void pl_worker_exit(void *arg)
{
	(void)arg;
	free(tokcache);
	tokcache = NULL;
}

static struct tok_entry *cache_find(const uint8_t *d, int64_t now)
{
	struct tok_entry *set;

	if (!tokcache)
		return NULL;
	set = &tokcache[(d[0] | d[1] << 8) % TOKCACHE_SETS * 2];
	for (int i = 0; i < 2; i++)
		if (set[i].used && set[i].valid_until > now && memcmp(set[i].digest, d, sizeof(set[i].digest)) == 0)
			return &set[i];
	return NULL;
}

static struct tok_entry *cache_slot(const uint8_t *d, int64_t now)
{
	struct tok_entry *set;

	if (!tokcache && !(tokcache = calloc(TOKCACHE_SETS * 2, sizeof(*tokcache))))
		return NULL; /* no cache: every token is verified */
	set = &tokcache[(d[0] | d[1] << 8) % TOKCACHE_SETS * 2];
	if (!set[0].used || set[0].valid_until <= now)
		return &set[0];
	if (!set[1].used || set[1].valid_until <= now)
		return &set[1];
	return set[0].valid_until <= set[1].valid_until ? &set[0] : &set[1];
}

static enum pl_result refuse(struct pl_ctx *ctx, enum pl_reason reason, const char *detail,
			     const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static enum pl_result refuse(struct pl_ctx *ctx, enum pl_reason reason, const char *detail,
			     const char *fmt, ...)
{
	char msg[PL_MESSAGE_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	ctx->auth_detail = detail;
	return pl_deny(ctx, 401, reason, "authentication_error",
		       reason == PL_R_TOKEN_EXPIRED ? "token_expired"
		       : reason == PL_R_TOKEN_REVOKED ? "token_revoked" : "invalid_token",
		       NULL, "%s", msg);
}

/* A claim by name or dotted path ("realm_access.roles"); NULL when absent. */
static const json_t *claim_at(const json_t *claims, const char *path)
{
	char seg[IDENT_CLAIM_MAX];
	const json_t *v = claims;

	while (v && *path) {
		size_t n = strcspn(path, ".");
		if (n >= sizeof(seg) || !json_is_object(v))
			return NULL;
		memcpy(seg, path, n);
		seg[n] = '\0';
		v = json_object_get(v, seg);
		path += n + (path[n] == '.');
	}
	return v;
}

/* A role by name for the token's tenant; claim values go through the issuer's role_map
 * (map set), the issuer's default roles do not. */
static void add_role(struct pl_ctx *ctx, const struct ident *id, const struct id_issuer *is,
		     const char *name, size_t len, int map)
{
	const struct id_role *r;

	if (map && is->role_map) {
		char key[IDENT_NAME_MAX * 4];
		const json_t *m;
		if (len >= sizeof(key))
			return;
		memcpy(key, name, len);
		key[len] = '\0';
		if (!(m = json_object_get(is->role_map, key)))
			return; /* only mapped values count */
		name = json_string_value(m);
		len = strlen(name);
	}
	if (!(r = ident_role_by_name(id, ctx->tenant_id, name, len)))
		return;
	for (int i = 0; i < ctx->nroles; i++)
		if (ctx->role_ids[i] == r->id)
			return;
	if (ctx->nroles < PL_ROLES_MAX)
		ctx->role_ids[ctx->nroles++] = r->id;
}

/* Roles from the role claim: an array of strings, or a space-separated string. */
static void map_roles(struct pl_ctx *ctx, const struct ident *id, const struct id_issuer *is,
		      const json_t *claims)
{
	const json_t *v = is->role_claim[0] ? claim_at(claims, is->role_claim) : NULL;

	ctx->nroles = 0;
	if (json_is_string(v)) {
		const char *p = json_string_value(v);
		while (*p) {
			size_t n = strcspn(p, " ");
			if (n)
				add_role(ctx, id, is, p, n, 1);
			p += n + (p[n] == ' ');
		}
	} else if (json_is_array(v)) {
		size_t i;
		const json_t *e;
		json_array_foreach(v, i, e)
			if (json_is_string(e))
				add_role(ctx, id, is, json_string_value(e), json_string_length(e), 1);
	}
	if (ctx->nroles == 0)
		for (int i = 0; i < is->ndefault_roles; i++)
			add_role(ctx, id, is, is->default_roles[i], strlen(is->default_roles[i]), 0);
}

/* Revocation, checked on every use (cached or not), under the read lock. */
static int revoked(const struct ident *id, int64_t issuer_id, const char *jti, const char *sub,
		   int64_t iat)
{
	int64_t nb;

	if (jti[0] && ident_jti_revoked(id, issuer_id, jti))
		return 1;
	nb = sub[0] ? ident_sub_not_before(id, issuer_id, sub) : -1;
	return nb >= 0 && (iat < 0 || iat < nb);
}

static void fill_identity(struct pl_ctx *ctx, const struct tok_entry *e)
{
	ctx->auth_kind = PL_AUTH_JWT;
	ctx->tenant_id = e->tenant_id;
	ctx->key_id = 0;
	ctx->issuer_id = e->issuer_id;
	ctx->rbac = 1;
	ctx->nroles = e->nroles;
	memcpy(ctx->role_ids, e->role_ids, sizeof(ctx->role_ids));
	snprintf(ctx->end_user, sizeof(ctx->end_user), "%s", e->sub);
	snprintf(ctx->jti, sizeof(ctx->jti), "%s", e->jti);
	snprintf(ctx->issuer, sizeof(ctx->issuer), "%s", e->iss);
	snprintf(ctx->out.key_prefix, sizeof(ctx->out.key_prefix), "%s", e->issuer_name);
}

/* A cache hit: PL_NEXT, a refusal (PL_DONE), or -1 when the entry is stale. */
static int cached(struct pl_ctx *ctx, const struct tok_entry *e)
{
	const struct state *s = store_read_begin();
	const struct ident *id = state_ident(s);
	const struct id_issuer *is = ident_issuer_by_id(id, e->issuer_id);
	const struct st_tenant *t = state_find_tenant(s, e->tenant_id);
	int fresh = is && is->enabled && is->version == e->issuer_version &&
		    (!is->discovery_url[0] || oidc_generation(e->issuer_id) == e->oidc_gen);
	int rev = fresh && revoked(id, e->issuer_id, e->jti, e->sub, e->iat);
	int off = !e->inactive && (!t || t->status != ST_ACTIVE);

	store_read_end();
	if (!fresh)
		return -1; /* the issuer or its keys changed: verify again */
	if (e->inactive)
		return refuse(ctx, PL_R_INVALID_TOKEN, "inactive", "The token is not active.");
	fill_identity(ctx, e);
	if (rev)
		return refuse(ctx, PL_R_TOKEN_REVOKED, "revoked", "This token has been revoked.");
	if (off)
		return refuse(ctx, PL_R_TENANT_DISABLED, "tenant_disabled", "The token's tenant is disabled.");
	return PL_NEXT;
}

static enum pl_result jwt_refused(struct pl_ctx *ctx, int rc, const struct jwt_parsed *p)
{
	char when[40];
	struct tm tm;
	time_t t;

	switch (rc) {
	case JWT_E_TOO_LARGE:
		return refuse(ctx, PL_R_INVALID_TOKEN, "too_large",
			      "The bearer token is larger than the gateway accepts (8192 bytes).");
	case JWT_E_ALG:
		return refuse(ctx, PL_R_INVALID_TOKEN, "algorithm_not_allowed",
			      "The token's signing algorithm '%s' is not accepted for its issuer.", p->alg_name);
	case JWT_E_NO_KEY:
		return refuse(ctx, PL_R_INVALID_TOKEN, "unknown_key",
			      "No key of the token's issuer matches it (kid '%s').", p->kid);
	case JWT_E_SIGNATURE:
		return refuse(ctx, PL_R_INVALID_TOKEN, "bad_signature", "The token's signature is invalid.");
	case JWT_E_EXPIRED:
		t = (time_t)p->exp;
		gmtime_r(&t, &tm);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
		return refuse(ctx, PL_R_TOKEN_EXPIRED, "expired", "The token expired at %s.", when);
	case JWT_E_NOT_YET_VALID:
		return refuse(ctx, PL_R_INVALID_TOKEN, "not_yet_valid", "The token is not valid yet (nbf/iat).");
	case JWT_E_AUDIENCE:
		return refuse(ctx, PL_R_INVALID_TOKEN, "wrong_audience",
			      "The token was not issued for this gateway (aud).");
	case JWT_E_MISSING_EXP:
		return refuse(ctx, PL_R_INVALID_TOKEN, "missing_exp", "The token has no expiry (exp).");
	case JWT_E_CRIT:
		return refuse(ctx, PL_R_INVALID_TOKEN, "unsupported_critical_header",
			      "The token uses a critical header extension the gateway does not implement.");
	default:
		return refuse(ctx, PL_R_INVALID_TOKEN, "malformed",
			      "The bearer token is neither an API key nor a well-formed JWT.");
	}
}

/* What the checks after the signature need, copied out of the store. */
struct issuer_view {
	int64_t id;
	uint64_t version, oidc_gen;
	int oidc;
	unsigned algs;
	char name[IDENT_NAME_MAX];
	char audience[JWT_STR_MAX];
	int leeway, require_exp;
	struct jwt_key key; /* the selected key: a reference (pkey) or a copy (secret) */
};

/* Issuer and key, under the read lock. 0, or a refusal already set (returns 1). */
static int pick_key(struct pl_ctx *ctx, const struct jwt_parsed *p, struct issuer_view *v, enum pl_result *res)
{
	static _Thread_local struct jwt_key keys[KEYS_PER_ISSUER_MAX];
	const struct state *s = store_read_begin();
	const struct ident *id = state_ident(s);
	const struct id_issuer *is = p->iss[0] ? ident_issuer_by_iss(id, p->iss) : NULL;
	size_t n;
	int idx;

	if (!is || !is->enabled) {
		store_read_end();
		*res = refuse(ctx, PL_R_INVALID_TOKEN, is ? "issuer_disabled" : "unknown_issuer", "%s",
			      is ? "The token's issuer is disabled." : "The token's issuer is not trusted by this gateway.");
		return 1;
	}
	v->id = is->id;
	v->version = is->version;
	v->algs = is->algs;
	v->leeway = is->leeway;
	v->require_exp = is->require_exp;
	snprintf(v->name, sizeof(v->name), "%s", is->name);
	snprintf(v->audience, sizeof(v->audience), "%s", is->audience);
	ctx->issuer_id = is->id;
	v->oidc = is->discovery_url[0] != 0;
	n = ident_issuer_keys(id, is->id, keys, KEYS_PER_ISSUER_MAX);
	/* Keys fetched from the issuer's JWKS (oidc/) come after its static rows. */
	if (v->oidc)
		n = oidc_keys_begin(is->id, keys, n, KEYS_PER_ISSUER_MAX, &v->oidc_gen);
	idx = jwt_select_key(p, keys, n);
	if (idx >= 0) {
		v->key = keys[idx];
		if (v->key.pkey)
			EVP_PKEY_up_ref(v->key.pkey);
		if (v->key.secret) {
			v->key.secret = malloc(v->key.secret_len);
			if (v->key.secret)
				memcpy(v->key.secret, keys[idx].secret, v->key.secret_len);
			else
				v->key.secret_len = 0;
		}
	}
	memset(keys, 0, n * sizeof(keys[0]));
	if (v->oidc)
		oidc_keys_end();
	store_read_end();
	if (idx < 0 && v->oidc && p->alg >= 0 && (v->algs & (1u << p->alg)))
		oidc_want_refresh(v->id); /* maybe a key the provider has just rotated in */
	if (idx < 0) {
		*res = jwt_refused(ctx, p->alg < 0 || !(v->algs & (1u << p->alg)) ? JWT_E_ALG : JWT_E_NO_KEY, p);
		return 1;
	}
	return 0;
}

/* After the signature and claims: revocation, tenant and roles, under the read lock. */
static enum pl_result bind_identity(struct pl_ctx *ctx, const struct jwt_parsed *p,
				    const struct issuer_view *v, struct tok_entry *e)
{
	const struct state *s = store_read_begin();
	const struct ident *id = state_ident(s);
	const struct id_issuer *is = ident_issuer_by_id(id, v->id);
	const json_t *tc;
	const struct st_tenant *t;
	char tenant[ST_NAME_MAX] = "";

	if (!is || !is->enabled) {
		store_read_end();
		return refuse(ctx, PL_R_INVALID_TOKEN, "issuer_disabled", "The token's issuer is disabled.");
	}
	if (revoked(id, is->id, p->jti, p->sub, p->has_iat ? p->iat : -1)) {
		store_read_end();
		return refuse(ctx, PL_R_TOKEN_REVOKED, "revoked", "This token has been revoked.");
	}
	ctx->tenant_id = is->tenant_id;
	if (!ctx->tenant_id) {
		tc = claim_at(p->claims, is->tenant_claim);
		if (json_is_string(tc) && json_string_length(tc) < sizeof(tenant)) {
			snprintf(tenant, sizeof(tenant), "%s", json_string_value(tc));
			ctx->tenant_id = ident_tenant_by_name(id, tenant, strlen(tenant));
		}
	}
	if (!ctx->tenant_id) {
		store_read_end();
		return refuse(ctx, PL_R_INVALID_TOKEN, "unknown_tenant",
			      "The token does not name a tenant of this gateway%s.", tenant[0] ? " (unknown tenant)" : "");
	}
	t = state_find_tenant(s, ctx->tenant_id);
	if (!t || t->status != ST_ACTIVE) {
		store_read_end();
		/* A token is no credential while its tenant is disabled (401, unlike the 403 of
		 * an API key of such a tenant, which is a credential the operator suspended). */
		return refuse(ctx, PL_R_TENANT_DISABLED, "tenant_disabled", "The token's tenant is disabled.");
	}
	map_roles(ctx, id, is, p->claims);
	store_read_end();

	memset(e, 0, sizeof(*e));
	e->issuer_id = v->id;
	e->issuer_version = v->version;
	e->oidc_gen = v->oidc_gen;
	e->tenant_id = ctx->tenant_id;
	e->iat = p->has_iat ? p->iat : -1;
	e->nroles = ctx->nroles;
	memcpy(e->role_ids, ctx->role_ids, sizeof(e->role_ids));
	snprintf(e->issuer_name, sizeof(e->issuer_name), "%.*s", (int)sizeof(e->issuer_name) - 1, v->name);
	snprintf(e->iss, sizeof(e->iss), "%s", p->iss);
	snprintf(e->sub, sizeof(e->sub), "%s", p->sub);
	snprintf(e->jti, sizeof(e->jti), "%s", p->jti);
	fill_identity(ctx, e);
	return PL_NEXT;
}

enum pl_result pl_identity_token(struct pl_ctx *ctx, const char *tok, size_t len)
{
	uint8_t d[SHA256_DIGEST_LENGTH];
	int64_t now = ctx->policy.now_unix;
	struct tok_entry *e, fresh;
	struct jwt_parsed p;
	struct jwt_rules rules;
	struct issuer_view v;
	enum pl_result res;
	int rc;

	if (len > JWT_TOKEN_MAX)
		return jwt_refused(ctx, JWT_E_TOO_LARGE, NULL);
	SHA256((const unsigned char *)tok, len, d);
	if ((e = cache_find(d, now)) && (rc = cached(ctx, e)) >= 0)
		return (enum pl_result)rc;
	if ((rc = jwt_parse(tok, len, &p)) != JWT_OK)
		return jwt_refused(ctx, rc, &p);
	snprintf(ctx->issuer, sizeof(ctx->issuer), "%s", p.iss);
	snprintf(ctx->end_user, sizeof(ctx->end_user), "%s", p.sub);
	snprintf(ctx->jti, sizeof(ctx->jti), "%s", p.jti);
	memset(&v, 0, sizeof(v));
	if (pick_key(ctx, &p, &v, &res)) {
		jwt_parsed_free(&p);
		return res;
	}
	rc = jwt_verify_sig(&p, &v.key, v.algs);
	jwt_key_free(&v.key);
	if (rc == JWT_OK) {
		rules = (struct jwt_rules){ p.iss, v.audience, v.leeway, v.require_exp };
		rc = jwt_check_claims(&p, &rules, now);
	}
	if (rc != JWT_OK) {
		res = jwt_refused(ctx, rc, &p);
		jwt_parsed_free(&p);
		return res;
	}
	res = bind_identity(ctx, &p, &v, &fresh);
	if (res == PL_NEXT && (e = cache_slot(d, now))) {
		*e = fresh;
		memcpy(e->digest, d, sizeof(d));
		e->used = 1;
		e->valid_until = now + TOKCACHE_TTL;
		if (p.has_exp && p.exp + v.leeway < e->valid_until)
			e->valid_until = p.exp + v.leeway;
	}
	jwt_parsed_free(&p);
	return res;
}

/* ---- the guard around the identity stage ------------------------------------------------ */

/* One security-audit entry for the request in ctx (identity refusals, lock-outs, RBAC
 * denials): who asked, from where, with which credential's public parts. */
void pl_audit(struct pl_ctx *ctx, const char *event, const char *reason, int status)
{
	struct audit_event a;
	char rid[AUDIT_STR_MAX] = "";
	size_t n = ctx->in.request_id.ptr ? ctx->in.request_id.len : 0;

	memset(&a, 0, sizeof(a));
	if (n >= sizeof(rid))
		n = sizeof(rid) - 1;
	if (n)
		memcpy(rid, ctx->in.request_id.ptr, n);
	a.event = event;
	a.reason = reason;
	a.family = ctx->in.src_family;
	memcpy(a.addr, ctx->in.src, sizeof(a.addr));
	a.key_prefix = ctx->out.key_prefix;
	a.issuer = ctx->issuer;
	a.subject = ctx->end_user;
	a.jti = ctx->jti;
	a.request_id = rid;
	a.tenant_id = ctx->tenant_id;
	a.status = status;
	audit_emit(&a);
}

/* The prefix of a presented API key, for the audit of a refused one (never the key). */
static void presented_prefix(struct pl_ctx *ctx)
{
	const char *tok = NULL;
	size_t len = 0;

	if (ctx->out.key_prefix[0] || ctx->issuer[0])
		return;
	if (auth_credential(ctx->in.authorization.ptr, ctx->in.authorization.len, ctx->in.api_key.ptr,
			    ctx->in.api_key.len, &tok, &len) == 1 && auth_key_wellformed(tok, len))
		snprintf(ctx->out.key_prefix, sizeof(ctx->out.key_prefix), "%.11s", tok);
}

static enum pl_result guard_after(struct pl_ctx *ctx, enum pl_result r);

enum pl_result pl_identity_guard(struct pl_ctx *ctx, enum pl_result (*inner)(struct pl_ctx *))
{
	int64_t now = ctx->policy.now_unix;
	int left = abuse_locked(ctx->in.src_family, ctx->in.src, now);
	enum pl_result r;

	if (left > 0) {
		pl_deny(ctx, 429, PL_R_TOO_MANY_FAILURES, "rate_limit_error", "too_many_failed_attempts",
			NULL, "Too many failed authentication attempts from your address. Retry in %d seconds.", left);
		ctx->out.retry_after = left;
		return PL_DONE;
	}
	if (ctx->in.authorization.ptr && ctx->in.authorization.len > AUTH_CREDENTIAL_MAX)
		r = jwt_refused(ctx, JWT_E_TOO_LARGE, NULL); /* unread */
	else
		r = inner(ctx);
	return guard_after(ctx, r);
}

/* What follows a credential check, synchronous or not: a refusal counts against the
 * address and is audited; a key's roles are read. */
static enum pl_result guard_after(struct pl_ctx *ctx, enum pl_result r)
{
	int64_t now = ctx->policy.now_unix;

	if (r == PL_DONE && ctx->out.status == 401) {
		int lock = abuse_failure(ctx->in.src_family, ctx->in.src, now);

		presented_prefix(ctx);
		pl_audit(ctx, "auth_failure", ctx->auth_detail ? ctx->auth_detail : pl_reason_name(ctx->out.reason),
			 ctx->out.status);
		if (lock > 0) {
			ctx->out.retry_after = lock;
			pl_audit(ctx, "lockout", pl_reason_name(PL_R_TOO_MANY_FAILURES), ctx->out.status);
		}
		return r;
	}
	if (r == PL_NEXT && ctx->auth_kind == PL_AUTH_KEY) {
		/* A key with roles is held to them; one without keeps its tenant's reach. */
		ctx->nroles = ident_key_roles(state_ident(store_read_begin()), ctx->key_id, ctx->role_ids, PL_ROLES_MAX);
		store_read_end();
		ctx->rbac = ctx->nroles > 0;
	}
	return r;
}

/* ---- opaque tokens: RFC 7662 introspection -------------------------------------------- */

#define NEGATIVE_TTL 30 /* seconds an inactive token is remembered */

/* One introspection in flight: the request (run by the control thread, oidc/) and what
 * the answer is checked against. */
struct intro_wait {
	struct pl_ctx *ctx;
	struct oidc_introspection q;
	struct issuer_view v;
	char iss[JWT_STR_MAX];
	int reject; /* the issuer's failure policy: 401 (1) or 503 (0) */
	uint8_t digest[SHA256_DIGEST_LENGTH];
};

struct intro_pick {
	const struct id_issuer *best;
};

static void pick_introspection(const struct id_issuer *is, void *arg)
{
	struct intro_pick *p = arg;

	if (is->enabled && is->introspection_url[0] && (!p->best || is->id < p->best->id))
		p->best = is;
}

static enum pl_result intro_failed(struct pl_ctx *ctx, int reject, const char *why)
{
	log_event(LOG_WARN, "introspection_failed", LOG_FIELDS(LOG_S("error", why)),
		  "identity: token introspection failed: %s", why);
	if (reject)
		return refuse(ctx, PL_R_INVALID_TOKEN, "introspection_failed",
			      "The token could not be checked with its issuer.");
	ctx->auth_detail = "introspection_failed";
	pl_deny(ctx, 503, PL_R_INTERNAL, "server_error", "identity_provider_unavailable", NULL,
		"The gateway cannot check this token with its identity provider right now. Please retry shortly.");
	ctx->out.retry_after = 5;
	return PL_DONE;
}

static void cache_put(const uint8_t *d, const struct tok_entry *fresh, int64_t now, int64_t until)
{
	struct tok_entry *e = cache_slot(d, now);

	if (!e)
		return;
	*e = *fresh;
	memcpy(e->digest, d, sizeof(e->digest));
	e->used = 1;
	e->valid_until = until < now + TOKCACHE_TTL ? until : now + TOKCACHE_TTL;
}

/* A string member of the answer into dst, or "". */
static void answer_str(const json_t *j, const char *name, char *dst, size_t cap)
{
	const char *v = json_string_value(json_object_get(j, name));

	snprintf(dst, cap, "%s", v && strlen(v) < cap ? v : "");
}

static enum pl_result intro_finish(struct intro_wait *w)
{
	struct pl_ctx *ctx = w->ctx;
	int64_t now = ctx->policy.now_unix;
	struct jwt_parsed p;
	struct tok_entry fresh;
	json_error_t e;
	json_t *j = NULL;
	const json_t *v;
	enum pl_result r;
	char why[300];

	if (w->q.failed || w->q.status != 200) {
		if (w->q.failed)
			snprintf(why, sizeof(why), "%s", w->q.err);
		else
			snprintf(why, sizeof(why), "HTTP %ld", w->q.status);
		return intro_failed(ctx, w->reject, why);
	}
	if (!w->q.body || !(j = json_loadb(w->q.body, w->q.len, JSON_REJECT_DUPLICATES, &e)) ||
	    !json_is_object(j) || !json_is_boolean(json_object_get(j, "active"))) {
		json_decref(j);
		return intro_failed(ctx, w->reject, "the answer is not an RFC 7662 JSON object");
	}
	if (!json_is_true(json_object_get(j, "active"))) {
		memset(&fresh, 0, sizeof(fresh));
		fresh.issuer_id = w->v.id;
		fresh.issuer_version = w->v.version;
		fresh.inactive = 1;
		cache_put(w->digest, &fresh, now, now + NEGATIVE_TTL);
		json_decref(j);
		return refuse(ctx, PL_R_INVALID_TOKEN, "inactive", "The token is not active.");
	}
	memset(&p, 0, sizeof(p));
	p.claims = j;
	answer_str(j, "iss", p.iss, sizeof(p.iss));
	answer_str(j, "jti", p.jti, sizeof(p.jti));
	answer_str(j, "sub", p.sub, sizeof(p.sub));
	if (!p.sub[0]) /* client-credentials tokens: the client is the user */
		answer_str(j, "client_id", p.sub, sizeof(p.sub));
	if ((v = json_object_get(j, "exp")) && json_is_integer(v))
		p.has_exp = 1, p.exp = json_integer_value(v);
	if ((v = json_object_get(j, "iat")) && json_is_integer(v))
		p.has_iat = 1, p.iat = json_integer_value(v);
	snprintf(ctx->issuer, sizeof(ctx->issuer), "%s", w->iss);
	snprintf(ctx->end_user, sizeof(ctx->end_user), "%s", p.sub);
	snprintf(ctx->jti, sizeof(ctx->jti), "%s", p.jti);
	if (p.iss[0] && strcmp(p.iss, w->iss) != 0) {
		json_decref(j);
		return refuse(ctx, PL_R_INVALID_TOKEN, "wrong_issuer", "The token was issued by another issuer.");
	}
	if (p.has_exp && now >= p.exp + w->v.leeway) {
		json_decref(j);
		return refuse(ctx, PL_R_TOKEN_EXPIRED, "expired", "The token has expired.");
	}
	snprintf(p.iss, sizeof(p.iss), "%s", w->iss);
	r = bind_identity(ctx, &p, &w->v, &fresh);
	if (r == PL_NEXT)
		cache_put(w->digest, &fresh, now, p.has_exp ? p.exp + w->v.leeway : now + TOKCACHE_TTL);
	json_decref(j);
	return r;
}

static void intro_free(struct intro_wait *w)
{
	event_free(w->q.done);
	if (w->q.form)
		OPENSSL_cleanse(w->q.form, strlen(w->q.form));
	free(w->q.form);
	free(w->q.body);
	OPENSSL_cleanse(w->q.pass, sizeof(w->q.pass));
	free(w);
}

/* On the worker's loop, once the control thread has the answer. */
static void intro_done(evutil_socket_t fd, short what, void *arg)
{
	struct intro_wait *w = arg;
	struct pl_ctx *ctx = w->ctx;
	enum pl_result r = PL_DONE;

	(void)fd;
	(void)what;
	if (!ctx->abandoned) /* else the deadline answered already: only release */
		r = guard_after(ctx, intro_finish(w));
	intro_free(w);
	pl_resume(ctx, r);
}

enum pl_result pl_identity_opaque(struct pl_ctx *ctx, const char *tok, size_t len)
{
	int64_t now = ctx->policy.now_unix;
	struct event_base *base = ctx->base;
	struct intro_pick pick = { NULL };
	struct intro_wait *w;
	struct tok_entry *e;
	char *esc;
	int rc;

	if (len > JWT_TOKEN_MAX)
		return jwt_refused(ctx, JWT_E_TOO_LARGE, NULL);
	w = calloc(1, sizeof(*w));
	if (!w)
		return pl_fail(ctx, PL_R_INTERNAL);
	SHA256((const unsigned char *)tok, len, w->digest);
	if ((e = cache_find(w->digest, now)) && (rc = cached(ctx, e)) >= 0) {
		free(w);
		return (enum pl_result)rc;
	}
	ident_each_issuer(state_ident(store_read_begin()), pick_introspection, &pick);
	if (pick.best) {
		const struct id_issuer *is = pick.best;
		w->v.id = is->id;
		w->v.version = is->version;
		w->v.leeway = is->leeway;
		snprintf(w->v.name, sizeof(w->v.name), "%s", is->name);
		snprintf(w->iss, sizeof(w->iss), "%s", is->iss);
		snprintf(w->q.url, sizeof(w->q.url), "%s", is->introspection_url);
		snprintf(w->q.user, sizeof(w->q.user), "%s", is->client_id);
		snprintf(w->q.pass, sizeof(w->q.pass), "%s", is->client_secret);
		w->reject = is->introspection_reject;
	}
	store_read_end();
	if (!pick.best) { /* no introspection configured: as before, not one of our keys */
		free(w);
		return pl_deny(ctx, 401, PL_R_INVALID_KEY, "authentication_error", "invalid_api_key", NULL,
			       "Incorrect API key provided.");
	}
	ctx->issuer_id = w->v.id;
	snprintf(ctx->issuer, sizeof(ctx->issuer), "%s", w->iss);
	esc = curl_easy_escape(NULL, tok, (int)len);
	if (esc) {
		size_t n = strlen(esc) + 48;
		w->q.form = malloc(n);
		if (w->q.form)
			snprintf(w->q.form, n, "token=%s&token_type_hint=access_token", esc);
		OPENSSL_cleanse(esc, strlen(esc));
		curl_free(esc);
	}
	w->ctx = ctx;
	if (base && w->q.form)
		w->q.done = event_new(base, -1, 0, intro_done, w);
	if (!w->q.done || oidc_introspect(&w->q) < 0) {
		int reject = w->reject;
		if (w->q.done)
			event_free(w->q.done);
		w->q.done = NULL;
		free(w->q.form);
		w->q.form = NULL;
		OPENSSL_cleanse(w->q.pass, sizeof(w->q.pass));
		free(w);
		return intro_failed(ctx, reject, "no introspection slot (queue full or fetcher stopped)");
	}
	return PL_PENDING;
}
