/*
 * test_jwt: compact JWS parsing, every supported algorithm, the attacks a verifier must
 * refuse (alg none, HMAC keyed with an RSA public key, tampering, unknown kid), the
 * time and audience rules, and JWK/PEM import.
 */
#include "jwt/jwt.h"

#include "jwt_fixtures.h"
#include "testlib.h"

#include <openssl/pem.h>

static const char PAYLOAD[] =
	"{\"iss\":\"https://idp.example\",\"sub\":\"alice\",\"aud\":\"jairouter\","
	"\"exp\":2000000000,\"iat\":1700000000,\"jti\":\"t-1\"}";
static const uint8_t SECRET[64] = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde";

static EVP_PKEY *rsa, *ec256, *ec384, *ed;

static int load_key(EVP_PKEY *k, const char *kid, struct jwt_key *out)
{
	char jwk[4096], err[128];

	fxj_jwk(k, kid, jwk, sizeof(jwk));
	return jwk_parse_text(jwk, strlen(jwk), NULL, out, err, sizeof(err));
}

static int oct_key(const uint8_t *s, size_t n, const char *kid, struct jwt_key *out)
{
	char b[200], jwk[400], err[128];

	jwt_b64url_encode(s, n, b, sizeof(b));
	snprintf(jwk, sizeof(jwk), "{\"kty\":\"oct\",\"k\":\"%s\",\"kid\":\"%s\"}", b, kid);
	return jwk_parse_text(jwk, strlen(jwk), NULL, out, err, sizeof(err));
}

/* Signs PAYLOAD with alg and verifies it with key: the verification result. */
static int roundtrip(const char *alg, EVP_PKEY *sk, const struct jwt_key *vk, unsigned mask,
		     const char *payload)
{
	char hdr[200];
	char *tok;
	struct jwt_parsed p;
	int rc;

	fxj_header(hdr, sizeof(hdr), alg, vk->kid[0] ? vk->kid : NULL);
	tok = fxj_sign(hdr, payload ? payload : PAYLOAD, alg, sk, SECRET, sizeof(SECRET));
	rc = jwt_parse(tok, strlen(tok), &p);
	if (rc == JWT_OK) {
		rc = jwt_verify_sig(&p, vk, mask);
		jwt_parsed_free(&p);
	}
	free(tok);
	return rc;
}

static void test_b64url_strict(void)
{
	uint8_t out[16];
	char enc[32];

	CHECK_EQ_INT(jwt_b64url_decode("YWJj", 4, out, sizeof(out)), 3);
	CHECK(memcmp(out, "abc", 3) == 0);
	CHECK_EQ_INT(jwt_b64url_decode("YWI", 3, out, sizeof(out)), 2);
	CHECK_EQ_INT(jwt_b64url_decode("YWI=", 4, out, sizeof(out)), -1); /* padding */
	CHECK_EQ_INT(jwt_b64url_decode("YWJ", 3, out, sizeof(out)), -1);  /* trailing bits */
	CHECK_EQ_INT(jwt_b64url_decode("YW+j", 4, out, sizeof(out)), -1); /* base64, not url */
	CHECK_EQ_INT(jwt_b64url_decode("Y", 1, out, sizeof(out)), -1);
	CHECK_EQ_INT(jwt_b64url_decode("YWJjYWJj", 8, out, 5), -1);       /* capacity */
	CHECK_EQ_INT(jwt_b64url_encode((const uint8_t *)"\xfb\xff", 2, enc, sizeof(enc)), 3);
	CHECK_EQ_STR(enc, "-_8");
}

static void test_alg_names(void)
{
	CHECK_EQ_INT(jwt_alg_parse("none", 4), -1);
	CHECK_EQ_INT(jwt_alg_parse("NONE", 4), -1);
	CHECK_EQ_INT(jwt_alg_parse("hs256", 5), -1);
	CHECK_EQ_INT(jwt_alg_parse("EdDSA", 5), JWT_EDDSA);
	CHECK_EQ_INT(jwt_alg_mask("RS256, ES256"), (1 << JWT_RS256) | (1 << JWT_ES256));
	CHECK_EQ_INT(jwt_alg_mask("RS256,none"), -1);
	CHECK_EQ_INT(jwt_alg_mask(""), -1);
}

