/*
 * jwt: compact JWS tokens (RFC 7515/7519) and JSON Web Keys (RFC 7517/7518/8037),
 * verified with OpenSSL 3's EVP interface.
 *
 * Pure: bytes in, verdict out; no globals, no clock (the caller passes `now`).
 *
 * The rules that make a verifier safe, and where they live:
 * - The algorithm is never taken from the token alone: jwt_verify() is given the set of
 *   algorithms the issuer allows (pinned per issuer in SQL) and the token's `alg` must be
 *   in it. `none` has no enum value at all, so it can never be allowed.
 * - A key is bound to its family (JWK `kty`): an RSA, EC or OKP key verifies only its own
 *   algorithms, and only an `oct` key (a shared secret) verifies HS*. So an RSA public key
 *   is never used as an HMAC secret, whatever the token says.
 * - HMAC tags are compared with CRYPTO_memcmp (constant time).
 * - base64url is strict: no padding, no characters outside the alphabet, no non-zero
 *   trailing bits (one token has exactly one encoding). Header and payload must be JSON
 *   objects without duplicate members. A header with `crit` is refused (we implement no
 *   extension).
 * - Sizes are bounded: JWT_TOKEN_MAX for the whole token.
 */
#ifndef JR_JWT_H
#define JR_JWT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/evp.h>

#define JWT_TOKEN_MAX 8192 /* longer tokens are refused unread (oversized) */
#define JWT_KID_MAX 128
#define JWT_STR_MAX 256    /* iss, sub, jti, aud entries: longer values are refused */
#define JWT_AUD_MAX 8      /* audiences read from an `aud` array; more are refused */

enum jwt_alg {
	JWT_HS256 = 0,
	JWT_HS384,
	JWT_HS512,
	JWT_RS256,
	JWT_RS384,
	JWT_RS512,
	JWT_PS256,
	JWT_ES256,
	JWT_ES384,
	JWT_EDDSA,
	JWT_ALG__COUNT
};

/* "HS256" ... "EdDSA"; -1 for anything else (including "none"). */
int jwt_alg_parse(const char *s, size_t len);
const char *jwt_alg_name(enum jwt_alg a);
/* A comma-separated list ("RS256,ES256") to a bit mask (1 << alg). -1 when a name is
 * unknown or the list is empty. */
int jwt_alg_mask(const char *list);

enum jwt_kty { JWT_KTY_OCT = 1, JWT_KTY_RSA, JWT_KTY_EC, JWT_KTY_OKP };

/* One verification key. pkey is NULL for an oct key (secret holds the bytes). */
struct jwt_key {
	enum jwt_kty kty;
	char kid[JWT_KID_MAX]; /* "" when the key has none */
	int alg;               /* the JWK's own `alg`, or -1: it then restricts the key */
	int curve_bits;        /* EC: 256 or 384; 0 otherwise */
	EVP_PKEY *pkey;
	uint8_t *secret;
	size_t secret_len;
};

/* Parses one JWK object. Public keys only: a private member ("d", "p", ...) is refused
 * so private keys are not kept in the gateway by mistake, except for oct keys (whose
 * "k" is the secret). `use` other than "sig" is refused. Returns 0, or -1 with a reason
 * in err. */
int jwk_parse(const json_t *jwk, struct jwt_key *out, char *err, size_t errlen);
/* Parses a JWK from text (a JSON object) or a PEM public key ("-----BEGIN PUBLIC KEY").
 * kid, when not NULL, overrides/sets the key id. */
int jwk_parse_text(const char *text, size_t len, const char *kid, struct jwt_key *out,
		   char *err, size_t errlen);
void jwt_key_free(struct jwt_key *k);

/* A token split and decoded; claims is owned (json_decref by jwt_parsed_free). */
struct jwt_parsed {
	int alg;              /* enum jwt_alg, or -1 when the token's alg is not supported */
	char alg_name[16];
	char kid[JWT_KID_MAX];
	json_t *claims;
	const char *signing_input; /* points into the token: header.payload */
	size_t signing_len;
	uint8_t sig[1024];
	size_t sig_len;
	/* Registered claims, read by jwt_parse. has_* is 0 when the claim is absent. */
	char iss[JWT_STR_MAX], sub[JWT_STR_MAX], jti[JWT_STR_MAX];
	char aud[JWT_AUD_MAX][JWT_STR_MAX];
	int naud;
	int has_exp, has_nbf, has_iat;
	int64_t exp, nbf, iat;
};

enum jwt_error {
	JWT_OK = 0,
	JWT_E_MALFORMED = -1,  /* not a compact JWS, bad base64url or JSON, bad claim types */
	JWT_E_TOO_LARGE = -2,
	JWT_E_ALG = -3,        /* alg unsupported, `none`, or not allowed for this issuer */
	JWT_E_NO_KEY = -4,     /* no key with this kid (or no usable key) */
	JWT_E_SIGNATURE = -5,
	JWT_E_EXPIRED = -6,
	JWT_E_NOT_YET_VALID = -7, /* nbf in the future, or iat in the future */
	JWT_E_ISSUER = -8,
	JWT_E_AUDIENCE = -9,
	JWT_E_CRIT = -10,      /* a critical header extension we do not implement */
	JWT_E_MISSING_EXP = -11,
};

const char *jwt_error_name(int e);

/* Splits and decodes tok. On success out holds the header fields and the claims (free
 * with jwt_parsed_free); on error nothing needs freeing. Signature not checked. */
int jwt_parse(const char *tok, size_t len, struct jwt_parsed *out);
void jwt_parsed_free(struct jwt_parsed *p);

/* True when tok looks like a compact JWS (three base64url parts): the cheap test that
 * tells a JWT from an opaque token. */
int jwt_looks_like(const char *tok, size_t len);

/* Verifies the signature with the one key given: the token's alg must be in alg_mask,
 * the key's family must match it (and the key's own alg, if any). */
int jwt_verify_sig(const struct jwt_parsed *p, const struct jwt_key *k, unsigned alg_mask);

/* Picks the key: by kid when the token has one (JWT_E_NO_KEY if none has it), else the
 * only key that fits the token's alg family. Returns its index or JWT_E_NO_KEY. */
int jwt_select_key(const struct jwt_parsed *p, const struct jwt_key *keys, size_t n);

/* Time and audience rules for one issuer. */
struct jwt_rules {
	const char *iss;      /* required exact match */
	const char *audience; /* NULL or "": not checked; else one of aud must equal it */
	int64_t leeway;       /* seconds of clock skew tolerated on exp, nbf, iat */
	int require_exp;
};

int jwt_check_claims(const struct jwt_parsed *p, const struct jwt_rules *r, int64_t now);

/* Strict base64url decoding (no padding, canonical). Returns the decoded length or -1. */
long jwt_b64url_decode(const char *in, size_t len, uint8_t *out, size_t cap);
/* Encoding without padding (tests, tools). Returns the length written (NUL-terminated). */
size_t jwt_b64url_encode(const uint8_t *in, size_t len, char *out, size_t cap);

#endif /* JR_JWT_H */
