/*
 * Tenant policy: client network lists (IPv4, IPv6, IPv4-mapped), the master key file,
 * AES-256-GCM sealing, the access rule (visibility, groups, grants, deny wins), and the
 * policy stages of the default pipeline end to end (NOTIFY bytes in, verdict and ACK out).
 */
#include "auth/apikey.h"
#include "cred/cred.h"
#include "pipeline/pipeline.h"
#include "spop/spop.h"
#include "state/policy.h"
#include "state/state.h"

#include "fixtures.h"
#include "testlib.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define KEY_A "jr-a000000000000000000000000000000000000000000000000000000000000001"
#define KEY_A_RESTRICTED "jr-a000000000000000000000000000000000000000000000000000000000000002"
#define KEY_B "jr-b000000000000000000000000000000000000000000000000000000000000001"
#define KEY_C "jr-c000000000000000000000000000000000000000000000000000000000000001"
#define MASTER_HEX "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
#define OTHER_HEX "ff0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"

/* ---- client networks --------------------------------------------------------------- */

static void addr4(const char *s, uint8_t out[16])
{
	memset(out, 0, 16);
	CHECK(inet_pton(AF_INET, s, out) == 1);
}

static void addr6(const char *s, uint8_t out[16])
{
	CHECK(inet_pton(AF_INET6, s, out) == 1);
}

static int allowed(const char *list, int family, const char *ip)
{
	struct pol_iplist l;
	uint8_t a[16];
	int r;

	if (family == 4)
		addr4(ip, a);
	else
		addr6(ip, a);
	CHECK_EQ_INT(policy_iplist_parse(&l, list, strlen(list)), 0);
	r = policy_ip_allowed(&l, family, a);
	policy_iplist_free(&l);
	return r;
}

static void test_cidr_v4(void)
{
	CHECK(allowed("10.0.0.0/8", 4, "10.255.1.2"));
	CHECK(!allowed("10.0.0.0/8", 4, "11.0.0.1"));
	CHECK(allowed("192.0.2.0/25,198.51.100.7", 4, "198.51.100.7"));
	CHECK(!allowed("198.51.100.7", 4, "198.51.100.8"));
	CHECK(allowed("192.0.2.0/25", 4, "192.0.2.127"));
	CHECK(!allowed("192.0.2.0/25", 4, "192.0.2.128"));
	CHECK(allowed("172.16.0.0/12", 4, "172.31.255.255"));
	CHECK(!allowed("172.16.0.0/12", 4, "172.32.0.0"));
	CHECK(allowed("0.0.0.0/0", 4, "203.0.113.9"));
	CHECK(!allowed("0.0.0.0/0", 6, "2001:db8::1")); /* families do not mix */
	CHECK(allowed("", 4, "203.0.113.9"));           /* no list: any address */
}

static void test_cidr_v6_and_mapped(void)
{
	CHECK(allowed("2001:db8::/32", 6, "2001:db8:ffff::1"));
	CHECK(!allowed("2001:db8::/32", 6, "2001:db9::1"));
	CHECK(allowed("::1/128", 6, "::1"));
	CHECK(allowed("2001:db8::/33", 6, "2001:db8:7fff::"));
	CHECK(!allowed("2001:db8::/33", 6, "2001:db8:8000::"));
	/* An IPv4 client seen through an IPv6 socket matches IPv4 networks... */
	CHECK(allowed("127.0.0.0/8", 6, "::ffff:127.0.0.1"));
	CHECK(!allowed("10.0.0.0/8", 6, "::ffff:127.0.0.1"));
	/* ...and an IPv4-mapped network in the list matches plain IPv4 clients. */
	CHECK(allowed("::ffff:10.0.0.0/104", 4, "10.1.2.3"));
	CHECK(!allowed("::ffff:10.0.0.0/104", 4, "11.1.2.3"));
	CHECK(!allowed("10.0.0.0/8", 6, "::a00:1")); /* IPv4-compatible is not mapped */
	CHECK(allowed("::/0", 6, "::ffff:10.1.2.3"));  /* the mapped address is IPv6 too */
	CHECK(!allowed("::/0", 4, "10.1.2.3"));
}

