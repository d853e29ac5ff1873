/*
 * digest: the SHA-256 pieces the request signers share (AWS Signature Version 4 in
 * sigv4, Tencent Cloud's TC3-HMAC-SHA256 in tc3): lower-case hex, a SHA-256 digest as
 * hex, and HMAC-SHA256 of a string. Pure; OpenSSL's EVP interface underneath.
 */
#ifndef JR_AD_DIGEST_H
#define JR_AD_DIGEST_H

#include <stddef.h>

#define DG_SHA256_LEN 32
#define DG_SHA256_HEX (2 * DG_SHA256_LEN + 1) /* hex digits and the NUL */

/* Writes the n bytes of p as 2n lower-case hex digits and a NUL into out. */
void dg_hex(const unsigned char *p, size_t n, char *out);
/* The SHA-256 of the n bytes of p, as hex. */
void dg_sha256_hex(const void *p, size_t n, char out[DG_SHA256_HEX]);
/* HMAC-SHA256 of the string data under the klen bytes of key. 0, or -1 when OpenSSL
 * fails (out is then undefined). */
int dg_hmac_sha256(const void *key, size_t klen, const char *data, unsigned char out[DG_SHA256_LEN]);

#endif
