/*
 * jwt: compact JWS parsing and verification, JWK import (see jwt.h for the rules).
 */
#include "jwt/jwt.h"

#include "util/b64.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/hmac.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define JWT_PART_MAX (JWT_TOKEN_MAX / 4 * 3 + 3) /* decoded header or payload */
#define RSA_MIN_BITS 2048

static const char *const alg_names[JWT_ALG__COUNT] = {
	"HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA",
};

int jwt_alg_parse(const char *s, size_t len)
{
	for (int i = 0; i < JWT_ALG__COUNT; i++)
		if (strlen(alg_names[i]) == len && memcmp(alg_names[i], s, len) == 0)
			return i;
	return -1;
}

const char *jwt_alg_name(enum jwt_alg a)
{
	return (unsigned)a < JWT_ALG__COUNT ? alg_names[a] : "?";
}

int jwt_alg_mask(const char *list)
{
	int mask = 0;
	const char *p = list;

	while (*p) {
		size_t n = strcspn(p, ",");
		const char *q = p;
		size_t m = n;
		int a;

		while (m && (*q == ' ')) /* tolerate "RS256, ES256" */
			q++, m--;
		while (m && q[m - 1] == ' ')
			m--;
		if ((a = jwt_alg_parse(q, m)) < 0)
			return -1;
		mask |= 1 << a;
		p += n;
		if (*p == ',')
			p++;
	}
	return mask ? mask : -1;
}

static enum jwt_kty alg_kty(int a)
{
	switch (a) {
	case JWT_HS256: case JWT_HS384: case JWT_HS512:
		return JWT_KTY_OCT;
	case JWT_RS256: case JWT_RS384: case JWT_RS512: case JWT_PS256:
		return JWT_KTY_RSA;
	case JWT_ES256: case JWT_ES384:
		return JWT_KTY_EC;
	default:
		return JWT_KTY_OKP;
	}
}

static const EVP_MD *alg_md(int a)
{
	switch (a) {
	case JWT_HS256: case JWT_RS256: case JWT_PS256: case JWT_ES256:
		return EVP_sha256();
	case JWT_HS384: case JWT_RS384: case JWT_ES384:
		return EVP_sha384();
	case JWT_HS512: case JWT_RS512:
		return EVP_sha512();
	default:
		return NULL;
	}
}

const char *jwt_error_name(int e)
{
	switch (e) {
	case JWT_OK: return "ok";
	case JWT_E_MALFORMED: return "malformed";
	case JWT_E_TOO_LARGE: return "too_large";
	case JWT_E_ALG: return "algorithm_not_allowed";
	case JWT_E_NO_KEY: return "unknown_key";
	case JWT_E_SIGNATURE: return "bad_signature";
	case JWT_E_EXPIRED: return "expired";
	case JWT_E_NOT_YET_VALID: return "not_yet_valid";
	case JWT_E_ISSUER: return "wrong_issuer";
	case JWT_E_AUDIENCE: return "wrong_audience";
	case JWT_E_CRIT: return "unsupported_critical_header";
	case JWT_E_MISSING_EXP: return "missing_exp";
	default: return "error";
	}
}

/* ---- base64url ------------------------------------------------------------------- */