static void test_cidr_parse_errors(void)
{
	struct pol_cidr c[4];
	struct pol_iplist l;
	uint8_t a[16];
	const char *bad[] = { "10.0.0.0/33", "10.0.0.0/", "10.0.0.0/x", "300.0.0.0/8", "10.0.0.0/8,",
			      ",10.0.0.0/8", "::/129", "host.example", "10.0.0.0/8,,::1" };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK_EQ_INT(policy_cidrs_parse(bad[i], strlen(bad[i]), c, 4), -1);
	CHECK_EQ_INT(policy_cidrs_parse("10.0.0.0/8\0x", 12, c, 4), -1); /* an embedded NUL */
	CHECK_EQ_INT(policy_cidrs_parse("1.1.1.1, 2.2.2.2 ,::1", 21, c, 4), 3);
	CHECK_EQ_INT(policy_cidrs_parse("1.1.1.1,1.1.1.2,1.1.1.3,1.1.1.4,1.1.1.5", 39, c, 4), -1);
	/* An unreadable list admits nobody (fail closed); an unknown family neither. */
	CHECK_EQ_INT(policy_iplist_parse(&l, "nonsense", 8), -1);
	addr4("10.0.0.1", a);
	CHECK(!policy_ip_allowed(&l, 4, a));
	policy_iplist_free(&l);
	CHECK_EQ_INT(policy_iplist_parse(&l, "0.0.0.0/0", 9), 0);
	CHECK(!policy_ip_allowed(&l, 0, a));
	policy_iplist_free(&l);
}

/* ---- master keys and sealing --------------------------------------------------------- */

static struct cred_keyring *ring(const char *text)
{
	char err[256];
	struct cred_keyring *kr = cred_keyring_parse(text, strlen(text), "keys", err, sizeof(err));

	if (!kr)
		fprintf(stderr, "  keyring: %s\n", err);
	return kr;
}

static void test_keyring_parse(void)
{
	const char *bad[] = { "", "# only a comment\n", "k1 " MASTER_HEX, "k1:" MASTER_HEX "00",
			      "k1:" OTHER_HEX "\nk1:" MASTER_HEX, "bad id:" MASTER_HEX,
			      "k1:zz0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f" };
	struct cred_keyring *kr;
	char err[256];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		kr = cred_keyring_parse(bad[i], strlen(bad[i]), "keys", err, sizeof(err));
		CHECK(kr == NULL);
		CHECK(strstr(err, "keys") == err);
		CHECK(strstr(err, MASTER_HEX) == NULL); /* key material is never echoed */
	}
	kr = ring("# rotation: old first, newest last\n\n  old:" OTHER_HEX "  \r\nnew:" MASTER_HEX "\n");
	CHECK(kr != NULL);
	CHECK_EQ_INT(cred_keyring_count(kr), 2);
	cred_keyring_free(kr);
}

static void test_keyring_file_mode(void)
{
	char path[] = "/tmp/jr-test-keys.XXXXXX", err[256];
	int fd = mkstemp(path);
	struct cred_keyring *kr;

	CHECK(fd >= 0);
	CHECK(write(fd, "k1:" MASTER_HEX "\n", 68) == 68);
	close(fd);
	CHECK(chmod(path, 0644) == 0);
	CHECK(cred_keyring_load(path, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "accessible to other users") != NULL);
	CHECK(chmod(path, 0640) == 0);
	kr = cred_keyring_load(path, err, sizeof(err));
	CHECK(kr != NULL);
	cred_keyring_free(kr);
	unlink(path);
	CHECK(cred_keyring_load(path, err, sizeof(err)) == NULL);
}