static void test_every_algorithm(void)
{
	struct jwt_key k;
	const char *rsa_algs[] = { "RS256", "RS384", "RS512", "PS256" };
	const char *hs_algs[] = { "HS256", "HS384", "HS512" };

	CHECK_EQ_INT(load_key(rsa, "r1", &k), 0);
	for (int i = 0; i < 4; i++)
		CHECK_EQ_INT(roundtrip(rsa_algs[i], rsa, &k, ~0u, NULL), JWT_OK);
	/* RS256-signed token presented as PS256 (and back) fails the signature. */
	jwt_key_free(&k);
	CHECK_EQ_INT(oct_key(SECRET, sizeof(SECRET), "h1", &k), 0);
	for (int i = 0; i < 3; i++)
		CHECK_EQ_INT(roundtrip(hs_algs[i], NULL, &k, ~0u, NULL), JWT_OK);
	jwt_key_free(&k);
	CHECK_EQ_INT(load_key(ec256, "e1", &k), 0);
	CHECK_EQ_INT(roundtrip("ES256", ec256, &k, ~0u, NULL), JWT_OK);
	/* An ES384 token cannot be checked with a P-256 key. */
	CHECK_EQ_INT(roundtrip("ES384", ec384, &k, ~0u, NULL), JWT_E_NO_KEY);
	jwt_key_free(&k);
	CHECK_EQ_INT(load_key(ec384, "e2", &k), 0);
	CHECK_EQ_INT(roundtrip("ES384", ec384, &k, ~0u, NULL), JWT_OK);
	jwt_key_free(&k);
	CHECK_EQ_INT(load_key(ed, "d1", &k), 0);
	CHECK_EQ_INT(roundtrip("EdDSA", ed, &k, ~0u, NULL), JWT_OK);
	jwt_key_free(&k);
}

static void test_alg_pinned(void)
{
	struct jwt_key k;
	char hdr[100];
	char *tok;
	struct jwt_parsed p;

	CHECK_EQ_INT(load_key(rsa, "r1", &k), 0);
	CHECK_EQ_INT(roundtrip("RS256", rsa, &k, 1u << JWT_ES256, NULL), JWT_E_ALG);
	CHECK_EQ_INT(roundtrip("RS384", rsa, &k, 1u << JWT_RS256, NULL), JWT_E_ALG);
	/* alg none: parsed (so it can be audited), never verified. */
	fxj_header(hdr, sizeof(hdr), "none", "r1");
	tok = fxj_sign(hdr, PAYLOAD, "none", NULL, NULL, 0);
	CHECK_EQ_INT(jwt_parse(tok, strlen(tok), &p), JWT_OK);
	CHECK_EQ_INT(p.alg, -1);
	CHECK_EQ_STR(p.alg_name, "none");
	CHECK_EQ_INT(jwt_verify_sig(&p, &k, ~0u), JWT_E_ALG);
	jwt_parsed_free(&p);
	free(tok);
	jwt_key_free(&k);
}

/* The classic confusion attack: HS256 keyed with the bytes of the RSA public key. */
static void test_hmac_with_rsa_public_key(void)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *pem;
	long n;
	char hdr[100];
	char *tok;
	struct jwt_key k;
	struct jwt_parsed p;
	int idx;

	PEM_write_bio_PUBKEY(b, rsa);
	n = BIO_get_mem_data(b, &pem);
	CHECK_EQ_INT(jwk_parse_text(pem, (size_t)n, "r1", &k, NULL, 0), 0);
	CHECK_EQ_INT(k.kty, JWT_KTY_RSA);
	fxj_header(hdr, sizeof(hdr), "HS256", "r1");
	tok = fxj_sign(hdr, PAYLOAD, "HS256", NULL, (const uint8_t *)pem, (size_t)n);
	CHECK_EQ_INT(jwt_parse(tok, strlen(tok), &p), JWT_OK);
	idx = jwt_select_key(&p, &k, 1);
	CHECK_EQ_INT(idx, 0); /* the kid matches ... */
	CHECK_EQ_INT(jwt_verify_sig(&p, &k, ~0u), JWT_E_NO_KEY); /* ... the family does not */
	jwt_parsed_free(&p);
	free(tok);
	jwt_key_free(&k);
	BIO_free(b);
}

