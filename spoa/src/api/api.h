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
 * Connections: while more than API_CONNS_MAX are open (slow or stalled clients hold
 * theirs up to the 30 s request timeout), every request is answered 503 `admin_busy`
 * and its connection closed; at API_CONNS_MAX + API_CONNS_SPARE the listener stops
 * accepting (new ones wait in the kernel's backlog) until one closes. So the API never
 * holds more than that many descriptors, which the agent's SPOP connections share.
 */
#ifndef JR_API_H
#define JR_API_H

#include <stddef.h>

#define API_BODY_MAX 65536
#define API_CALLS_MAX 256
#define API_QUEUE_MAX 64
#define API_CONNS_MAX 256
#define API_CONNS_SPARE 64
#define API_RATE_SLOTS 1024 /* callers whose request rate is tracked (direct-mapped) */

struct api;
struct evbuffer;

/* Binds addr ("host:port") and starts the thread; database is the libpq connection
 * string; rate_per_min as in api_set_rate. NULL with a message in err. */
struct api *api_start(const char *addr, const char *database, unsigned rate_per_min, char *err,
		      size_t errlen);
/* Requests per minute one caller (an API key, a token's issuer and subject) may make, as a
 * token bucket holding ten seconds' worth (at least one); beyond it 429 rate_limit_exceeded
 * with retry-after. 0: no limit. Callers that fall into the same one of API_RATE_SLOTS
 * slots take it over with a full bucket. Any thread (SIGHUP). */
void api_set_rate(struct api *a, unsigned rate_per_min);
/* The master keys PUT /credentials seals secrets with (cred/cred.h): the file is read
 * again here (path "" or NULL: none, and credentials are refused with 503). 0, or -1 with
 * the old keys kept and the reason logged. Any thread (start, SIGHUP). */
int api_set_master_keys(struct api *a, const char *path);
/* Prometheus text: jairouter_admin_api_responses_total{status} (every answer, by HTTP
 * status), jairouter_admin_api_database_up, jairouter_admin_api_connections (open now),
 * jairouter_admin_api_connections_accepted_total and
 * jairouter_admin_api_connections_refused_total (requests answered 503 because too
 * many connections were open). arg: the struct api (metrics renderer). */
void api_render_metrics(struct evbuffer *out, void *arg);
/* Answers what is still waiting with 503, stops the thread and frees everything. */
void api_stop(struct api *a);

#endif /* JR_API_H */