static enum cred_open_result open_str(const struct cred_keyring *kr, const char *sealed, const char *aad,
				      char *out, size_t cap)
{
	uint8_t *pt = NULL;
	size_t n = 0;
	enum cred_open_result r = cred_open(kr, sealed, strlen(sealed), aad, strlen(aad), &pt, &n);

	if (r == CRED_OK) {
		snprintf(out, cap, "%.*s", (int)n, (const char *)pt);
		cred_secret_free(pt, n + 1);
	}
	return r;
}

static void test_seal_open(void)
{
	struct cred_keyring *kr = ring("k1:" MASTER_HEX "\n");
	struct cred_keyring *other = ring("k1:" OTHER_HEX "\n");
	struct cred_keyring *rotated = ring("k1:" MASTER_HEX "\nk2:" OTHER_HEX "\n");
	const char *aad = "jairouter-credential:v1:7:backend:be_openai:authorization:bearer";
	char *a = cred_seal(kr, (const uint8_t *)"sk-live-123", 11, aad, strlen(aad));
	char *b = cred_seal(kr, (const uint8_t *)"sk-live-123", 11, aad, strlen(aad));
	char out[64], *t;

	CHECK(strncmp(a, "k1:", 3) == 0);
	CHECK(strcmp(a, b) != 0); /* a fresh nonce every time */
	CHECK(strstr(a, "sk-live") == NULL);
	CHECK_EQ_INT(open_str(kr, a, aad, out, sizeof(out)), CRED_OK);
	CHECK_EQ_STR(out, "sk-live-123");
	/* The newer file still opens values sealed under its older key; seals with the last. */
	CHECK_EQ_INT(open_str(rotated, a, aad, out, sizeof(out)), CRED_OK);
	t = cred_seal(rotated, (const uint8_t *)"x", 1, aad, strlen(aad));
	CHECK(strncmp(t, "k2:", 3) == 0);
	CHECK_EQ_INT(open_str(kr, t, aad, out, sizeof(out)), CRED_UNKNOWN_KEY);
	free(t);
	/* Same id, different key material; another record's AAD; a tampered byte. */
	CHECK_EQ_INT(open_str(other, a, aad, out, sizeof(out)), CRED_REJECTED);
	CHECK_EQ_INT(open_str(kr, a, "jairouter-credential:v1:8:backend:be_openai:authorization:bearer",
			      out, sizeof(out)), CRED_REJECTED);
	a[10] = a[10] == 'A' ? 'B' : 'A';
	CHECK_EQ_INT(open_str(kr, a, aad, out, sizeof(out)), CRED_REJECTED);
	CHECK_EQ_INT(open_str(kr, "k1", aad, out, sizeof(out)), CRED_MALFORMED);
	CHECK_EQ_INT(open_str(kr, "k1:AAAA", aad, out, sizeof(out)), CRED_MALFORMED);
	CHECK_EQ_INT(open_str(kr, "k1:not base64 at all!", aad, out, sizeof(out)), CRED_MALFORMED);
	CHECK_EQ_INT(open_str(kr, ":AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", aad, out, sizeof(out)),
		     CRED_MALFORMED);
	CHECK(strlen(cred_open_error(CRED_REJECTED)) > 0);
	free(a);
	free(b);
	cred_keyring_free(kr);
	cred_keyring_free(other);
	cred_keyring_free(rotated);
}

/* ---- the access rule ----------------------------------------------------------------- */

static void grant(struct policy *p, int64_t id, int64_t tenant, int64_t model, int64_t group, int deny)
{
	struct pol_grant g = { .id = id, .tenant_id = tenant, .model_id = model, .group_id = group,
			       .deny = deny };

	policy_put_grant(p, &g);
}

static void member(struct policy *p, int64_t id, int64_t group, int64_t model)
{
	struct pol_member m = { .id = id, .group_id = group, .model_id = model };

	policy_put_member(p, &m);
}