static void test_tampered(void)
{
	struct jwt_key k;
	char hdr[100], *tok, *tampered;
	const char *evil = "{\"iss\":\"https://idp.example\",\"sub\":\"admin\",\"aud\":\"jairouter\","
			   "\"exp\":2000000000}";
	char evil64[400];
	struct jwt_parsed p;
	char *d1, *d2;

	CHECK_EQ_INT(load_key(ec256, "e1", &k), 0);
	fxj_header(hdr, sizeof(hdr), "ES256", "e1");
	tok = fxj_sign(hdr, PAYLOAD, "ES256", ec256, NULL, 0);
	d1 = strchr(tok, '.');
	d2 = strchr(d1 + 1, '.');
	jwt_b64url_encode((const uint8_t *)evil, strlen(evil), evil64, sizeof(evil64));
	tampered = malloc(strlen(tok) + 400);
	sprintf(tampered, "%.*s.%s%s", (int)(d1 - tok), tok, evil64, d2);
	CHECK_EQ_INT(jwt_parse(tampered, strlen(tampered), &p), JWT_OK);
	CHECK_EQ_STR(p.sub, "admin");
	CHECK_EQ_INT(jwt_verify_sig(&p, &k, ~0u), JWT_E_SIGNATURE);
	jwt_parsed_free(&p);
	/* a flipped signature bit */
	tok[strlen(tok) - 3] = tok[strlen(tok) - 3] == 'A' ? 'B' : 'A';
	CHECK_EQ_INT(jwt_parse(tok, strlen(tok), &p), JWT_OK);
	CHECK_EQ_INT(jwt_verify_sig(&p, &k, ~0u), JWT_E_SIGNATURE);
	jwt_parsed_free(&p);
	free(tampered);
	free(tok);
	jwt_key_free(&k);
}

static void test_key_selection(void)
{
	struct jwt_key keys[2];
	char hdr[100], *tok;
	struct jwt_parsed p;

	CHECK_EQ_INT(load_key(rsa, "r1", &keys[0]), 0);
	CHECK_EQ_INT(load_key(ec256, "e1", &keys[1]), 0);
	fxj_header(hdr, sizeof(hdr), "ES256", "e1");
	tok = fxj_sign(hdr, PAYLOAD, "ES256", ec256, NULL, 0);
	CHECK_EQ_INT(jwt_parse(tok, strlen(tok), &p), JWT_OK);
	CHECK_EQ_INT(jwt_select_key(&p, keys, 2), 1);
	jwt_parsed_free(&p);
	free(tok);
	fxj_header(hdr, sizeof(hdr), "ES256", "rotated-away");
	tok = fxj_sign(hdr, PAYLOAD, "ES256", ec256, NULL, 0);
	CHECK_EQ_INT(jwt_parse(tok, strlen(tok), &p), JWT_OK);
	CHECK_EQ_INT(jwt_select_key(&p, keys, 2), JWT_E_NO_KEY);
	jwt_parsed_free(&p);
	free(tok);
	/* no kid: the one key of the right family */
	fxj_header(hdr, sizeof(hdr), "RS256", NULL);
	tok = fxj_sign(hdr, PAYLOAD, "RS256", rsa, NULL, 0);
	CHECK_EQ_INT(jwt_parse(tok, strlen(tok), &p), JWT_OK);
	CHECK_EQ_INT(jwt_select_key(&p, keys, 2), 0);
	jwt_parsed_free(&p);
	free(tok);
	jwt_key_free(&keys[0]);
	jwt_key_free(&keys[1]);
}

static int claims_rc(const char *payload, const struct jwt_rules *r, int64_t now)
{
	char hdr[100], *tok;
	struct jwt_parsed p;
	int rc;

	fxj_header(hdr, sizeof(hdr), "HS256", NULL);
	tok = fxj_sign(hdr, payload, "HS256", NULL, SECRET, sizeof(SECRET));
	rc = jwt_parse(tok, strlen(tok), &p);
	if (rc == JWT_OK) {
		rc = jwt_check_claims(&p, r, now);
		jwt_parsed_free(&p);
	}
	free(tok);
	return rc;
}

