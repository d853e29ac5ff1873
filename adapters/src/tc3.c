/* tc3: see tc3.h. */
#include "tc3.h"

#include "digest.h"

#include <stdio.h>
#include <string.h>

int tc3_sign(const struct tc3_request *r, char *out, size_t cap)
{
	char date[16], payload_hash[65], creq_hash[65], creq[1024], sts[256], kdate_key[160], sig[65];
	unsigned char k1[32], k2[32], k3[32], s[32];
	struct tm tm;
	int n;

	if (!r->secret_id || !r->secret_key || !r->service || !r->host || !r->content_type ||
	    strlen(r->secret_key) + 4 > sizeof(kdate_key) || !gmtime_r(&r->timestamp, &tm))
		return -1;
	strftime(date, sizeof(date), "%Y-%m-%d", &tm);
	dg_sha256_hex(r->payload, r->payload_len, payload_hash);
	n = snprintf(creq, sizeof(creq), "POST\n/\n\ncontent-type:%s\nhost:%s\n\ncontent-type;host\n%s",
		     r->content_type, r->host, payload_hash);
	if (n < 0 || (size_t)n >= sizeof(creq))
		return -1;
	dg_sha256_hex(creq, (size_t)n, creq_hash);
	n = snprintf(sts, sizeof(sts), "TC3-HMAC-SHA256\n%lld\n%s/%s/tc3_request\n%s", (long long)r->timestamp, date,
		     r->service, creq_hash);
	if (n < 0 || (size_t)n >= sizeof(sts))
		return -1;
	snprintf(kdate_key, sizeof(kdate_key), "TC3%s", r->secret_key);
	if (dg_hmac_sha256(kdate_key, strlen(kdate_key), date, k1) < 0 || dg_hmac_sha256(k1, 32, r->service, k2) < 0 ||
	    dg_hmac_sha256(k2, 32, "tc3_request", k3) < 0 || dg_hmac_sha256(k3, 32, sts, s) < 0) {
		explicit_bzero(kdate_key, sizeof(kdate_key));
		return -1;
	}
	explicit_bzero(kdate_key, sizeof(kdate_key));
	explicit_bzero(k3, sizeof(k3));
	dg_hex(s, 32, sig);
	n = snprintf(out, cap, "TC3-HMAC-SHA256 Credential=%s/%s/%s/tc3_request, SignedHeaders=content-type;host, "
			       "Signature=%s", r->secret_id, date, r->service, sig);
	return n < 0 || (size_t)n >= cap ? -1 : 0;
}
