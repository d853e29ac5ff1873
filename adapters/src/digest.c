/* digest: see digest.h. */
#include "digest.h"

#include <openssl/evp.h>
#include <string.h>

void dg_hex(const unsigned char *p, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * n] = '\0';
}

void dg_sha256_hex(const void *p, size_t n, char out[DG_SHA256_HEX])
{
	unsigned char md[DG_SHA256_LEN];
	unsigned int len = 0;

	EVP_Digest(p, n, md, &len, EVP_sha256(), NULL);
	dg_hex(md, DG_SHA256_LEN, out);
}

int dg_hmac_sha256(const void *key, size_t klen, const char *data, unsigned char out[DG_SHA256_LEN])
{
	size_t olen = 0;
	int ok = EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, key, klen, (const unsigned char *)data,
			   strlen(data), out, DG_SHA256_LEN, &olen) != NULL;

	return ok && olen == DG_SHA256_LEN ? 0 : -1;
}
