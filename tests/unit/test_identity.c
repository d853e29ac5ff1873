/*
 * test_identity: JWT identities through the decision pipeline (issuer, keys, claims,
 * revocation, tenants, roles), the verified-token cache, RBAC (deny wins, groups, role
 * maps, default roles, API keys with roles) and the address lock-out. No sockets: a
 * context is filled and run through pl_default_stages against an in-memory catalogue.
 */
#include "abuse/abuse.h"
#include "auth/apikey.h"
#include "authz/ident.h"
#include "pipeline/pipeline.h"
#include "state/state.h"
#include "util/json.h"

#include "fixtures.h"
#include "jwt_fixtures.h"
#include "testlib.h"

#include <openssl/pem.h>

#define NOW 1800000000LL
#define ISS "https://idp.example"
#define ISS2 "https://org-idp.example"
#define KEY_PLAIN "jr-00000000000000000000000000000000000000000000000000000000000000aa"
#define KEY_ROLES "jr-00000000000000000000000000000000000000000000000000000000000000bb"


static EVP_PKEY *rsa, *ec;
static const uint8_t SECRET[32] = "0123456789abcdef0123456789abcdef";

static void add_key(struct ident *id, int64_t row, int64_t issuer, EVP_PKEY *k, const char *kid)
{
	char jwk[4096], err[128];
	struct id_key key;

	memset(&key, 0, sizeof(key));
	key.id = row;
	key.issuer_id = issuer;
	key.enabled = 1;
	fxj_jwk(k, kid, jwk, sizeof(jwk));
	CHECK_EQ_INT(jwk_parse_text(jwk, strlen(jwk), NULL, &key.key, err, sizeof(err)), 0);
	ident_put_key(id, &key);
}

static void add_role(struct ident *id, int64_t rid, int64_t tenant, const char *name,
		     const char *allow, const char *deny)
{
	struct id_perm perms[8];
	struct id_role r;
	const char *lists[2] = { deny, allow };

	memset(&r, 0, sizeof(r));
	r.id = rid;
	r.tenant_id = tenant;
	snprintf(r.name, sizeof(r.name), "%s", name);
	r.perms = perms;
	for (int l = 0; l < 2; l++)
		for (const char *p = lists[l]; p && *p;) {
			size_t n = strcspn(p, ",");
			CHECK_EQ_INT(ident_perm_parse(p, n, l == 0, &perms[r.nperms++]), 0);
			p += n + (p[n] == ',');
		}
	ident_put_role(id, &r);
}

static void put_key_row(struct state *s, int64_t id, int64_t tenant, const char *key)
{
	struct st_key k;

	memset(&k, 0, sizeof(k));
	k.id = id;
	k.tenant_id = tenant;
	auth_key_hash(key, strlen(key), k.hash);
	snprintf(k.prefix, sizeof(k.prefix), "%.11s", key);
	state_put_key(s, &k);
}

/* Tenants acme (1, active) and frozen (2, disabled); models demo-model (in group "cheap")
 * and big-model; issuer 1 (fixed tenant acme, RS256/ES256, aud jairouter, roles claim),
 * issuer 2 (tenant from claim "org", HS256, scope roles, role_map, default role). */
