/*
 * auth/apikey: API key credentials. Keys look like "jr-" + 64 hex digits; the catalogue
 * stores only their SHA-256 and an 11-character prefix (docs/design.md, "API keys").
 */
#ifndef JR_AUTH_APIKEY_H
#define JR_AUTH_APIKEY_H

#include <stddef.h>
#include <stdint.h>

#define AUTH_KEY_PREFIX "jr-"
#define AUTH_KEY_LEN 67 /* jr- and 64 hex digits */
/* Longer header values are refused unread. */
#define AUTH_CREDENTIAL_MAX 8192

/* Picks the credential from an "Authorization: Bearer <token>" value (scheme matched
 * case-insensitively, surrounding blanks ignored) or else from an x-api-key value.
 * Returns 1 with tok and len set, 0 when neither carries one, -1 when the Authorization
 * header uses another scheme or is oversized. */
int auth_credential(const char *authorization, size_t alen, const char *api_key, size_t klen,
		    const char **tok, size_t *len);

/* True when the token has the shape of one of our keys (cheap check before hashing). */
int auth_key_wellformed(const char *tok, size_t len);

/* SHA-256 of the key bytes. */
void auth_key_hash(const char *tok, size_t len, uint8_t out[32]);

#endif /* JR_AUTH_APIKEY_H */