long jwt_b64url_decode(const char *in, size_t len, uint8_t *out, size_t cap)
{
	size_t o = 0, i = 0;
	uint32_t acc = 0;
	int bits = 0;

	if (len % 4 == 1)
		return -1;
	if (len / 4 * 3 + (len % 4 ? len % 4 - 1 : 0) > cap)
		return -1;
	for (; i < len; i++) {
		int v = b64_digit((unsigned char)in[i], B64_URL);
		if (v < 0)
			return -1;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (uint8_t)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	if (acc != 0) /* non-zero trailing bits: a second spelling of the same bytes */
		return -1;
	return (long)o;
}

size_t jwt_b64url_encode(const uint8_t *in, size_t len, char *out, size_t cap)
{
	static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	size_t o = 0;
	uint32_t acc = 0;
	int bits = 0;

	for (size_t i = 0; i < len; i++) {
		acc = (acc << 8) | in[i];
		bits += 8;
		while (bits >= 6) {
			bits -= 6;
			if (o + 1 < cap)
				out[o++] = a[(acc >> bits) & 63];
		}
	}
	if (bits > 0 && o + 1 < cap)
		out[o++] = a[(acc << (6 - bits)) & 63];
	if (cap)
		out[o < cap ? o : cap - 1] = '\0';
	return o;
}

static int b64url_char(char c)
{
	return b64_digit((unsigned char)c, B64_URL) >= 0;
}

int jwt_looks_like(const char *tok, size_t len)
{
	int dots = 0;

	for (size_t i = 0; i < len; i++) {
		if (tok[i] == '.')
			dots++;
		else if (!b64url_char(tok[i]))
			return 0;
	}
	return dots == 2 && len > 4;
}

/* ---- parsing ------------------------------------------------------------------------ */

static json_t *decode_object(const char *p, size_t n)
{
	uint8_t *buf = malloc(JWT_PART_MAX);
	long m;
	json_t *j = NULL;
	json_error_t e;

	if (!buf)
		return NULL;
	m = jwt_b64url_decode(p, n, buf, JWT_PART_MAX);
	if (m > 0)
		j = json_loadb((const char *)buf, (size_t)m, JSON_REJECT_DUPLICATES, &e);
	free(buf);
	if (j && !json_is_object(j)) {
		json_decref(j);
		j = NULL;
	}
	return j;
}

/* A string member into dst (capacity JWT_STR_MAX or given). 0 absent, 1 read, -1 bad. */
static int get_str(const json_t *o, const char *name, char *dst, size_t cap)
{
	const json_t *v = json_object_get(o, name);
	size_t n;

	if (!v)
		return 0;
	if (!json_is_string(v) || (n = json_string_length(v)) >= cap || n == 0)
		return -1;
	memcpy(dst, json_string_value(v), n + 1);
	return 1;
}

/* NumericDate: an integer or a real (truncated). 0 absent, 1 read, -1 bad. */
static int get_time(const json_t *o, const char *name, int64_t *out)
{
	const json_t *v = json_object_get(o, name);

	if (!v)
		return 0;
	if (json_is_integer(v)) {
		*out = (int64_t)json_integer_value(v);
		return 1;
	}
	if (json_is_real(v)) {
		double d = json_real_value(v);
		if (d < -9.2e18 || d > 9.2e18)
			return -1;
		*out = (int64_t)d;
		return 1;
	}
	return -1;
}

static int read_claims(struct jwt_parsed *p)
{
	const json_t *aud = json_object_get(p->claims, "aud");

	if (get_str(p->claims, "iss", p->iss, sizeof(p->iss)) < 0 ||
	    get_str(p->claims, "sub", p->sub, sizeof(p->sub)) < 0 ||
	    get_str(p->claims, "jti", p->jti, sizeof(p->jti)) < 0 ||
	    (p->has_exp = get_time(p->claims, "exp", &p->exp)) < 0 ||
	    (p->has_nbf = get_time(p->claims, "nbf", &p->nbf)) < 0 ||
	    (p->has_iat = get_time(p->claims, "iat", &p->iat)) < 0)
		return -1;
	if (aud && json_is_string(aud)) {
		if (get_str(p->claims, "aud", p->aud[0], sizeof(p->aud[0])) < 0)
			return -1;
		p->naud = 1;
	} else if (aud && json_is_array(aud)) {
		size_t i;
		const json_t *v;

		if (json_array_size(aud) > JWT_AUD_MAX)
			return -1;
		json_array_foreach(aud, i, v) {
			size_t n;
			if (!json_is_string(v) || (n = json_string_length(v)) >= JWT_STR_MAX)
				return -1;
			memcpy(p->aud[p->naud++], json_string_value(v), n + 1);
		}
	} else if (aud) {
		return -1;
	}
	return 0;
}

int jwt_parse(const char *tok, size_t len, struct jwt_parsed *out)
{
	const char *d1, *d2;
	json_t *hdr;
	const json_t *alg;
	long sl;
	int rc;

	memset(out, 0, sizeof(*out));
	out->alg = -1;
	if (len > JWT_TOKEN_MAX)
		return JWT_E_TOO_LARGE;
	if (!jwt_looks_like(tok, len))
		return JWT_E_MALFORMED;
	d1 = memchr(tok, '.', len);
	d2 = memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - tok));
	if (d1 == tok || d2 == d1 + 1)
		return JWT_E_MALFORMED;
	sl = jwt_b64url_decode(d2 + 1, len - (size_t)(d2 + 1 - tok), out->sig, sizeof(out->sig));
	if (sl < 0)
		return JWT_E_MALFORMED;
	out->sig_len = (size_t)sl;
	if (!(hdr = decode_object(tok, (size_t)(d1 - tok))))
		return JWT_E_MALFORMED;
	alg = json_object_get(hdr, "alg");
	rc = JWT_E_MALFORMED;
	if (!json_is_string(alg) || json_string_length(alg) >= sizeof(out->alg_name) ||
	    get_str(hdr, "kid", out->kid, sizeof(out->kid)) < 0)
		goto out_hdr;
	memcpy(out->alg_name, json_string_value(alg), json_string_length(alg) + 1);
	out->alg = jwt_alg_parse(out->alg_name, json_string_length(alg));
	if (json_object_get(hdr, "crit")) {
		rc = JWT_E_CRIT;
		goto out_hdr;
	}
	if (!(out->claims = decode_object(d1 + 1, (size_t)(d2 - d1 - 1))))
		goto out_hdr;
	if (read_claims(out) < 0) {
		json_decref(out->claims);
		out->claims = NULL;
		goto out_hdr;
	}
	out->signing_input = tok;
	out->signing_len = (size_t)(d2 - tok);
	rc = JWT_OK;