static void load(void)
{
	struct state *s = state_new();
	struct ident *id = state_ident(s);
	struct st_tenant acme = { 1, "acme", ST_ACTIVE, "" }, frozen = { 2, "frozen", ST_DISABLED, "" };
	struct st_model m1 = { .id = 1, .name = "demo-model", .backend = "be_mock" };
	struct st_model m2 = { .id = 2, .name = "big-model", .backend = "be_mock" };
	struct id_issuer is;
	int bad;

	m1.services = m2.services = FX_SERVICES_ALL;
	state_put_tenant(s, &acme);
	state_put_tenant(s, &frozen);
	state_put_model(s, &m1);
	state_put_model(s, &m2);
	ident_put_tenant_name(id, 1, "acme");
	ident_put_tenant_name(id, 2, "frozen");
	ident_put_group(id, 7, "cheap");
	ident_put_member(id, 70, 7, 1);
	put_key_row(s, 1, 1, KEY_PLAIN);
	put_key_row(s, 2, 1, KEY_ROLES);

	memset(&is, 0, sizeof(is));
	is.id = 1;
	snprintf(is.name, sizeof(is.name), "corp");
	snprintf(is.iss, sizeof(is.iss), ISS);
	is.algs = (1u << JWT_RS256) | (1u << JWT_ES256);
	snprintf(is.audience, sizeof(is.audience), "jairouter");
	is.leeway = 30;
	is.require_exp = 1;
	is.tenant_id = 1;
	snprintf(is.role_claim, sizeof(is.role_claim), "realm.roles");
	is.enabled = 1;
	ident_put_issuer(id, &is);
	add_key(id, 10, 1, rsa, "rsa-1");
	add_key(id, 11, 1, ec, "ec-1");

	memset(&is, 0, sizeof(is));
	is.id = 2;
	snprintf(is.name, sizeof(is.name), "org");
	snprintf(is.iss, sizeof(is.iss), ISS2);
	is.algs = 1u << JWT_HS256;
	is.require_exp = 1;
	snprintf(is.tenant_claim, sizeof(is.tenant_claim), "org");
	snprintf(is.role_claim, sizeof(is.role_claim), "scope");
	is.role_map = ident_role_map_parse("{\"gw.chat\":\"user\",\"gw.admin\":\"admin\"}", &bad);
	snprintf(is.default_roles[0], sizeof(is.default_roles[0]), "reader");
	is.ndefault_roles = 1;
	is.enabled = 1;
	ident_put_issuer(id, &is);
	CHECK_EQ_INT(fxj_put_secret(id, 20, 2, SECRET, sizeof(SECRET), "h1"), 0);

	add_role(id, 100, 0, "user", "service:chat,model:*", NULL);
	add_role(id, 101, 0, "admin", "*", NULL);
	add_role(id, 102, 0, "reader", "service:models", NULL);
	add_role(id, 103, 1, "no-big", "service:*,group:cheap", "model:big-model");
	add_role(id, 104, 0, "embed-only", "service:embeddings,model:*", NULL);
	ident_put_key_role(id, 500, 2, 104);
	store_replace(s);
	store_set_db_online(1);
}

static char last_body[4096]; /* the direct answer of the last decision (listings) */

struct result {
	struct pl_verdict v;
	char end_user[PL_END_USER_MAX];
	int64_t tenant_id;
};

static void noop(struct pl_ctx *c, void *a)
{
	(void)c;
	(void)a;
}

static struct result decide_at(const char *auth, const char *path, const char *model, int64_t now,
			       const char *ip)
{
	struct pl_policy pol = { 0, now };
	struct pl_ctx ctx;
	struct result res;

	pl_ctx_init(&ctx, &pol);
	ctx.in.method = (struct pl_str){ path[4] == 'm' ? "GET" : "POST", path[4] == 'm' ? 3 : 4 };
	ctx.in.path = (struct pl_str){ path, strlen(path) };
	if (auth)
		ctx.in.authorization = (struct pl_str){ auth, strlen(auth) };
	ctx.in.model = (struct pl_str){ model, strlen(model) };
	ctx.in.model_present = 1;
	ctx.in.cred_count = 1;
	if (ip) {
		ctx.in.src_family = 4;
		sscanf(ip, "%hhu.%hhu.%hhu.%hhu", &ctx.in.src[0], &ctx.in.src[1], &ctx.in.src[2], &ctx.in.src[3]);
	}
	pl_start(&ctx, pl_default_stages, pl_default_nstages, noop, noop, NULL);
	res.v = ctx.out;
	snprintf(last_body, sizeof(last_body), "%.*s", (int)ctx.out.body_len, ctx.out.body ? ctx.out.body : "");
	res.v.body = NULL;
	snprintf(res.end_user, sizeof(res.end_user), "%s", ctx.end_user);
	res.tenant_id = ctx.tenant_id;
	pl_ctx_clear(&ctx);
	return res;
}

static struct result decide(const char *auth, const char *model)
{
	return decide_at(auth, "/v1/chat/completions", model, NOW, NULL);
}

/* "Bearer " + a token signed by alg. */
static char *bearer(const char *alg, const char *kid, const char *payload)
{
	char hdr[160], *tok, *out;
	EVP_PKEY *k = alg[0] == 'R' ? rsa : alg[0] == 'E' ? ec : NULL;

	fxj_header(hdr, sizeof(hdr), alg, kid);
	tok = fxj_sign(hdr, payload, alg, k, SECRET, sizeof(SECRET));
	out = malloc(strlen(tok) + 8);
	sprintf(out, "Bearer %s", tok);
	free(tok);
	return out;
}

