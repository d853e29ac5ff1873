/*
 * jwt_fixtures: makes keys and signs tokens for the JWT tests and the identity bench
 * (OpenSSL does the signing; the code under test only verifies).
 */
#ifndef JR_TEST_JWT_FIXTURES_H
#define JR_TEST_JWT_FIXTURES_H

#include "authz/ident.h"
#include "jwt/jwt.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rsa.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static inline EVP_PKEY *fxj_keygen(const char *type, const char *curve)
{
	EVP_PKEY *k = NULL;

	if (strcmp(type, "RSA") == 0)
		k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	else if (strcmp(type, "EC") == 0)
		k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", curve);
	else
		k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	return k;
}

static inline void fxj_b64(const uint8_t *p, size_t n, char *out, size_t cap)
{
	jwt_b64url_encode(p, n, out, cap);
}

static inline void fxj_bn_b64(EVP_PKEY *k, const char *name, char *out, size_t cap)
{
	BIGNUM *bn = NULL;
	uint8_t buf[1024];
	int n;

	EVP_PKEY_get_bn_param(k, name, &bn);
	n = BN_bn2bin(bn, buf);
	fxj_b64(buf, (size_t)n, out, cap);
	BN_free(bn);
}

/* The public JWK of k (kid may be NULL) into out. */
static inline void fxj_jwk(EVP_PKEY *k, const char *kid, char *out, size_t cap)
{
	char a[1024], b[1024], kidm[160] = "";
	uint8_t pt[200];
	size_t n = 0;

	if (kid)
		snprintf(kidm, sizeof(kidm), ",\"kid\":\"%s\"", kid);
	switch (EVP_PKEY_get_base_id(k)) {
	case EVP_PKEY_RSA:
		fxj_bn_b64(k, OSSL_PKEY_PARAM_RSA_N, a, sizeof(a));
		fxj_bn_b64(k, OSSL_PKEY_PARAM_RSA_E, b, sizeof(b));
		snprintf(out, cap, "{\"kty\":\"RSA\",\"n\":\"%s\",\"e\":\"%s\"%s}", a, b, kidm);
		break;
	case EVP_PKEY_EC: {
		size_t w = EVP_PKEY_get_bits(k) == 256 ? 32 : 48;
		EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, pt, sizeof(pt), &n);
		fxj_b64(pt + 1, w, a, sizeof(a));
		fxj_b64(pt + 1 + w, w, b, sizeof(b));
		snprintf(out, cap, "{\"kty\":\"EC\",\"crv\":\"%s\",\"x\":\"%s\",\"y\":\"%s\"%s}",
			 w == 32 ? "P-256" : "P-384", a, b, kidm);
		break;
	}
	default:
		n = sizeof(pt);
		EVP_PKEY_get_raw_public_key(k, pt, &n);
		fxj_b64(pt, n, a, sizeof(a));
		snprintf(out, cap, "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"%s\"%s}", a, kidm);
	}
}

/* Signs header_json.payload_json with alg. For HS*, secret is used; else k.
 * Returns the token (malloc'd). alg "none" gives an empty signature. */
static inline char *fxj_sign(const char *header_json, const char *payload_json, const char *alg,
			     EVP_PKEY *k, const uint8_t *secret, size_t slen)
{
	size_t cap = 3 * (strlen(header_json) + strlen(payload_json)) + 2048;
	char *tok = malloc(cap);
	size_t n;
	uint8_t sig[1024];
	size_t sl = 0;
	const EVP_MD *md = strstr(alg, "384") ? EVP_sha384() : strstr(alg, "512") ? EVP_sha512() : EVP_sha256();

	n = jwt_b64url_encode((const uint8_t *)header_json, strlen(header_json), tok, cap);
	tok[n++] = '.';
	n += jwt_b64url_encode((const uint8_t *)payload_json, strlen(payload_json), tok + n, cap - n);
	if (alg[0] == 'H') {
		unsigned ml = 0;
		HMAC(md, secret, (int)slen, (const uint8_t *)tok, n, sig, &ml);
		sl = ml;
	} else if (strcmp(alg, "none") != 0) {
		EVP_MD_CTX *c = EVP_MD_CTX_new();
		EVP_PKEY_CTX *pc = NULL;
		sl = sizeof(sig);
		EVP_DigestSignInit(c, &pc, alg[0] == 'E' && alg[1] == 'd' ? NULL : md, NULL, k);
		if (alg[0] == 'P') {
			EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PSS_PADDING);
			EVP_PKEY_CTX_set_rsa_pss_saltlen(pc, RSA_PSS_SALTLEN_DIGEST);
		}
		EVP_DigestSign(c, sig, &sl, (const uint8_t *)tok, n);
		EVP_MD_CTX_free(c);
		if (alg[0] == 'E' && alg[1] == 'S') { /* DER -> R || S */
			const uint8_t *q = sig;
			ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &q, (long)sl);
			int w = strstr(alg, "384") ? 48 : 32;
			BN_bn2binpad(ECDSA_SIG_get0_r(es), sig, w);
			BN_bn2binpad(ECDSA_SIG_get0_s(es), sig + w, w);
			ECDSA_SIG_free(es);
			sl = (size_t)(2 * w);
		}
	}
	tok[n++] = '.';
	n += jwt_b64url_encode(sig, sl, tok + n, cap - n);
	tok[n] = '\0';
	return tok;
}

/* A header {"alg":alg,"kid":kid,"typ":"JWT"} (kid NULL: none). */
static inline void fxj_header(char *out, size_t cap, const char *alg, const char *kid)
{
	if (kid)
		snprintf(out, cap, "{\"alg\":\"%s\",\"kid\":\"%s\",\"typ\":\"JWT\"}", alg, kid);
	else
		snprintf(out, cap, "{\"alg\":\"%s\",\"typ\":\"JWT\"}", alg);
}

/* Puts an HS* secret into id as key row `row` of issuer `issuer` (an "oct" JWK with kid).
 * 0, or -1 when the JWK does not parse. */
static inline int fxj_put_secret(struct ident *id, int64_t row, int64_t issuer, const uint8_t *secret,
				 size_t n, const char *kid)
{
	char b[128], jwk[320], err[128];
	struct id_key k;

	jwt_b64url_encode(secret, n, b, sizeof(b));
	snprintf(jwk, sizeof(jwk), "{\"kty\":\"oct\",\"k\":\"%s\",\"kid\":\"%s\"}", b, kid);
	memset(&k, 0, sizeof(k));
	k.id = row;
	k.issuer_id = issuer;
	k.enabled = 1;
	if (jwk_parse_text(jwk, strlen(jwk), NULL, &k.key, err, sizeof(err)) < 0)
		return -1;
	ident_put_key(id, &k);
	return 0;
}

#endif /* JR_TEST_JWT_FIXTURES_H */