static void test_access_rule(void)
{
	struct policy *p = policy_new();

	policy_put_private_model(p, 2);
	CHECK(policy_model_access(p, 1, 1));  /* public */
	CHECK(!policy_model_access(p, 1, 2)); /* private, no grant */
	grant(p, 1, 1, 2, 0, 0);
	CHECK(policy_model_access(p, 1, 2));
	CHECK(!policy_model_access(p, 9, 2)); /* another tenant's grant is not ours */
	/* A deny on a group holding the model wins over the allow on the model. */
	member(p, 1, 5, 2);
	grant(p, 2, 1, 0, 5, 1);
	CHECK(!policy_model_access(p, 1, 2));
	policy_del_member(p, 1);
	CHECK(policy_model_access(p, 1, 2));
	/* An allow on a group admits its private models. */
	policy_put_private_model(p, 3);
	member(p, 2, 6, 3);
	grant(p, 3, 4, 0, 6, 0);
	CHECK(policy_model_access(p, 4, 3));
	/* A deny on a public model. */
	grant(p, 4, 4, 1, 0, 1);
	CHECK(!policy_model_access(p, 4, 1));
	grant(p, 4, 4, 1, 0, 0); /* the same grant turned into an allow */
	CHECK(policy_model_access(p, 4, 1));
	policy_del_grant(p, 3);
	CHECK(!policy_model_access(p, 4, 3));
	policy_del_private_model(p, 3);
	CHECK(policy_model_access(p, 4, 3));
	policy_del_grant(p, 99); /* absent: no-op */
	policy_free(p);
}

static void test_key_models(void)
{
	struct policy *p = policy_new();
	const struct pol_key *k;

	CHECK(policy_key_allows_model(NULL, "anything"));
	policy_put_key(p, 7, "m1\nm two\n", "");
	k = policy_key(p, 7);
	CHECK(k != NULL);
	CHECK_EQ_INT(k->nmodels, 2);
	CHECK(policy_key_allows_model(k, "m two"));
	CHECK(!policy_key_allows_model(k, "m"));
	CHECK(!k->ips.restricted);
	policy_put_key(p, 7, "", "10.0.0.0/8");
	k = policy_key(p, 7);
	CHECK(policy_key_allows_model(k, "m"));
	CHECK(k->ips.restricted);
	policy_del_key(p, 7);
	CHECK(policy_key(p, 7) == NULL);
	policy_free(p);
}

/* ---- the stages in the default pipeline ------------------------------------------- */

static void put_key(struct state *s, int64_t id, int64_t tenant, const char *key)
{
	struct st_key k;

	memset(&k, 0, sizeof(k));
	k.id = id;
	k.tenant_id = tenant;
	k.status = ST_ACTIVE;
	auth_key_hash(key, strlen(key), k.hash);
	snprintf(k.prefix, sizeof(k.prefix), "%.11s", key);
	state_put_key(s, &k);
}

static void put_model(struct state *s, int64_t id, const char *name, const char *backend)
{
	struct st_model m;

	memset(&m, 0, sizeof(m));
	m.id = id;
	m.status = ST_ACTIVE;
	m.services = POL_SERVICES_ALL;
	m.caps = ST_CAP_STREAMING;
	snprintf(m.name, sizeof(m.name), "%s", name);
	snprintf(m.backend, sizeof(m.backend), "%s", backend);
	state_put_model(s, &m);
}

static void put_tenant(struct state *s, int64_t id, const char *name, uint32_t services,
		       const char *ips, enum pol_on_error on_error)
{
	struct st_tenant t;
	struct pol_tenant pt = { .id = id, .services = services, .on_error = on_error, .masking = -1 };

	memset(&t, 0, sizeof(t));
	t.id = id;
	t.status = ST_ACTIVE;
	snprintf(t.name, sizeof(t.name), "%s", name);
	state_put_tenant(s, &t);
	CHECK_EQ_INT(policy_iplist_parse(&pt.ips, ips, strlen(ips)), 0);
	policy_put_tenant(state_policy(s), &pt);
	policy_iplist_free(&pt.ips);
}