static char *corp_token(const char *extra)
{
	char payload[1024];

	snprintf(payload, sizeof(payload),
		 "{\"iss\":\"" ISS "\",\"aud\":\"jairouter\",\"sub\":\"alice\",\"exp\":%lld,\"iat\":%lld,"
		 "\"jti\":\"j-1\",\"realm\":{\"roles\":[\"user\"]}%s}", NOW + 3600, NOW - 10, extra ? extra : "");
	return bearer("RS256", "rsa-1", payload);
}

static void expect(const struct result *r, int status, const char *code)
{
	CHECK_EQ_INT(r->v.status, status);
	if (code)
		CHECK_EQ_STR(r->v.err_code, code);
}

static void test_valid_token(void)
{
	char *t = corp_token(NULL);
	struct result r = decide(t, "demo-model");

	CHECK_EQ_INT(r.v.allow, 1);
	CHECK_EQ_STR(r.end_user, "alice");
	CHECK_EQ_INT(r.tenant_id, 1);
	CHECK_EQ_STR(r.v.tenant, "acme");
	CHECK_EQ_STR(r.v.key_prefix, "corp");
	r = decide(t, "demo-model"); /* from the cache */
	CHECK_EQ_INT(r.v.allow, 1);
	CHECK_EQ_STR(r.end_user, "alice");
	free(t);
}

static void test_attacks(void)
{
	char hdr[100], *tok, *t, auth[10000], p[600];
	BIO *b = BIO_new(BIO_s_mem());
	char *pem;
	long n;
	struct result r;

	snprintf(p, sizeof(p), "{\"iss\":\"" ISS "\",\"aud\":\"jairouter\",\"sub\":\"mallory\",\"exp\":%lld}", NOW + 60);
	/* alg none */
	fxj_header(hdr, sizeof(hdr), "none", "rsa-1");
	tok = fxj_sign(hdr, p, "none", NULL, NULL, 0);
	snprintf(auth, sizeof(auth), "Bearer %s", tok);
	r = decide(auth, "demo-model");
	expect(&r, 401, "invalid_token");
	CHECK(strstr(r.v.message, "'none'") != NULL);
	free(tok);
	/* HS256 keyed with the RSA public key (PEM bytes) */
	PEM_write_bio_PUBKEY(b, rsa);
	n = BIO_get_mem_data(b, &pem);
	fxj_header(hdr, sizeof(hdr), "HS256", "rsa-1");
	tok = fxj_sign(hdr, p, "HS256", NULL, (const uint8_t *)pem, (size_t)n);
	snprintf(auth, sizeof(auth), "Bearer %s", tok);
	expect((r = decide(auth, "demo-model"), &r), 401, "invalid_token");
	free(tok);
	BIO_free(b);
	/* expired, not yet valid, wrong aud, unknown issuer, unknown kid */
	snprintf(p, sizeof(p), "{\"iss\":\"" ISS "\",\"aud\":\"jairouter\",\"exp\":%lld}", NOW - 31);
	t = bearer("RS256", "rsa-1", p);
	expect((r = decide(t, "demo-model"), &r), 401, "token_expired");
	free(t);
	snprintf(p, sizeof(p), "{\"iss\":\"" ISS "\",\"aud\":\"jairouter\",\"exp\":%lld,\"nbf\":%lld}", NOW + 600, NOW + 300);
	t = bearer("ES256", "ec-1", p);
	expect((r = decide(t, "demo-model"), &r), 401, "invalid_token");
	CHECK(strstr(r.v.message, "not valid yet") != NULL);
	free(t);
	snprintf(p, sizeof(p), "{\"iss\":\"" ISS "\",\"aud\":\"other\",\"exp\":%lld}", NOW + 600);
	t = bearer("RS256", "rsa-1", p);
	expect((r = decide(t, "demo-model"), &r), 401, "invalid_token");
	free(t);
	snprintf(p, sizeof(p), "{\"iss\":\"https://evil.example\",\"aud\":\"jairouter\",\"exp\":%lld}", NOW + 600);
	t = bearer("RS256", "rsa-1", p);
	expect((r = decide(t, "demo-model"), &r), 401, "invalid_token");
	CHECK(strstr(r.v.message, "not trusted") != NULL);
	free(t);
	snprintf(p, sizeof(p), "{\"iss\":\"" ISS "\",\"aud\":\"jairouter\",\"exp\":%lld}", NOW + 600);
	t = bearer("RS256", "rotated-away", p);
	expect((r = decide(t, "demo-model"), &r), 401, "invalid_token");
	CHECK(strstr(r.v.message, "rotated-away") != NULL);
	free(t);
	/* RS384 is a fine algorithm, but not pinned for this issuer */
	t = bearer("RS384", "rsa-1", p);
	expect((r = decide(t, "demo-model"), &r), 401, "invalid_token");
	free(t);
	/* tampered payload: sub changed after signing */
	t = corp_token(NULL);
	{
		char *d1 = strchr(t, '.'), *d2 = strchr(d1 + 1, '.');
		char evil[400], e64[600];
		snprintf(evil, sizeof(evil), "{\"iss\":\"" ISS "\",\"aud\":\"jairouter\",\"sub\":\"root\",\"exp\":%lld,"
			 "\"realm\":{\"roles\":[\"admin\"]}}", NOW + 3600);
		jwt_b64url_encode((const uint8_t *)evil, strlen(evil), e64, sizeof(e64));
		snprintf(auth, sizeof(auth), "%.*s.%s%s", (int)(d1 - t), t, e64, d2);
	}
	expect((r = decide(auth, "demo-model"), &r), 401, "invalid_token");
	CHECK(strstr(r.v.message, "signature") != NULL);
	free(t);
	/* oversized */
	memcpy(auth, "Bearer ", 7);
	memset(auth + 7, 'a', 9000);
	auth[3000] = auth[6000] = '.';
	auth[9007] = '\0';
	expect((r = decide(auth, "demo-model"), &r), 401, "invalid_token");
	CHECK(strstr(r.v.message, "larger") != NULL);
	/* an opaque bearer that is no JWT stays an invalid API key */
	expect((r = decide("Bearer sk-not-ours", "demo-model"), &r), 401, "invalid_api_key");
}

