/*
 * api: the administration REST API (docs/admin-api.md), served on its own thread with
 * its own event loop and its own PostgreSQL connection, so that neither a slow query nor
 * a burst of administration ever delays a decision.
 *
 *   HTTP request -> route (route.h) -> identity: the model API's own stages
 *   (pipeline/pipeline.h, pl_admin_stages: API keys, JWT, OIDC, introspection, the
 *   address lock-out, the security audit) -> the caller's roles (pl_rbac_actions)
 *   -> one call of jairouter.admin_api() (sql/011_admin_api.sql: authorisation by
 *   tenant, pagination, ETags, idempotency, the change log with the caller as actor)
 *   -> the answer, or an OpenAI-style error.
 *
 * Bounds: a request body of at most API_BODY_MAX bytes (413), headers of 16 KiB, at most
 * API_CALLS_MAX requests in progress and API_QUEUE_MAX waiting for the database (503
 * `admin_busy` with retry-after beyond them), one statement in flight, a statement that
 * takes more than 10 seconds drops the connection (503 `database_unavailable`).
 */
#ifndef JR_API_H
#define JR_API_H

#include <stddef.h>

#define API_BODY_MAX 65536
#define API_CALLS_MAX 256
#define API_QUEUE_MAX 64

struct api;

/* Binds addr ("host:port") and starts the thread; database is the libpq connection
 * string. NULL with a message in err. */
struct api *api_start(const char *addr, const char *database, char *err, size_t errlen);
/* Answers what is still waiting with 503, stops the thread and frees everything. */
void api_stop(struct api *a);

#endif /* JR_API_H */
