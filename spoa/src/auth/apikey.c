#include "auth/apikey.h"

#include <openssl/sha.h>
#include <strings.h>

static void trim(const char **p, size_t *len)
{
	while (*len && (**p == ' ' || **p == '\t'))
		(*p)++, (*len)--;
	while (*len && ((*p)[*len - 1] == ' ' || (*p)[*len - 1] == '\t'))
		(*len)--;
}

int auth_credential(const char *authorization, size_t alen, const char *api_key, size_t klen,
		    const char **tok, size_t *len)
{
	if (authorization) {
		if (alen > AUTH_CREDENTIAL_MAX)
			return -1;
		trim(&authorization, &alen);
		if (alen == 0)
			return api_key ? auth_credential(NULL, 0, api_key, klen, tok, len) : 0;
		if (alen < 7 || strncasecmp(authorization, "bearer ", 7) != 0)
			return -1;
		authorization += 7;
		alen -= 7;
		trim(&authorization, &alen);
		*tok = authorization;
		*len = alen;
		return alen > 0;
	}
	if (api_key) {
		if (klen > AUTH_CREDENTIAL_MAX)
			return -1;
		trim(&api_key, &klen);
		*tok = api_key;
		*len = klen;
		return klen > 0;
	}
	return 0;
}

int auth_key_wellformed(const char *tok, size_t len)
{
	if (len != AUTH_KEY_LEN || tok[0] != 'j' || tok[1] != 'r' || tok[2] != '-')
		return 0;
	for (size_t i = 3; i < len; i++) {
		char c = tok[i];
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return 0;
	}
	return 1;
}

void auth_key_hash(const char *tok, size_t len, uint8_t out[32])
{
	SHA256((const unsigned char *)tok, len, out);
}