static void test_tenant_claim_and_roles(void)
{
	char p[600], *t;
	struct result r;

	/* tenant from "org", roles from scope through role_map */
	snprintf(p, sizeof(p), "{\"iss\":\"" ISS2 "\",\"org\":\"acme\",\"sub\":\"bob\",\"exp\":%lld,"
		 "\"scope\":\"openid gw.chat\"}", NOW + 600);
	t = bearer("HS256", "h1", p);
	r = decide(t, "demo-model");
	CHECK_EQ_INT(r.v.allow, 1);
	CHECK_EQ_INT(r.tenant_id, 1);
	free(t);
	/* no mapped scope: the default role (reader) may list models but not chat */
	snprintf(p, sizeof(p), "{\"iss\":\"" ISS2 "\",\"org\":\"acme\",\"sub\":\"bob\",\"exp\":%lld,"
		 "\"scope\":\"openid user\"}", NOW + 600);
	t = bearer("HS256", "h1", p);
	r = decide(t, "demo-model");
	expect(&r, 403, "permission_denied");
	CHECK(strstr(r.v.message, "'service:chat'") != NULL);
	r = decide_at(t, "/v1/models", "", NOW, NULL);
	CHECK_EQ_INT(r.v.respond, 1);
	CHECK_EQ_INT(r.v.status, 200);
	/* reader may list, but no model: the listing is empty */
	CHECK_EQ_STR(last_body, "{\"object\":\"list\",\"data\":[]}");
	if (!r.v.respond)
		fprintf(stderr, "  %s\n", r.v.message);
	free(t);
	/* unknown and disabled tenants */
	snprintf(p, sizeof(p), "{\"iss\":\"" ISS2 "\",\"org\":\"nobody\",\"exp\":%lld}", NOW + 600);
	t = bearer("HS256", "h1", p);
	expect((r = decide(t, "demo-model"), &r), 401, "invalid_token");
	free(t);
	snprintf(p, sizeof(p), "{\"iss\":\"" ISS2 "\",\"org\":\"frozen\",\"exp\":%lld,\"scope\":\"gw.admin\"}", NOW + 600);
	t = bearer("HS256", "h1", p);
	expect((r = decide(t, "demo-model"), &r), 401, "invalid_token");
	CHECK(strstr(r.v.message, "disabled") != NULL);
	free(t);
	/* missing exp is refused (require_exp) */
	snprintf(p, sizeof(p), "{\"iss\":\"" ISS2 "\",\"org\":\"acme\"}");
	t = bearer("HS256", "h1", p);
	expect((r = decide(t, "demo-model"), &r), 401, "invalid_token");
	free(t);
}