static void test_claims(void)
{
	struct jwt_rules r = { "https://idp.example", "jairouter", 30, 1 };
	const char *base = "{\"iss\":\"https://idp.example\",\"aud\":[\"other\",\"jairouter\"],"
			   "\"exp\":1000,\"nbf\":500,\"iat\":500}";

	CHECK_EQ_INT(claims_rc(base, &r, 800), JWT_OK);
	CHECK_EQ_INT(claims_rc(base, &r, 1029), JWT_OK);          /* within leeway */
	CHECK_EQ_INT(claims_rc(base, &r, 1030), JWT_E_EXPIRED);
	CHECK_EQ_INT(claims_rc(base, &r, 470), JWT_OK);           /* nbf within leeway */
	CHECK_EQ_INT(claims_rc(base, &r, 469), JWT_E_NOT_YET_VALID);
	CHECK_EQ_INT(claims_rc("{\"iss\":\"https://idp.example\",\"aud\":\"jairouter\",\"exp\":9000,"
			       "\"iat\":5000}", &r, 1000), JWT_E_NOT_YET_VALID); /* iat in the future */
	CHECK_EQ_INT(claims_rc("{\"iss\":\"https://evil.example\",\"aud\":\"jairouter\",\"exp\":9000}",
			       &r, 1000), JWT_E_ISSUER);
	CHECK_EQ_INT(claims_rc("{\"iss\":\"https://idp.example\",\"aud\":\"other\",\"exp\":9000}", &r,
			       1000), JWT_E_AUDIENCE);
	CHECK_EQ_INT(claims_rc("{\"iss\":\"https://idp.example\",\"exp\":9000}", &r, 1000), JWT_E_AUDIENCE);
	CHECK_EQ_INT(claims_rc("{\"iss\":\"https://idp.example\",\"aud\":\"jairouter\"}", &r, 1000),
		     JWT_E_MISSING_EXP);
	CHECK_EQ_INT(claims_rc("{\"iss\":\"https://idp.example\",\"aud\":\"jairouter\",\"exp\":1.5e3}",
			       &r, 1000), JWT_OK);
	r.audience = NULL;
	CHECK_EQ_INT(claims_rc("{\"iss\":\"https://idp.example\",\"exp\":9000}", &r, 1000), JWT_OK);
}

static void test_malformed(void)
{
	char hdr[100], *tok;
	struct jwt_parsed p;
	char big[JWT_TOKEN_MAX + 2];

	fxj_header(hdr, sizeof(hdr), "HS256", NULL);
	/* duplicate claim: which one would the next reader believe? */
	tok = fxj_sign(hdr, "{\"sub\":\"a\",\"sub\":\"admin\"}", "HS256", NULL, SECRET, 32);
	CHECK_EQ_INT(jwt_parse(tok, strlen(tok), &p), JWT_E_MALFORMED);
	free(tok);
	tok = fxj_sign(hdr, "[1,2]", "HS256", NULL, SECRET, 32);
	CHECK_EQ_INT(jwt_parse(tok, strlen(tok), &p), JWT_E_MALFORMED);
	free(tok);
	tok = fxj_sign(hdr, "{\"exp\":\"tomorrow\"}", "HS256", NULL, SECRET, 32);
	CHECK_EQ_INT(jwt_parse(tok, strlen(tok), &p), JWT_E_MALFORMED);
	free(tok);
	tok = fxj_sign(hdr, "{\"aud\":[\"a\",1]}", "HS256", NULL, SECRET, 32);
	CHECK_EQ_INT(jwt_parse(tok, strlen(tok), &p), JWT_E_MALFORMED);
	free(tok);
	tok = fxj_sign("{\"alg\":\"HS256\",\"crit\":[\"b64\"],\"b64\":false}", "{}", "HS256", NULL, SECRET, 32);
	CHECK_EQ_INT(jwt_parse(tok, strlen(tok), &p), JWT_E_CRIT);
	free(tok);
	tok = fxj_sign("{\"kid\":\"x\"}", "{}", "HS256", NULL, SECRET, 32);
	CHECK_EQ_INT(jwt_parse(tok, strlen(tok), &p), JWT_E_MALFORMED); /* no alg */
	free(tok);
	CHECK_EQ_INT(jwt_parse("a.b.c.d", 7, &p), JWT_E_MALFORMED);
	CHECK_EQ_INT(jwt_parse("..", 2, &p), JWT_E_MALFORMED);
	CHECK_EQ_INT(jwt_parse("eyJ.eyJ.", 8, &p), JWT_E_MALFORMED);
	memset(big, 'a', sizeof(big));
	big[10] = big[20] = '.';
	CHECK_EQ_INT(jwt_parse(big, sizeof(big), &p), JWT_E_TOO_LARGE);
	CHECK(!jwt_looks_like("jr-0123", 7));
	CHECK(!jwt_looks_like("opaque-token", 12));
	CHECK(jwt_looks_like("aa.bb.cc", 8));
}

