/*
 * bench_identity: decisions per second of the whole pipeline (pl_default_stages, one
 * thread, no sockets) for an API key, a cached JWT, and first-seen JWTs of each algorithm
 * family. Built and run by scripts/bench-identity against the release library.
 *
 *   bench_identity [CACHED_DECISIONS] [FIRST_SEEN_TOKENS]
 *
 * First-seen tokens are minted before the clock starts (distinct jti each, so every one
 * misses the cache); the RSA signing is the slow part of the set-up, not of the bench.
 */
#include "auth/apikey.h"
#include "authz/ident.h"
#include "pipeline/pipeline.h"
#include "state/state.h"

#include "../unit/jwt_fixtures.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define KEY "jr-00000000000000000000000000000000000000000000000000000000000000aa"
#define NOW 1800000000LL

static EVP_PKEY *rsa, *ec, *ed;
static const uint8_t SECRET[32] = "0123456789abcdef0123456789abcdef";

static void add_key(struct ident *id, int64_t row, const char *jwk)
{
	struct id_key k;
	char err[100];

	memset(&k, 0, sizeof(k));
	k.id = row;
	k.issuer_id = 1;
	k.enabled = 1;
	if (jwk_parse_text(jwk, strlen(jwk), NULL, &k.key, err, sizeof(err)) < 0) {
		fprintf(stderr, "key: %s\n", err);
		exit(1);
	}
	ident_put_key(id, &k);
}

static void load(void)
{
	struct state *s = state_new();
	struct ident *id = state_ident(s);
	struct st_tenant t = { 1, "acme", ST_ACTIVE, "" };
	struct st_model m = { .id = 1, .name = "demo-model", .backend = "be_mock" };
	struct st_key k;
	struct id_issuer is;
	struct id_perm perms[2];
	struct id_role role;
	char jwk[4096], b[100];

	m.services = 0xffffffffu;
	state_put_tenant(s, &t);
	state_put_model(s, &m);
	memset(&k, 0, sizeof(k));
	k.id = 1;
	k.tenant_id = 1;
	auth_key_hash(KEY, strlen(KEY), k.hash);
	state_put_key(s, &k);
	memset(&is, 0, sizeof(is));
	is.id = 1;
	snprintf(is.name, sizeof(is.name), "corp");
	snprintf(is.iss, sizeof(is.iss), "https://idp.example");
	is.algs = (1u << JWT_RS256) | (1u << JWT_ES256) | (1u << JWT_EDDSA) | (1u << JWT_HS256);
	snprintf(is.audience, sizeof(is.audience), "jairouter");
	is.leeway = 60;
	is.require_exp = 1;
	is.tenant_id = 1;
	snprintf(is.role_claim, sizeof(is.role_claim), "roles");
	is.enabled = 1;
	ident_put_issuer(id, &is);
	fxj_jwk(rsa, "rsa", jwk, sizeof(jwk));
	add_key(id, 1, jwk);
	fxj_jwk(ec, "ec", jwk, sizeof(jwk));
	add_key(id, 2, jwk);
	fxj_jwk(ed, "ed", jwk, sizeof(jwk));
	add_key(id, 3, jwk);
	jwt_b64url_encode(SECRET, sizeof(SECRET), b, sizeof(b));
	snprintf(jwk, sizeof(jwk), "{\"kty\":\"oct\",\"kid\":\"hs\",\"k\":\"%s\"}", b);
	add_key(id, 4, jwk);
	memset(&role, 0, sizeof(role));
	role.id = 1;
	snprintf(role.name, sizeof(role.name), "user");
	ident_perm_parse("service:chat", 12, 0, &perms[0]);
	ident_perm_parse("model:*", 7, 0, &perms[1]);
	role.perms = perms;
	role.nperms = 2;
	ident_put_role(id, &role);
	store_replace(s);
	store_set_db_online(1);
}

static void noop(struct pl_ctx *c, void *a)
{
	(void)c;
	(void)a;
}

static int decide(const char *auth)
{
	struct pl_policy pol = { 0, NOW };
	struct pl_ctx ctx;
	int ok;

	pl_ctx_init(&ctx, &pol);
	ctx.in.method = (struct pl_str){ "POST", 4 };
	ctx.in.path = (struct pl_str){ "/v1/chat/completions", 20 };
	ctx.in.authorization = (struct pl_str){ auth, strlen(auth) };
	ctx.in.model = (struct pl_str){ "demo-model", 10 };
	ctx.in.model_present = 1;
	ctx.in.cred_count = 1;
	pl_start(&ctx, pl_default_stages, pl_default_nstages, noop, noop, NULL);
	ok = ctx.out.allow;
	pl_ctx_clear(&ctx);
	return ok;
}

static char *token(const char *alg, const char *kid, long n)
{
	char hdr[128], payload[512], *tok, *auth;
	EVP_PKEY *k = alg[0] == 'R' ? rsa : alg[0] == 'E' && alg[1] == 'S' ? ec : ed;

	fxj_header(hdr, sizeof(hdr), alg, kid);
	snprintf(payload, sizeof(payload),
		 "{\"iss\":\"https://idp.example\",\"aud\":\"jairouter\",\"sub\":\"user-%ld\",\"exp\":%lld,"
		 "\"iat\":%lld,\"jti\":\"jti-%s-%ld\",\"roles\":[\"user\"]}", n % 1000, NOW + 3600, NOW - 10, alg, n);
	tok = fxj_sign(hdr, payload, alg, k, SECRET, sizeof(SECRET));
	auth = malloc(strlen(tok) + 8);
	sprintf(auth, "Bearer %s", tok);
	free(tok);
	return auth;
}

static double now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Runs n decisions over auths[i % m]; prints the rate. */
static void run(const char *label, char **auths, long m, long n)
{
	double t0 = now_s(), dt;
	long ok = 0;

	for (long i = 0; i < n; i++)
		ok += decide(auths[i % m]);
	dt = now_s() - t0;
	if (ok != n) {
		fprintf(stderr, "%s: %ld of %ld allowed\n", label, ok, n);
		exit(1);
	}
	printf("%-28s %9ld decisions %8.2f us/decision %10.0f decisions/s\n", label, n, dt * 1e6 / (double)n,
	       (double)n / dt);
}

int main(int argc, char **argv)
{
	long cached = argc > 1 ? atol(argv[1]) : 200000, fresh = argc > 2 ? atol(argv[2]) : 2000;
	static const struct {
		const char *alg, *kid;
	} algs[] = { { "HS256", "hs" }, { "RS256", "rsa" }, { "ES256", "ec" }, { "EdDSA", "ed" } };
	static char key_auth[] = "Bearer " KEY;
	char *key = key_auth;

	rsa = fxj_keygen("RSA", NULL);
	ec = fxj_keygen("EC", "P-256");
	ed = fxj_keygen("ED25519", NULL);
	store_init();
	load();
	run("API key", &key, 1, cached);
	for (size_t a = 0; a < sizeof(algs) / sizeof(algs[0]); a++) {
		char **toks = malloc((size_t)fresh * sizeof(*toks));
		char label[64];

		for (long i = 0; i < fresh; i++)
			toks[i] = token(algs[a].alg, algs[a].kid, i);
		snprintf(label, sizeof(label), "%s first-seen", algs[a].alg);
		run(label, toks, fresh, fresh);
		snprintf(label, sizeof(label), "%s cached", algs[a].alg);
		run(label, toks, 1, cached);
		for (long i = 0; i < fresh; i++)
			free(toks[i]);
		free(toks);
	}
	return 0;
}
