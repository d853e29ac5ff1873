/*
 * test_oidc: the pure parts of the OIDC key fetcher: discovery documents (the issuer must
 * match, a usable jwks_uri) and JWKS documents (signing keys kept; oct, encryption,
 * private and unsupported keys skipped).
 */
#include "oidc/oidc.h"

#include "jwt_fixtures.h"
#include "testlib.h"

static void test_discovery(void)
{
	char uri[256], err[160];
	const char *ok = "{\"issuer\":\"https://idp.test\",\"jwks_uri\":\"https://idp.test/jwks\"}";
	const char *other = "{\"issuer\":\"https://evil.test\",\"jwks_uri\":\"https://idp.test/jwks\"}";
	const char *nouri = "{\"issuer\":\"https://idp.test\"}";
	const char *ftp = "{\"issuer\":\"https://idp.test\",\"jwks_uri\":\"ftp://idp.test/jwks\"}";

	CHECK_EQ_INT(oidc_parse_discovery(ok, strlen(ok), "https://idp.test", uri, sizeof(uri), err, sizeof(err)), 0);
	CHECK_EQ_STR(uri, "https://idp.test/jwks");
	CHECK_EQ_INT(oidc_parse_discovery(other, strlen(other), "https://idp.test", uri, sizeof(uri), err, sizeof(err)), -1);
	CHECK(strstr(err, "another issuer") != NULL);
	CHECK_EQ_INT(oidc_parse_discovery(nouri, strlen(nouri), "https://idp.test", uri, sizeof(uri), err, sizeof(err)), -1);
	CHECK_EQ_INT(oidc_parse_discovery(ftp, strlen(ftp), "https://idp.test", uri, sizeof(uri), err, sizeof(err)), -1);
	CHECK_EQ_INT(oidc_parse_discovery("[", 1, "https://idp.test", uri, sizeof(uri), err, sizeof(err)), -1);
}

static void test_jwks(void)
{
	EVP_PKEY *rsa = fxj_keygen("RSA", NULL), *ec = fxj_keygen("EC", "P-256");
	char a[4096], b[1024], doc[8192];
	struct jwt_key keys[4];
	int n;

	fxj_jwk(rsa, "r1", a, sizeof(a));
	fxj_jwk(ec, "e1", b, sizeof(b));
	snprintf(doc, sizeof(doc), "{\"keys\":[%s,%s,"
		 "{\"kty\":\"oct\",\"kid\":\"s\",\"k\":\"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY\"},"
		 "{\"kty\":\"RSA\",\"use\":\"enc\",\"n\":\"AQAB\",\"e\":\"AQAB\"},"
		 "{\"kty\":\"EC\",\"crv\":\"P-521\",\"x\":\"AA\",\"y\":\"AA\"}]}", a, b);
	n = oidc_parse_jwks(doc, strlen(doc), keys, 4);
	CHECK_EQ_INT(n, 2);
	CHECK_EQ_STR(keys[0].kid, "r1");
	CHECK_EQ_STR(keys[1].kid, "e1");
	for (int i = 0; i < n; i++)
		jwt_key_free(&keys[i]);
	n = oidc_parse_jwks(doc, strlen(doc), keys, 1); /* bounded */
	CHECK_EQ_INT(n, 1);
	jwt_key_free(&keys[0]);
	CHECK_EQ_INT(oidc_parse_jwks("{\"keys\":{}}", 11, keys, 4), -1);
	CHECK_EQ_INT(oidc_parse_jwks("{\"keys\":[]}", 11, keys, 4), 0);
	EVP_PKEY_free(rsa);
	EVP_PKEY_free(ec);
}

static void test_nothing_published(void)
{
	struct jwt_key keys[2];
	uint64_t gen = 7;

	CHECK_EQ_INT(oidc_keys_begin(42, keys, 0, 2, &gen), 0);
	oidc_keys_end();
	CHECK_EQ_INT(gen, 0);
	CHECK_EQ_INT(oidc_generation(42), 0);
}

int main(void)
{
	RUN(test_discovery);
	RUN(test_jwks);
	RUN(test_nothing_published);
	TEST_END();
}