static void test_jwk_refusals(void)
{
	struct jwt_key k;
	char err[128];
	EVP_PKEY *small = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
	char jwk[4096];
	const char *cases[] = {
		"{\"kty\":\"oct\",\"k\":\"c2hvcnQ\"}",                     /* 5 bytes */
		"{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AAAA\",\"y\":\"AAAA\"}",
		"{\"kty\":\"EC\",\"crv\":\"P-521\",\"x\":\"AA\",\"y\":\"AA\"}",
		"{\"kty\":\"RSA\",\"n\":\"AQAB\",\"e\":\"AQAB\",\"d\":\"AQAB\"}", /* private */
		"{\"kty\":\"OKP\",\"crv\":\"X25519\",\"x\":\"AA\"}",
		"{\"kty\":\"foo\"}",
		"[1]",
		"not json",
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		CHECK_EQ_INT(jwk_parse_text(cases[i], strlen(cases[i]), NULL, &k, err, sizeof(err)), -1);
	fxj_jwk(small, "s", jwk, sizeof(jwk));
	CHECK_EQ_INT(jwk_parse_text(jwk, strlen(jwk), NULL, &k, err, sizeof(err)), -1);
	CHECK(strstr(err, "2048") != NULL);
	/* A point that is not on the curve (a flipped y). */
	fxj_jwk(ec256, "e", jwk, sizeof(jwk));
	{
		char *y = strstr(jwk, "\"y\":\"") + 5;
		y[3] = y[3] == 'A' ? 'B' : 'A';
	}
	CHECK_EQ_INT(jwk_parse_text(jwk, strlen(jwk), NULL, &k, err, sizeof(err)), -1);
	/* use: enc, and alg that contradicts kty */
	fxj_jwk(rsa, "r", jwk, sizeof(jwk));
	strcpy(strrchr(jwk, '}'), ",\"use\":\"enc\"}");
	CHECK_EQ_INT(jwk_parse_text(jwk, strlen(jwk), NULL, &k, err, sizeof(err)), -1);
	fxj_jwk(rsa, "r", jwk, sizeof(jwk));
	strcpy(strrchr(jwk, '}'), ",\"alg\":\"HS256\"}");
	CHECK_EQ_INT(jwk_parse_text(jwk, strlen(jwk), NULL, &k, err, sizeof(err)), -1);
	/* a JWK's alg restricts the key */
	fxj_jwk(rsa, "r", jwk, sizeof(jwk));
	strcpy(strrchr(jwk, '}'), ",\"alg\":\"RS256\",\"use\":\"sig\"}");
	CHECK_EQ_INT(jwk_parse_text(jwk, strlen(jwk), NULL, &k, err, sizeof(err)), 0);
	CHECK_EQ_INT(roundtrip("RS256", rsa, &k, ~0u, NULL), JWT_OK);
	CHECK_EQ_INT(roundtrip("PS256", rsa, &k, ~0u, NULL), JWT_E_NO_KEY);
	jwt_key_free(&k);
	/* HS512 needs a 64-byte secret */
	CHECK_EQ_INT(oct_key(SECRET, 32, "h", &k), 0);
	CHECK_EQ_INT(roundtrip("HS256", NULL, &k, ~0u, NULL), JWT_E_SIGNATURE); /* signed with 64 */
	CHECK_EQ_INT(roundtrip("HS512", NULL, &k, ~0u, NULL), JWT_E_NO_KEY);
	jwt_key_free(&k);
	EVP_PKEY_free(small);
}

static void test_pem_keys(void)
{
	EVP_PKEY *keys[] = { rsa, ec256, ec384, ed };
	int kty[] = { JWT_KTY_RSA, JWT_KTY_EC, JWT_KTY_EC, JWT_KTY_OKP };

	for (int i = 0; i < 4; i++) {
		BIO *b = BIO_new(BIO_s_mem());
		char *pem;
		long n;
		struct jwt_key k;

		PEM_write_bio_PUBKEY(b, keys[i]);
		n = BIO_get_mem_data(b, &pem);
		CHECK_EQ_INT(jwk_parse_text(pem, (size_t)n, "kid-pem", &k, NULL, 0), 0);
		CHECK_EQ_INT(k.kty, kty[i]);
		CHECK_EQ_STR(k.kid, "kid-pem");
		jwt_key_free(&k);
		BIO_free(b);
	}
}

int main(void)
{
	rsa = fxj_keygen("RSA", NULL);
	ec256 = fxj_keygen("EC", "P-256");
	ec384 = fxj_keygen("EC", "P-384");
	ed = fxj_keygen("ED25519", NULL);
	RUN(test_b64url_strict);
	RUN(test_alg_names);
	RUN(test_every_algorithm);
	RUN(test_alg_pinned);
	RUN(test_hmac_with_rsa_public_key);
	RUN(test_tampered);
	RUN(test_key_selection);
	RUN(test_claims);
	RUN(test_malformed);
	RUN(test_jwk_refusals);
	RUN(test_pem_keys);
	EVP_PKEY_free(rsa);
	EVP_PKEY_free(ec256);
	EVP_PKEY_free(ec384);
	EVP_PKEY_free(ed);
	TEST_END();
}