static void test_rbac_matrix(void)
{
	static const struct {
		const char *roles, *path, *model;
		int status;
		const char *perm;
	} cases[] = {
		{ "[\"user\"]", "/v1/chat/completions", "demo-model", 0, NULL },
		{ "[\"user\"]", "/v1/embeddings", "demo-model", 403, "service:embeddings" },
		{ "[\"embed-only\"]", "/v1/embeddings", "big-model", 0, NULL },
		{ "[\"no-big\"]", "/v1/chat/completions", "demo-model", 0, NULL },   /* via group cheap */
		{ "[\"no-big\"]", "/v1/chat/completions", "big-model", 403, "model:big-model" },
		{ "[\"no-big\",\"admin\"]", "/v1/chat/completions", "big-model", 403, "model:big-model" }, /* deny wins */
		{ "[\"admin\"]", "/v1/rerank", "big-model", 0, NULL },
		{ "[]", "/v1/chat/completions", "demo-model", 403, "service:chat" },
		{ "[\"ghost\"]", "/v1/chat/completions", "demo-model", 403, "service:chat" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char extra[200], p[600], *t;
		struct result r;

		snprintf(extra, sizeof(extra), "%s", cases[i].roles);
		snprintf(p, sizeof(p), "{\"iss\":\"" ISS "\",\"aud\":\"jairouter\",\"sub\":\"u%zu\",\"exp\":%lld,"
			 "\"realm\":{\"roles\":%s}}", i, NOW + 600, extra);
		t = bearer("ES256", "ec-1", p);
		r = decide_at(t, cases[i].path, cases[i].model, NOW, NULL);
		if (cases[i].status == 0) {
			CHECK_EQ_INT(r.v.allow, 1);
		} else {
			expect(&r, 403, "permission_denied");
			CHECK(strstr(r.v.message, cases[i].perm) != NULL);
		}
		if (r.v.allow != (cases[i].status == 0))
			fprintf(stderr, "  case %zu: %s\n", i, r.v.message);
		free(t);
	}
	/* listings follow the roles: no-big sees demo-model (group cheap) but not big-model */
	{
		char p[600], *t;
		struct result r;
		snprintf(p, sizeof(p), "{\"iss\":\"" ISS "\",\"aud\":\"jairouter\",\"sub\":\"l\",\"exp\":%lld,"
			 "\"realm\":{\"roles\":[\"no-big\"]}}", NOW + 600);
		t = bearer("ES256", "ec-1", p);
		r = decide_at(t, "/v1/models", "", NOW, NULL);
		CHECK_EQ_INT(r.v.status, 200);
		CHECK(strstr(last_body, "demo-model") != NULL);
		CHECK(strstr(last_body, "big-model") == NULL);
		r = decide_at(t, "/v1/models/big-model", "", NOW, NULL);
		CHECK_EQ_INT(r.v.status, 404);
		free(t);
	}
	/* API keys: without roles unrestricted, with roles held to them */
	{
		struct result r = decide("Bearer " KEY_PLAIN, "big-model");
		CHECK_EQ_INT(r.v.allow, 1);
		r = decide("Bearer " KEY_ROLES, "big-model");
		expect(&r, 403, "permission_denied");
		CHECK(strstr(r.v.message, "'service:chat'") != NULL);
		r = decide_at("Bearer " KEY_ROLES, "/v1/embeddings", "big-model", NOW, NULL);
		CHECK_EQ_INT(r.v.allow, 1);
	}
}

static void test_revocation_beats_cache(void)
{
	char *t = corp_token(NULL);
	struct result r = decide(t, "demo-model");
	struct state *s;

	CHECK_EQ_INT(r.v.allow, 1); /* cached now */
	s = store_write_begin();
	ident_put_revoked_jti(state_ident(s), 1, 1, "j-1");
	store_write_end();
	expect((r = decide(t, "demo-model"), &r), 401, "token_revoked");
	s = store_write_begin();
	ident_del_revoked_jti(state_ident(s), 1);
	/* the user logged out everywhere after the token was issued */
	ident_put_revoked_sub(state_ident(s), 2, 1, "alice", NOW - 5);
	store_write_end();
	expect((r = decide(t, "demo-model"), &r), 401, "token_revoked");
	s = store_write_begin();
	ident_put_revoked_sub(state_ident(s), 2, 1, "alice", NOW - 3600); /* before iat */
	store_write_end();
	CHECK_EQ_INT((r = decide(t, "demo-model"), r.v.allow), 1);
	/* a key change re-verifies: with the key disabled, the cached token is refused */
	s = store_write_begin();
	ident_del_key(state_ident(s), 10);
	store_write_end();
	expect((r = decide(t, "demo-model"), &r), 401, "invalid_token");
	free(t);
	load();
}

/* Opaque tokens: without an introspection issuer they are wrong API keys; with one but no
 * way to ask it (no worker loop here, as when the queue is full), the failure policy. */
static void test_opaque_failure_policy(void)
{
	struct state *s;
	struct id_issuer is;
	struct result r;

	expect((r = decide("Bearer opaque-token-123", "demo-model"), &r), 401, "invalid_api_key");
	memset(&is, 0, sizeof(is));
	is.id = 3;
	snprintf(is.name, sizeof(is.name), "opaque");
	snprintf(is.iss, sizeof(is.iss), "https://opaque.example");
	is.algs = 1u << JWT_RS256;
	is.tenant_id = 1;
	is.enabled = 1;
	snprintf(is.introspection_url, sizeof(is.introspection_url), "http://127.0.0.1:1/introspect");
	s = store_write_begin();
	ident_put_issuer(state_ident(s), &is);
	store_write_end();
	r = decide("Bearer opaque-token-123", "demo-model");
	expect(&r, 503, "identity_provider_unavailable");
	CHECK_EQ_INT(r.v.retry_after, 5);
	is.introspection_reject = 1;
	s = store_write_begin();
	ident_put_issuer(state_ident(s), &is);
	store_write_end();
	expect((r = decide("Bearer opaque-token-123", "demo-model"), &r), 401, "invalid_token");
	/* API keys still go the key way */
	CHECK_EQ_INT((r = decide("Bearer " KEY_PLAIN, "demo-model"), r.v.allow), 1);
	s = store_write_begin();
	ident_del_issuer(state_ident(s), 3);
	store_write_end();
}

static void test_lockout(void)
{
	struct abuse_config c = { 6, 3, 60, 300 };
	struct result r;
	int64_t now = NOW;

	abuse_configure(&c);
	abuse_reset();
	for (int i = 0; i < 3; i++)
		expect((r = decide_at("Bearer jr-bad", "/v1/chat/completions", "demo-model", now, "10.0.0.9"), &r),
		       401, "invalid_api_key");
	/* third failure: locked out for 1 s, whatever the credential */
	r = decide_at("Bearer " KEY_PLAIN, "/v1/chat/completions", "demo-model", now, "10.0.0.9");
	expect(&r, 429, "too_many_failed_attempts");
	CHECK_EQ_INT(r.v.retry_after, 1);
	/* other addresses are not affected */
	CHECK_EQ_INT((r = decide_at("Bearer " KEY_PLAIN, "/v1/chat/completions", "demo-model", now, "10.0.0.10"),
		      r.v.allow), 1);
	now += 1;
	expect((r = decide_at(NULL, "/v1/chat/completions", "demo-model", now, "10.0.0.9"), &r), 401, "missing_api_key");
	now += 2;
	expect((r = decide_at("Bearer jr-bad", "/v1/chat/completions", "demo-model", now, "10.0.0.9"), &r), 401, NULL);
	now += 4;
	expect((r = decide_at("Bearer jr-bad", "/v1/chat/completions", "demo-model", now, "10.0.0.9"), &r), 401, NULL);
	/* sixth failure: blocked for block_s */
	r = decide_at("Bearer " KEY_PLAIN, "/v1/chat/completions", "demo-model", now + 1, "10.0.0.9");
	expect(&r, 429, "too_many_failed_attempts");
	CHECK_EQ_INT(r.v.retry_after, 299);
	/* recovery after the block and a quiet window */
	CHECK_EQ_INT((r = decide_at("Bearer " KEY_PLAIN, "/v1/chat/completions", "demo-model", now + 300, "10.0.0.9"),
		      r.v.allow), 1);
	c.max_failures = 0;
	abuse_configure(&c);
}

/* The administration surface (api/): its permissions from roles, deny winning, `*` holding
 * all; and its identity stages, which accept an authenticated caller whatever its roles. */
static unsigned actions_of(int rbac, int64_t role, char *names, size_t cap)
{
	struct pl_policy pol = { 0, NOW };
	struct pl_ctx ctx;
	struct jbuf roles = { 0 };
	unsigned a;

	pl_ctx_init(&ctx, &pol);
	ctx.rbac = rbac;
	ctx.nroles = 1;
	ctx.role_ids[0] = role;
	a = pl_rbac_actions(&ctx, &roles);
	snprintf(names, cap, "%s", roles.p ? roles.p : "");
	free(roles.p);
	return a;
}

static void admin_done(struct pl_ctx *ctx, void *arg)
{
	(void)ctx;
	(void)arg;
}

static void test_admin_surface(void)
{
	struct state *s = store_write_begin();
	struct pl_policy pol = { 0, NOW };
	struct pl_ctx ctx;
	char names[128];

	add_role(state_ident(s), 105, 0, "auditor", "audit:read", NULL);
	add_role(state_ident(s), 106, 1, "ops", "admin,usage:read", "audit:read");
	store_write_end();
	CHECK_EQ_INT(actions_of(1, 101, names, sizeof(names)), PL_ACT_ADMIN | PL_ACT_USAGE_READ | PL_ACT_AUDIT_READ);
	CHECK_EQ_STR(names, "\"admin\"");
	CHECK_EQ_INT(actions_of(1, 105, names, sizeof(names)), PL_ACT_AUDIT_READ);
	CHECK_EQ_INT(actions_of(1, 106, names, sizeof(names)), PL_ACT_ADMIN | PL_ACT_USAGE_READ);
	CHECK_EQ_STR(names, "\"ops\"");
	CHECK_EQ_INT(actions_of(1, 100, names, sizeof(names)), 0); /* service and model rights only */
	CHECK_EQ_INT(actions_of(0, 101, names, sizeof(names)), 0); /* no roles: not an administrator */

	pl_ctx_init(&ctx, &pol);
	ctx.in.authorization.ptr = "Bearer " KEY_PLAIN;
	ctx.in.authorization.len = strlen(ctx.in.authorization.ptr);
	ctx.in.cred_count = 1;
	CHECK_EQ_INT(pl_start(&ctx, pl_admin_stages, pl_admin_nstages, admin_done, admin_done, NULL), 1);
	CHECK_EQ_INT(ctx.out.allow, 1);
	CHECK_EQ_INT(ctx.tenant_id, 1);
	CHECK_EQ_INT(ctx.auth_kind, PL_AUTH_KEY);
	CHECK_EQ_STR(ctx.out.tenant, "acme");
	pl_ctx_clear(&ctx);

	pl_ctx_init(&ctx, &pol);
	ctx.in.authorization.ptr = "Bearer jr-0000000000000000000000000000000000000000000000000000000000000000";
	ctx.in.authorization.len = strlen(ctx.in.authorization.ptr);
	ctx.in.cred_count = 1;
	pl_start(&ctx, pl_admin_stages, pl_admin_nstages, admin_done, admin_done, NULL);
	CHECK_EQ_INT(ctx.out.allow, 0);
	CHECK_EQ_INT(ctx.out.status, 401);
	pl_ctx_clear(&ctx);
	load();
}

int main(void)
{
	rsa = fxj_keygen("RSA", NULL);
	ec = fxj_keygen("EC", "P-256");
	store_init();
	load();
	RUN(test_valid_token);
	RUN(test_attacks);
	RUN(test_tenant_claim_and_roles);
	RUN(test_rbac_matrix);
	RUN(test_admin_surface);
	RUN(test_revocation_beats_cache);
	RUN(test_opaque_failure_policy);
	RUN(test_lockout);
	store_destroy();
	pl_worker_exit(NULL);
	EVP_PKEY_free(rsa);
	EVP_PKEY_free(ec);
	TEST_END();
}