out_hdr:
	json_decref(hdr);
	return rc;
}

void jwt_parsed_free(struct jwt_parsed *p)
{
	json_decref(p->claims);
	p->claims = NULL;
}

/* ---- signatures --------------------------------------------------------------------- */

static int verify_hmac(const struct jwt_parsed *p, const struct jwt_key *k)
{
	const EVP_MD *md = alg_md(p->alg);
	uint8_t mac[EVP_MAX_MD_SIZE];
	unsigned mlen = 0;

	/* RFC 7518 3.2: a key at least as long as the hash output. */
	if (k->secret_len < (size_t)EVP_MD_get_size(md))
		return JWT_E_NO_KEY;
	if (!HMAC(md, k->secret, (int)k->secret_len, (const unsigned char *)p->signing_input,
		  p->signing_len, mac, &mlen))
		return JWT_E_SIGNATURE;
	if (mlen != p->sig_len || CRYPTO_memcmp(mac, p->sig, mlen) != 0)
		return JWT_E_SIGNATURE;
	return JWT_OK;
}

static int digest_verify(const struct jwt_parsed *p, EVP_PKEY *pkey, const EVP_MD *md, int pss,
			 const uint8_t *sig, size_t siglen)
{
	EVP_MD_CTX *mctx = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;
	int ok = 0;

	if (!mctx)
		return JWT_E_SIGNATURE;
	if (EVP_DigestVerifyInit(mctx, &pctx, md, NULL, pkey) == 1 &&
	    (!pss || (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1 &&
		      EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) == 1)))
		ok = EVP_DigestVerify(mctx, sig, siglen, (const unsigned char *)p->signing_input,
				      p->signing_len) == 1;
	EVP_MD_CTX_free(mctx);
	ERR_clear_error();
	return ok ? JWT_OK : JWT_E_SIGNATURE;
}

/* JWS ECDSA signatures are R || S (fixed width); OpenSSL wants DER. */
static int verify_ecdsa(const struct jwt_parsed *p, const struct jwt_key *k)
{
	size_t w = p->alg == JWT_ES256 ? 32 : 48;
	ECDSA_SIG *s;
	BIGNUM *r, *ss;
	unsigned char *der = NULL;
	int dl, rc;

	if (k->curve_bits != (int)w * 8)
		return JWT_E_NO_KEY;
	if (p->sig_len != 2 * w)
		return JWT_E_SIGNATURE;
	s = ECDSA_SIG_new();
	r = BN_bin2bn(p->sig, (int)w, NULL);
	ss = BN_bin2bn(p->sig + w, (int)w, NULL);
	if (!s || !r || !ss || ECDSA_SIG_set0(s, r, ss) != 1) {
		BN_free(r);
		BN_free(ss);
		ECDSA_SIG_free(s);
		return JWT_E_SIGNATURE;
	}
	dl = i2d_ECDSA_SIG(s, &der);
	ECDSA_SIG_free(s);
	if (dl <= 0)
		return JWT_E_SIGNATURE;
	rc = digest_verify(p, k->pkey, alg_md(p->alg), 0, der, (size_t)dl);
	OPENSSL_free(der);
	return rc;
}

