/*
 * tc3: Tencent Cloud's API signature v3 (TC3-HMAC-SHA256) for one POST request to "/"
 * with the headers content-type and host signed (Hunyuan's native API). Pure; checked
 * against the published example of Tencent Cloud's signature documentation.
 *
 *   CanonicalRequest = "POST\n/\n\ncontent-type:CT\nhost:HOST\n\ncontent-type;host\n"
 *                      + hex(sha256(payload))
 *   StringToSign     = "TC3-HMAC-SHA256\n" + timestamp + "\n" + date + "/" + service
 *                      + "/tc3_request\n" + hex(sha256(CanonicalRequest))
 *   key = HMAC(HMAC(HMAC("TC3" + SecretKey, date), service), "tc3_request")
 */
#ifndef JR_AD_TC3_H
#define JR_AD_TC3_H

#include <stddef.h>
#include <time.h>

#define TC3_AUTH_MAX 512

struct tc3_request {
	const char *secret_id, *secret_key;
	const char *service;       /* "hunyuan" */
	const char *host;          /* the Host header's value */
	const char *content_type;  /* the Content-Type header's value */
	const void *payload;
	size_t payload_len;
	time_t timestamp;          /* X-TC-Timestamp; its UTC date is the scope's */
};

/* Writes the Authorization value into out. 0, or -1 when it does not fit or a field is
 * missing. */
int tc3_sign(const struct tc3_request *r, char *out, size_t cap);

#endif
