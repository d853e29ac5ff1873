/*
 * driver: libcurl's multi interface driven by a libevent loop (its socket and timer
 * callbacks), the adapter's upstream transfers: the jobs' provider requests and the
 * access-token fetches (tokens.c). A transfer's CURLOPT_PRIVATE points at its struct
 * drv_xfer, whose callback the driver calls when it ends; the driver never touches what
 * embeds it.
 */
#ifndef JR_AD_DRIVER_H
#define JR_AD_DRIVER_H

#include <curl/curl.h>

struct event_base;
struct drv;

/* What a transfer's CURLOPT_PRIVATE points at, embedded in its owner: done is called
 * once when the transfer ends (rc: its result). */
struct drv_xfer {
	void (*done)(struct drv_xfer *x, CURLcode rc);
};

/* NULL when libcurl's multi handle or the timer cannot be made. */
struct drv *drv_new(struct event_base *base);
void drv_free(struct drv *d);

/* Starts or cancels a transfer. drv_add: 0, or -1. */
int drv_add(struct drv *d, CURL *easy);
void drv_remove(struct drv *d, CURL *easy);

/* A POST transfer as the adapter sends it upstream (a provider request, a token fetch). */
struct drv_post {
	const char *url;
	struct curl_slist *headers;
	const char *body;
	size_t body_len;
	curl_write_callback write;  /* gets the answer's bytes, with write_arg */
	void *write_arg;
	struct drv_xfer *xfer;      /* CURLOPT_PRIVATE */
	char *err;                  /* CURL_ERROR_SIZE bytes: libcurl's reason */
	long connect_timeout_ms;
};

/* Sets p on easy, with what every upstream transfer has besides: no signals, http and
 * https only, no redirects (a credential is never sent on to a Location). */
void drv_post_options(CURL *easy, const struct drv_post *p);

#endif