int jwt_verify_sig(const struct jwt_parsed *p, const struct jwt_key *k, unsigned alg_mask)
{
	if (p->alg < 0 || !(alg_mask & (1u << p->alg)))
		return JWT_E_ALG;
	/* The key's family decides, never the token: an RSA key is not an HMAC secret. */
	if (alg_kty(p->alg) != k->kty || (k->alg >= 0 && k->alg != p->alg))
		return JWT_E_NO_KEY;
	switch (k->kty) {
	case JWT_KTY_OCT:
		return verify_hmac(p, k);
	case JWT_KTY_RSA:
		return digest_verify(p, k->pkey, alg_md(p->alg), p->alg == JWT_PS256, p->sig, p->sig_len);
	case JWT_KTY_EC:
		return verify_ecdsa(p, k);
	case JWT_KTY_OKP:
		return digest_verify(p, k->pkey, NULL, 0, p->sig, p->sig_len);
	}
	return JWT_E_NO_KEY;
}

int jwt_select_key(const struct jwt_parsed *p, const struct jwt_key *keys, size_t n)
{
	int found = JWT_E_NO_KEY, count = 0;

	if (p->alg < 0)
		return JWT_E_NO_KEY;
	for (size_t i = 0; i < n; i++) {
		if (p->kid[0]) {
			if (strcmp(keys[i].kid, p->kid) == 0)
				return (int)i;
			continue;
		}
		if (keys[i].kty == alg_kty(p->alg) && (keys[i].alg < 0 || keys[i].alg == p->alg)) {
			found = (int)i;
			count++;
		}
	}
	/* Without a kid, only an unambiguous key is used (we never try keys in turn). */
	return count == 1 ? found : JWT_E_NO_KEY;
}

int jwt_check_claims(const struct jwt_parsed *p, const struct jwt_rules *r, int64_t now)
{
	if (!r->iss || strcmp(p->iss, r->iss) != 0)
		return JWT_E_ISSUER;
	if (r->audience && r->audience[0]) {
		int ok = 0;
		for (int i = 0; i < p->naud && !ok; i++)
			ok = strcmp(p->aud[i], r->audience) == 0;
		if (!ok)
			return JWT_E_AUDIENCE;
	}
	if (!p->has_exp && r->require_exp)
		return JWT_E_MISSING_EXP;
	if (p->has_exp && now >= p->exp + r->leeway)
		return JWT_E_EXPIRED;
	if (p->has_nbf && now + r->leeway < p->nbf)
		return JWT_E_NOT_YET_VALID;
	if (p->has_iat && now + r->leeway < p->iat)
		return JWT_E_NOT_YET_VALID;
	return JWT_OK;
}

/* ---- keys ------------------------------------------------------------------------------ */

void jwt_key_free(struct jwt_key *k)
{
	EVP_PKEY_free(k->pkey);
	if (k->secret) {
		OPENSSL_cleanse(k->secret, k->secret_len);
		free(k->secret);
	}
	memset(k, 0, sizeof(*k));
}

static int fail(char *err, size_t errlen, const char *msg)
{
	if (errlen)
		snprintf(err, errlen, "%s", msg);
	return -1;
}

/* A base64url member, decoded into a fresh buffer. */
static uint8_t *b64_member(const json_t *o, const char *name, size_t *n)
{
	const json_t *v = json_object_get(o, name);
	size_t len;
	uint8_t *buf;
	long m;

	if (!json_is_string(v) || (len = json_string_length(v)) == 0 || len > 2048)
		return NULL;
	if (!(buf = malloc(len)))
		return NULL;
	m = jwt_b64url_decode(json_string_value(v), len, buf, len);
	if (m <= 0) {
		free(buf);
		return NULL;
	}
	*n = (size_t)m;
	return buf;
}

