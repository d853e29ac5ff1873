/* sigv4: see sigv4.h. */
#include "sigv4.h"

#include "digest.h"
#include "util/pct.h"

#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sigv4_amz_date(time_t t, char out[17])
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
}

static int cmp_header(const void *a, const void *b)
{
	return strcmp(((const struct sigv4_header *)a)->name, ((const struct sigv4_header *)b)->name);
}

/* Appends to a bounded buffer; sets *bad on overflow. */
static void put(char *buf, size_t cap, size_t *used, int *bad, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
static void put(char *buf, size_t cap, size_t *used, int *bad, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (*bad)
		return;
	va_start(ap, fmt);
	n = vsnprintf(buf + *used, cap - *used, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= cap - *used)
		*bad = 1;
	else
		*used += (size_t)n;
}

/* The canonical request's SHA-256 in hex, and the signed header names. 0, or -1 when
 * something does not fit. */
static int canonical_hash(const struct sigv4_request *r, char names[256], char hash[65])
{
	struct sigv4_header hs[SIGV4_MAX_HEADERS];
	char canon[8192], path[2048], body_hash[65];
	size_t used = 0, sn = 0;
	int bad = 0;

	memcpy(hs, r->headers, r->nheaders * sizeof(hs[0]));
	qsort(hs, r->nheaders, sizeof(hs[0]), cmp_header);
	names[0] = '\0';
	if (pct_encode(r->path, strlen(r->path), PCT_UNRESERVED_SLASH, path, sizeof(path)) < 0)
		return -1;
	dg_sha256_hex(r->body ? r->body : "", r->body_len, body_hash);
	put(canon, sizeof(canon), &used, &bad, "%s\n%s\n%s\n", r->method, path, r->query ? r->query : "");
	for (size_t i = 0; i < r->nheaders; i++) {
		put(canon, sizeof(canon), &used, &bad, "%s:%s\n", hs[i].name, hs[i].value);
		put(names, 256, &sn, &bad, "%s%s", i ? ";" : "", hs[i].name);
	}
	put(canon, sizeof(canon), &used, &bad, "\n%s\n%s", names, body_hash);
	if (bad)
		return -1;
	dg_sha256_hex(canon, used, hash);
	return 0;
}

/* The signature (hex) of the string to sign, with the key derived from the secret for
 * the date, region and service. The secret and the keys are wiped. */
static int signature(const struct sigv4_request *r, const char *date, const char *sts, char sig[65])
{
	unsigned char k[32], k2[32];
	char secret[256];
	int rc;

	if (snprintf(secret, sizeof(secret), "AWS4%s", r->secret_key) >= (int)sizeof(secret)) {
		OPENSSL_cleanse(secret, sizeof(secret));
		return -1;
	}
	rc = dg_hmac_sha256(secret, strlen(secret), date, k) < 0 || dg_hmac_sha256(k, 32, r->region, k2) < 0 ||
		     dg_hmac_sha256(k2, 32, r->service, k) < 0 || dg_hmac_sha256(k, 32, "aws4_request", k2) < 0 ||
		     dg_hmac_sha256(k2, 32, sts, k) < 0
		     ? -1
		     : 0;
	OPENSSL_cleanse(secret, sizeof(secret));
	OPENSSL_cleanse(k2, sizeof(k2));
	if (rc == 0)
		dg_hex(k, 32, sig);
	OPENSSL_cleanse(k, sizeof(k));
	return rc;
}

int sigv4_sign(const struct sigv4_request *r, char *out, size_t cap)
{
	char names[256], creq_hash[65], sts[512], scope[128], date[9], sig[65];
	size_t so = 0;
	int bad = 0;

	if (!r->method || !r->path || !r->region || !r->service || !r->access_key ||
	    !r->secret_key || !r->amz_date || strlen(r->amz_date) != 16 ||
	    r->nheaders > SIGV4_MAX_HEADERS)
		return -1;
	if (canonical_hash(r, names, creq_hash) < 0)
		return -1;
	memcpy(date, r->amz_date, 8);
	date[8] = '\0';
	snprintf(scope, sizeof(scope), "%s/%s/%s/aws4_request", date, r->region, r->service);
	snprintf(sts, sizeof(sts), "AWS4-HMAC-SHA256\n%s\n%s\n%s", r->amz_date, scope, creq_hash);
	if (signature(r, date, sts, sig) < 0)
		return -1;
	put(out, cap, &so, &bad, "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s",
	    r->access_key, scope, names, sig);
	return bad ? -1 : 0;
}