static void seal_credential(struct policy *p, int64_t id, const char *backend, int64_t model_id,
			    const char *secret, const char *aad_override)
{
	char aad[256], *sealed;
	struct pol_cred_row row = { .id = id, .model_scope = model_id != 0, .backend = backend,
				    .model_id = model_id, .header = POL_HDR_AUTHORIZATION, .bearer = 1 };

	if (model_id)
		snprintf(aad, sizeof(aad), "jairouter-credential:v1:%lld:model:%lld:authorization:bearer",
			 (long long)id, (long long)model_id);
	else
		snprintf(aad, sizeof(aad), "jairouter-credential:v1:%lld:backend:%s:authorization:bearer",
			 (long long)id, backend);
	if (aad_override)
		snprintf(aad, sizeof(aad), "%s", aad_override);
	sealed = cred_seal(cred_global(), (const uint8_t *)secret, strlen(secret), aad, strlen(aad));
	row.sealed = sealed;
	policy_put_credential(p, &row);
	free(sealed);
}

/* Tenants: acme (1) with a private model granted and a backend credential; beta (2)
 * restricted to chat and embeddings from 10.0.0.0/8; gamma (3) fail-open. */
static void load_catalogue(void)
{
	struct state *s = state_new();
	struct policy *p = state_policy(s);

	cred_global_set(ring("k1:" MASTER_HEX "\n"));
	put_tenant(s, 1, "acme", POL_SERVICES_ALL, "", POL_ON_ERROR_DEFAULT);
	put_tenant(s, 2, "beta", 1u << policy_service_bit("chat", 4) | 1u << policy_service_bit("embeddings", 10),
		   "10.0.0.0/8", POL_ON_ERROR_DEFAULT);
	put_tenant(s, 3, "gamma", POL_SERVICES_ALL, "", POL_FAIL_OPEN);
	put_model(s, 1, "public-model", "be_mock");
	put_model(s, 2, "acme-private", "be_mock2");
	put_model(s, 3, "other-private", "be_mock");
	put_model(s, 4, "broken-cred", "be_broken");
	policy_put_private_model(p, 2);
	policy_put_private_model(p, 3);
	state_put_alias(s, &(struct st_alias){ .id = 1, .model_id = 2, .alias = "acme-alias" });
	grant(p, 1, 1, 2, 0, 0);
	put_key(s, 1, 1, KEY_A);
	put_key(s, 2, 1, KEY_A_RESTRICTED);
	policy_put_key(p, 2, "public-model", "192.0.2.0/24,2001:db8::/32");
	put_key(s, 3, 2, KEY_B);
	put_key(s, 4, 3, KEY_C);
	seal_credential(p, 10, "be_mock", 0, "sk-backend", NULL);
	seal_credential(p, 11, NULL, 2, "sk-model", NULL);
	seal_credential(p, 12, "be_broken", 0, "sk-x", "jairouter-credential:v1:99:backend:elsewhere");
	store_replace(s);
	store_set_db_online(1);
}

struct req {
	const char *method, *path, *key, *body;
	int family;        /* 0: no src argument */
	const char *src;
};

static void nop(struct pl_ctx *ctx, void *arg)
{
	(void)ctx;
	(void)arg;
}