static EVP_PKEY *from_params(const char *type, OSSL_PARAM *params)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
	EVP_PKEY *pkey = NULL;

	if (ctx && EVP_PKEY_fromdata_init(ctx) == 1)
		EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params);
	EVP_PKEY_CTX_free(ctx);
	return pkey;
}

static int check_public(EVP_PKEY *pkey)
{
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
	int ok = c && EVP_PKEY_public_check(c) == 1;

	EVP_PKEY_CTX_free(c);
	return ok;
}

static int rsa_from_jwk(const json_t *jwk, struct jwt_key *out, char *err, size_t errlen)
{
	size_t nl = 0, el = 0;
	uint8_t *n = b64_member(jwk, "n", &nl), *e = b64_member(jwk, "e", &el);
	BIGNUM *bn = n ? BN_bin2bn(n, (int)nl, NULL) : NULL, *be = e ? BN_bin2bn(e, (int)el, NULL) : NULL;
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	OSSL_PARAM *params = NULL;

	if (bn && be && bld && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) == 1 &&
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be) == 1)
		params = OSSL_PARAM_BLD_to_param(bld);
	if (params)
		out->pkey = from_params("RSA", params);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	BN_free(bn);
	BN_free(be);
	free(n);
	free(e);
	if (!out->pkey)
		return fail(err, errlen, "RSA key: bad or missing n/e");
	if (EVP_PKEY_get_bits(out->pkey) < RSA_MIN_BITS)
		return fail(err, errlen, "RSA key shorter than 2048 bits");
	return 0;
}

static int ec_from_jwk(const json_t *jwk, struct jwt_key *out, char *err, size_t errlen)
{
	const char *crv = json_string_value(json_object_get(jwk, "crv"));
	const char *group;
	size_t w, xl = 0, yl = 0;
	uint8_t *x, *y, pt[1 + 2 * 48];
	OSSL_PARAM params[3];

	if (crv && strcmp(crv, "P-256") == 0)
		group = "prime256v1", w = 32;
	else if (crv && strcmp(crv, "P-384") == 0)
		group = "secp384r1", w = 48;
	else
		return fail(err, errlen, "EC key: crv must be P-256 or P-384");
	x = b64_member(jwk, "x", &xl);
	y = b64_member(jwk, "y", &yl);
	if (x && y && xl == w && yl == w) {
		pt[0] = 0x04; /* uncompressed point */
		memcpy(pt + 1, x, w);
		memcpy(pt + 1 + w, y, w);
		params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)group, 0);
		params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, pt, 1 + 2 * w);
		params[2] = OSSL_PARAM_construct_end();
		out->pkey = from_params("EC", params);
	}
	free(x);
	free(y);
	if (!out->pkey || !check_public(out->pkey))
		return fail(err, errlen, "EC key: bad x/y (not a point on the curve)");
	out->curve_bits = (int)w * 8;
	return 0;
}

static int okp_from_jwk(const json_t *jwk, struct jwt_key *out, char *err, size_t errlen)
{
	const char *crv = json_string_value(json_object_get(jwk, "crv"));
	size_t xl = 0;
	uint8_t *x;

	if (!crv || strcmp(crv, "Ed25519") != 0)
		return fail(err, errlen, "OKP key: crv must be Ed25519");
	x = b64_member(jwk, "x", &xl);
	if (x && xl == 32)
		out->pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, x, xl);
	free(x);
	return out->pkey ? 0 : fail(err, errlen, "OKP key: bad x");
}

