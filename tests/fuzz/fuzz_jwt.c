/*
 * Fuzz target: JWT parsing, signature checks and JWK import on arbitrary bytes.
 * Properties besides memory safety: a fixed HMAC key never verifies a token unless its
 * tag is right (the fuzzer cannot forge it, so JWT_OK from jwt_verify_sig is a bug), the
 * registered claims read always fit their buffers, and base64url decoding re-encodes to
 * the same text (one spelling per byte string). The same bytes also go through the OIDC
 * discovery and JWKS parsers (every key they return is freed; the count stays bounded).
 */
#include "jwt/jwt.h"
#include "oidc/oidc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char OCT_JWK[] =
	"{\"kty\":\"oct\",\"kid\":\"k\",\"k\":\"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY\"}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct jwt_key key;
	static int have_key;
	struct jwt_parsed p;
	uint8_t dec[4096];
	char enc[8192];
	long n;

	if (!have_key)
		have_key = jwk_parse_text(OCT_JWK, strlen(OCT_JWK), NULL, &key, NULL, 0) == 0;
	if (jwt_parse((const char *)data, size, &p) == JWT_OK) {
		if (strlen(p.iss) >= JWT_STR_MAX || strlen(p.sub) >= JWT_STR_MAX || p.naud > JWT_AUD_MAX ||
		    p.signing_len >= size)
			__builtin_trap();
		if (have_key && jwt_verify_sig(&p, &key, ~0u) == JWT_OK)
			__builtin_trap();
		jwt_parsed_free(&p);
	}
	n = jwt_b64url_decode((const char *)data, size, dec, sizeof(dec));
	if (n >= 0) {
		size_t m = jwt_b64url_encode(dec, (size_t)n, enc, sizeof(enc));
		if (m != size || memcmp(enc, data, size) != 0)
			__builtin_trap();
	}
	if (size < 4096) {
		struct jwt_key k, ks[4];
		char uri[64], err[128];
		int nk = oidc_parse_jwks((const char *)data, size, ks, 4);

		if (nk > 4)
			__builtin_trap();
		for (int i = 0; i < nk; i++)
			jwt_key_free(&ks[i]);
		oidc_parse_discovery((const char *)data, size, "https://i", uri, sizeof(uri), err, sizeof(err));
		if (jwk_parse_text((const char *)data, size, NULL, &k, NULL, 0) == 0)
			jwt_key_free(&k);
	}
	return 0;
}
