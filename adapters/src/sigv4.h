/*
 * sigv4: AWS Signature Version 4 for one HTTP request (Bedrock runtime calls).
 *
 * The caller gives the request as it will be sent (method, path already URI-encoded
 * once, query, the headers to sign, the body) and the credential; sigv4_sign writes
 * the Authorization header value. The canonical URI encodes each path segment once
 * more, as AWS requires for every service but S3.
 */
#ifndef JR_AD_SIGV4_H
#define JR_AD_SIGV4_H

#include <stddef.h>
#include <time.h>

#define SIGV4_MAX_HEADERS 8
#define SIGV4_AUTH_MAX 512

struct sigv4_header {
	const char *name;  /* lower case */
	const char *value;
};

struct sigv4_request {
	const char *method;
	const char *path;     /* as sent, e.g. "/model/anthropic.claude-v2%3A1/converse" */
	const char *query;    /* canonical query string, "" when none */
	const struct sigv4_header *headers; /* to sign; must include host and x-amz-date */
	size_t nheaders;
	const void *body;
	size_t body_len;
	const char *region, *service;
	const char *access_key, *secret_key;
	const char *amz_date; /* "YYYYMMDDTHHMMSSZ" (the x-amz-date header's value) */
};

/* Formats t as an x-amz-date value (16 characters + NUL). */
void sigv4_amz_date(time_t t, char out[17]);

/* Writes the Authorization value into out. 0, or -1 when something does not fit or a
 * field is missing. */
int sigv4_sign(const struct sigv4_request *r, char *out, size_t cap);

#endif