/* Runs the default pipeline; *v gets the verdict; body_out (when given) the response. */
static void decide(const struct req *r, struct pl_verdict *v, char *body_out, size_t cap)
{
	struct fx_arg args[8];
	int n = 0;
	uint8_t buf[4096], a[16];
	size_t len;
	char auth[128];
	struct pl_ctx ctx;
	struct pl_policy pol = { 0, 2000 };

	snprintf(auth, sizeof(auth), "Bearer %s", r->key);
	args[n++] = (struct fx_arg){ "method", spop_cstr(r->method) };
	args[n++] = (struct fx_arg){ "path", spop_cstr(r->path) };
	args[n++] = (struct fx_arg){ "authorization", spop_cstr(auth) };
	args[n++] = (struct fx_arg){ "cred_count", spop_int64(1) };
	if (r->body)
		args[n++] = (struct fx_arg){ "body", spop_cstr(r->body) };
	if (r->family == 4) {
		addr4(r->src, a);
		args[n] = (struct fx_arg){ "src", { .type = SPOP_DATA_IPV4 } };
		memcpy(args[n++].value.u.ipv4, a, 4);
	} else if (r->family == 6) {
		addr6(r->src, a);
		args[n] = (struct fx_arg){ "src", { .type = SPOP_DATA_IPV6 } };
		memcpy(args[n++].value.u.ipv6, a, 16);
	}
	pl_ctx_init(&ctx, &pol);
	len = fx_build_payload(buf, sizeof(buf), "jairouter-request", args, n);
	CHECK(len > 0);
	CHECK_EQ_INT(pl_request_decode(&ctx, buf, len), PL_DECODE_OK);
	CHECK_EQ_INT(pl_start(&ctx, pl_default_stages, pl_default_nstages, nop, nop, NULL), 1);
	*v = ctx.out;
	if (body_out)
		snprintf(body_out, cap, "%.*s", ctx.out.body ? (int)ctx.out.body_len : 0,
			 ctx.out.body ? ctx.out.body : "");
	v->body = NULL;
	pl_ctx_clear(&ctx);
}

static void chat(const char *key, const char *model, int family, const char *src, struct pl_verdict *v)
{
	char body[256];
	struct req r = { "POST", "/v1/chat/completions", key, body, family, src };

	snprintf(body, sizeof(body), "{\"model\":\"%s\",\"messages\":[]}", model);
	decide(&r, v, NULL, 0);
}

static void expect(const struct pl_verdict *v, int status, enum pl_reason reason, const char *type,
		   const char *code)
{
	CHECK_EQ_INT(v->allow, 0);
	CHECK_EQ_INT(v->status, status);
	CHECK_EQ_STR(pl_reason_name(v->reason), pl_reason_name(reason));
	CHECK_EQ_STR(v->err_type, type);
	CHECK_EQ_STR(v->err_code, code);
}

static void test_private_model_is_unknown(void)
{
	struct pl_verdict v, unknown;

	chat(KEY_A, "acme-private", 4, "127.0.0.1", &v);
	CHECK_EQ_INT(v.allow, 1);
	chat(KEY_B, "acme-private", 4, "10.1.1.1", &v);
	expect(&v, 404, PL_R_MODEL_NOT_GRANTED, "invalid_request_error", "model_not_found");
	chat(KEY_B, "no-such-model-xx", 4, "10.1.1.1", &unknown);
	/* Same status, type, code, param and message shape as a model that does not exist. */
	CHECK_EQ_INT(unknown.status, v.status);
	CHECK_EQ_STR(unknown.err_param, v.err_param);
	CHECK(strstr(v.message, "`acme-private` does not exist or you do not have access") != NULL);
	CHECK(strstr(unknown.message, "`no-such-model-xx` does not exist or you do not have access") != NULL);
	CHECK_EQ_INT(v.backend[0], 0);
	chat(KEY_A, "other-private", 4, "127.0.0.1", &v);
	expect(&v, 404, PL_R_MODEL_NOT_GRANTED, "invalid_request_error", "model_not_found");
	/* An alias leads to the same decision as the model's own name. */
	chat(KEY_A, "acme-alias", 4, "127.0.0.1", &v);
	CHECK_EQ_INT(v.allow, 1);
	CHECK_EQ_STR(v.model, "acme-private");
	CHECK_EQ_STR(v.up_value, "Bearer sk-model");
	chat(KEY_B, "acme-alias", 4, "10.1.1.1", &v);
	expect(&v, 404, PL_R_MODEL_NOT_GRANTED, "invalid_request_error", "model_not_found");
	CHECK(strstr(v.message, "`acme-alias` does not exist") != NULL);
}

