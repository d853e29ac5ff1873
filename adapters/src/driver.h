/*
 * driver: libcurl's multi interface driven by a libevent loop (its socket and timer
 * callbacks), the adapter's upstream transfers. A finished transfer is handed to the
 * done callback with its CURLOPT_PRIVATE pointer; the driver never touches a job.
 */
#ifndef JR_AD_DRIVER_H
#define JR_AD_DRIVER_H

#include <curl/curl.h>

struct event_base;
struct drv;

/* A transfer ended (rc: its result); priv is its CURLOPT_PRIVATE. */
typedef void (*drv_done_fn)(void *priv, CURLcode rc);

/* NULL when libcurl's multi handle or the timer cannot be made. */
struct drv *drv_new(struct event_base *base, drv_done_fn done);
void drv_free(struct drv *d);

/* Starts or cancels a transfer. drv_add: 0, or -1. */
int drv_add(struct drv *d, CURL *easy);
void drv_remove(struct drv *d, CURL *easy);

#endif