int jwk_parse(const json_t *jwk, struct jwt_key *out, char *err, size_t errlen)
{
	static const char *const private_members[] = { "d", "p", "q", "dp", "dq", "qi", "oth" };
	const char *kty, *use, *alg;
	int rc;

	memset(out, 0, sizeof(*out));
	out->alg = -1;
	if (!json_is_object(jwk))
		return fail(err, errlen, "a JWK must be a JSON object");
	kty = json_string_value(json_object_get(jwk, "kty"));
	use = json_string_value(json_object_get(jwk, "use"));
	alg = json_string_value(json_object_get(jwk, "alg"));
	if (get_str(jwk, "kid", out->kid, sizeof(out->kid)) < 0)
		return fail(err, errlen, "kid must be a string of 1 to 127 characters");
	if (json_object_get(jwk, "use") && (!use || strcmp(use, "sig") != 0))
		return fail(err, errlen, "use must be \"sig\"");
	if (alg && (out->alg = jwt_alg_parse(alg, strlen(alg))) < 0)
		return fail(err, errlen, "unsupported alg");
	if (!kty)
		return fail(err, errlen, "kty missing");
	if (strcmp(kty, "oct") == 0) {
		out->kty = JWT_KTY_OCT;
		if (!(out->secret = b64_member(jwk, "k", &out->secret_len)))
			return fail(err, errlen, "oct key: bad or missing k");
		if (out->secret_len < 32) {
			jwt_key_free(out);
			return fail(err, errlen, "oct key shorter than 32 bytes");
		}
		rc = 0;
	} else {
		for (size_t i = 0; i < sizeof(private_members) / sizeof(private_members[0]); i++)
			if (json_object_get(jwk, private_members[i]))
				return fail(err, errlen, "a private key was given: publish only the public part");
		if (strcmp(kty, "RSA") == 0)
			out->kty = JWT_KTY_RSA, rc = rsa_from_jwk(jwk, out, err, errlen);
		else if (strcmp(kty, "EC") == 0)
			out->kty = JWT_KTY_EC, rc = ec_from_jwk(jwk, out, err, errlen);
		else if (strcmp(kty, "OKP") == 0)
			out->kty = JWT_KTY_OKP, rc = okp_from_jwk(jwk, out, err, errlen);
		else
			return fail(err, errlen, "kty must be oct, RSA, EC or OKP");
	}
	if (rc == 0 && out->alg >= 0 && alg_kty(out->alg) != out->kty)
		rc = fail(err, errlen, "alg does not match kty");
	if (rc < 0)
		jwt_key_free(out);
	ERR_clear_error();
	return rc;
}

static int from_pem(const char *text, size_t len, struct jwt_key *out, char *err, size_t errlen)
{
	BIO *bio = BIO_new_mem_buf(text, (int)len);
	EVP_PKEY *pkey = bio ? PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL) : NULL;

	BIO_free(bio);
	ERR_clear_error();
	memset(out, 0, sizeof(*out));
	out->alg = -1;
	if (!pkey)
		return fail(err, errlen, "unreadable PEM public key");
	out->pkey = pkey;
	switch (EVP_PKEY_get_base_id(pkey)) {
	case EVP_PKEY_RSA:
		out->kty = JWT_KTY_RSA;
		if (EVP_PKEY_get_bits(pkey) >= RSA_MIN_BITS)
			return 0;
		jwt_key_free(out);
		return fail(err, errlen, "RSA key shorter than 2048 bits");
	case EVP_PKEY_EC:
		out->kty = JWT_KTY_EC;
		out->curve_bits = EVP_PKEY_get_bits(pkey);
		if (out->curve_bits == 256 || out->curve_bits == 384)
			return 0;
		break;
	case EVP_PKEY_ED25519:
		out->kty = JWT_KTY_OKP;
		return 0;
	}
	jwt_key_free(out);
	return fail(err, errlen, "PEM key type not supported (RSA, EC P-256/P-384, Ed25519)");
}

int jwk_parse_text(const char *text, size_t len, const char *kid, struct jwt_key *out,
		   char *err, size_t errlen)
{
	int rc;

	if (len >= 10 && memcmp(text, "-----BEGIN", 10) == 0) {
		rc = from_pem(text, len, out, err, errlen);
	} else {
		json_error_t e;
		json_t *j = json_loadb(text, len, JSON_REJECT_DUPLICATES, &e);

		if (!j)
			return fail(err, errlen, "neither a JWK (JSON) nor a PEM public key");
		rc = jwk_parse(j, out, err, errlen);
		json_decref(j);
	}
	if (rc == 0 && kid && kid[0])
		snprintf(out->kid, sizeof(out->kid), "%s", kid);
	return rc;
}