static void test_ip_allow_lists(void)
{
	struct pl_verdict v;

	chat(KEY_B, "public-model", 4, "10.9.8.7", &v);
	CHECK_EQ_INT(v.allow, 1);
	chat(KEY_B, "public-model", 6, "::ffff:10.9.8.7", &v);
	CHECK_EQ_INT(v.allow, 1);
	chat(KEY_B, "public-model", 4, "127.0.0.1", &v);
	expect(&v, 403, PL_R_IP_NOT_ALLOWED, "permission_error", "ip_not_allowed");
	CHECK(strstr(v.message, "127.0.0.1") && strstr(v.message, "tenant"));
	chat(KEY_B, "public-model", 0, NULL, &v); /* no address: not in any list */
	expect(&v, 403, PL_R_IP_NOT_ALLOWED, "permission_error", "ip_not_allowed");
	/* The key's own list, inside an unrestricted tenant. */
	chat(KEY_A_RESTRICTED, "public-model", 6, "2001:db8::5", &v);
	CHECK_EQ_INT(v.allow, 1);
	chat(KEY_A_RESTRICTED, "public-model", 4, "198.51.100.1", &v);
	expect(&v, 403, PL_R_IP_NOT_ALLOWED, "permission_error", "ip_not_allowed");
	CHECK(strstr(v.message, "API key") != NULL);
}

static void test_service_types(void)
{
	struct pl_verdict v;
	struct req models = { "GET", "/v1/models", KEY_B, NULL, 4, "10.0.0.1" };
	struct req emb = { "POST", "/v1/embeddings", KEY_B, "{\"model\":\"public-model\",\"input\":\"x\"}",
			   4, "10.0.0.1" };
	struct req comp = { "POST", "/v1/completions", KEY_B, "{\"model\":\"public-model\",\"prompt\":\"x\"}",
			    4, "10.0.0.1" };

	decide(&emb, &v, NULL, 0);
	CHECK_EQ_INT(v.allow, 1);
	decide(&comp, &v, NULL, 0);
	expect(&v, 403, PL_R_SERVICE_NOT_ALLOWED, "permission_error", "service_not_allowed");
	CHECK(strstr(v.message, "'completions'") != NULL);
	decide(&models, &v, NULL, 0);
	expect(&v, 403, PL_R_SERVICE_NOT_ALLOWED, "permission_error", "service_not_allowed");
}

static void test_key_model_list(void)
{
	struct pl_verdict v;

	chat(KEY_A_RESTRICTED, "acme-private", 4, "192.0.2.1", &v);
	expect(&v, 403, PL_R_MODEL_NOT_ALLOWED, "permission_error", "model_not_allowed");
	CHECK_EQ_STR(v.err_param, "model");
	chat(KEY_A_RESTRICTED, "public-model", 4, "192.0.2.1", &v);
	CHECK_EQ_INT(v.allow, 1);
}

static void test_model_listing(void)
{
	struct pl_verdict v;
	char body[2048];
	struct req list_a = { "GET", "/v1/models", KEY_A, NULL, 4, "127.0.0.1" };
	struct req list_r = { "GET", "/v1/models", KEY_A_RESTRICTED, NULL, 4, "192.0.2.9" };
	struct req list_c = { "GET", "/v1/models", KEY_C, NULL, 4, "127.0.0.1" };
	struct req get_c = { "GET", "/v1/models/acme-private", KEY_C, NULL, 4, "127.0.0.1" };
	struct req get_a = { "GET", "/v1/models/acme-private", KEY_A, NULL, 4, "127.0.0.1" };

	decide(&list_a, &v, body, sizeof(body));
	CHECK(strstr(body, "\"acme-private\"") && strstr(body, "\"public-model\""));
	CHECK(!strstr(body, "other-private"));
	decide(&list_r, &v, body, sizeof(body));
	CHECK(strstr(body, "\"public-model\"") && !strstr(body, "acme-private"));
	decide(&list_c, &v, body, sizeof(body));
	CHECK(strstr(body, "\"public-model\"") && !strstr(body, "private"));
	decide(&get_c, &v, NULL, 0);
	CHECK_EQ_INT(v.status, 404);
	CHECK_EQ_STR(v.err_code, "model_not_found");
	decide(&get_a, &v, body, sizeof(body));
	CHECK_EQ_INT(v.status, 200);
	CHECK(strstr(body, "acme-private") != NULL);
}

static void test_credential_injection(void)
{
	struct pl_verdict v;
	uint8_t ack[8192];
	int n;

	chat(KEY_A, "public-model", 4, "127.0.0.1", &v); /* be_mock: backend credential */
	CHECK_EQ_INT(v.allow, 1);
	CHECK_EQ_INT(v.up_header, POL_HDR_AUTHORIZATION);
	CHECK_EQ_STR(v.up_value, "Bearer sk-backend");
	n = pl_ack_encode(&v, 1, 1, ack, sizeof(ack), 16380);
	CHECK(n > 0);
	CHECK(memmem(ack, (size_t)n, "up_authorization", 16) != NULL);
	CHECK(memmem(ack, (size_t)n, "Bearer sk-backend", 17) != NULL);
	chat(KEY_A, "acme-private", 4, "127.0.0.1", &v); /* the model's own credential first */
	CHECK_EQ_STR(v.up_value, "Bearer sk-model");
	chat(KEY_A, "broken-cred", 4, "127.0.0.1", &v);
	expect(&v, 503, PL_R_CREDENTIAL_UNAVAILABLE, "server_error", "upstream_credential_unavailable");
	CHECK_EQ_INT(v.backend[0], 0);
	n = pl_ack_encode(&v, 1, 1, ack, sizeof(ack), 16380);
	CHECK(n > 0 && memmem(ack, (size_t)n, "up_authorization", 16) == NULL);
	/* A denial never carries a credential. */
	chat(KEY_B, "public-model", 4, "127.0.0.1", &v);
	CHECK_EQ_INT(v.up_len, 0);
	CHECK_EQ_INT(policy_count_credentials(state_policy(store_read_begin())), 3);
	store_read_end();
}

static void test_tenant_on_error(void)
{
	struct pl_ctx ctx;
	struct pl_policy pol = { 0, 2000 };

	pl_ctx_init(&ctx, &pol);
	ctx.tenant_id = 3;
	ctx.in.src_family = 4;
	CHECK_EQ_INT(pl_stage_client_ip(&ctx), PL_NEXT);
	CHECK_EQ_INT(ctx.policy.on_error_allow, 1);
	pl_ctx_clear(&ctx);
	pol.on_error_allow = 1;
	pl_ctx_init(&ctx, &pol);
	ctx.tenant_id = 1; /* no setting: the agent's on_error stays */
	CHECK_EQ_INT(pl_stage_client_ip(&ctx), PL_NEXT);
	CHECK_EQ_INT(ctx.policy.on_error_allow, 1);
	pl_ctx_clear(&ctx);
}

int main(void)
{
	RUN(test_cidr_v4);
	RUN(test_cidr_v6_and_mapped);
	RUN(test_cidr_parse_errors);
	RUN(test_keyring_parse);
	RUN(test_keyring_file_mode);
	RUN(test_seal_open);
	RUN(test_access_rule);
	RUN(test_key_models);
	store_init();
	load_catalogue();
	RUN(test_private_model_is_unknown);
	RUN(test_ip_allow_lists);
	RUN(test_service_types);
	RUN(test_key_model_list);
	RUN(test_model_listing);
	RUN(test_credential_injection);
	RUN(test_tenant_on_error);
	store_destroy();
	cred_global_set(NULL);
	TEST_END();
}
