/*
 * oidc: keys of OpenID Connect issuers, fetched from their discovery document and JWKS
 * (docs/identity.md).
 *
 * For every active issuer with a discovery_url (sql/007_identity.sql), the control thread
 * fetches <discovery_url> with libcurl (multi interface, driven by the control event loop:
 * never blocking it), checks that its "issuer" is the configured one, then fetches its
 * jwks_uri and publishes the usable keys. Refreshed every `refresh_s` seconds, and sooner
 * when a worker meets a token whose kid is unknown (at most once per `min_refresh_s` per
 * issuer). A failed fetch (unreachable, HTTP error, unparsable, no usable key) keeps the
 * keys already published and is retried with back-off; the keys never expire by age.
 *
 * A request whose kid is unknown is refused at once (401 unknown_key) after asking for a
 * refresh; the client's retry after the refresh succeeds. We chose this over parking the
 * request (PL_PENDING) because a refresh may take seconds, beyond the decision deadline,
 * and because attacker-chosen kids must not hold worker slots.
 *
 * Publication: keys live in a table of their own under a read-write lock (not in the
 * catalogue store, which a full reload replaces). Workers take the read lock for the few
 * hundred nanoseconds of a lookup and keep a reference (EVP_PKEY_up_ref) to the one key
 * they use. Each issuer's key set has a generation that moves when it changes, so cached
 * token verifications of that issuer are re-checked.
 *
 * Bounds: OIDC_ISSUERS_MAX issuers, OIDC_KEYS_MAX keys per JWKS (more are ignored),
 * OIDC_BODY_MAX bytes per document (larger ones fail the fetch), OIDC_TIMEOUT_MS per
 * request.
 */
#ifndef JR_OIDC_H
#define JR_OIDC_H

#include "jwt/jwt.h"

#include <stddef.h>
#include <stdint.h>

#define OIDC_ISSUERS_MAX 64
#define OIDC_KEYS_MAX 32
#define OIDC_BODY_MAX (1 << 20)
#define OIDC_TIMEOUT_MS 5000

/* Pure parts (unit-tested). */
/* The jwks_uri of a discovery document whose "issuer" equals iss. 0, or -1 with err. */
int oidc_parse_discovery(const char *doc, size_t len, const char *iss, char *jwks_uri, size_t cap,
			 char *err, size_t errlen);
/* The usable signing keys of a JWKS ({"keys":[...]}); others (enc keys, private keys,
 * unsupported types) are skipped. Returns how many (<= max), or -1 when the document is
 * not a JWKS. */
int oidc_parse_jwks(const char *doc, size_t len, struct jwt_key *out, int max);

/* Workers: appends shallow copies of the issuer's published keys to out (valid only until
 * oidc_keys_end()); returns the new count. Takes the read lock: call oidc_keys_end() after. */
size_t oidc_keys_begin(int64_t issuer_id, struct jwt_key *out, size_t n, size_t max, uint64_t *gen);
void oidc_keys_end(void);
/* The generation of an issuer's key set (0 when none was published). */
uint64_t oidc_generation(int64_t issuer_id);
/* Asks the control thread for an early refresh (unknown kid); rate-limited there. */
void oidc_want_refresh(int64_t issuer_id);

/* RFC 7662 introspection, asked for by a worker and run by the control thread's libcurl:
 * the worker fills the request and creates `done` on its own event base; the control
 * thread POSTs the form with HTTP Basic client authentication and activates `done`
 * (thread-safe) once status/body (or failed) are set. The worker then owns everything
 * again. At most OIDC_INTROSPECT_MAX requests wait or run at once. */
#define OIDC_INTROSPECT_MAX 256
#define CURL_ERROR_SIZE_COPY 264 /* CURL_ERROR_SIZE (256) and a little */
struct event;
struct oidc_introspection {
	char url[512];
	char user[128], pass[256];
	char *form;   /* "token=…&token_type_hint=access_token" (malloc'd; the worker frees it) */
	struct event *done;
	long status;  /* HTTP status, 0 when the request failed */
	char *body;   /* malloc'd, NUL-terminated; the worker frees it */
	size_t len;
	int failed;
	char err[CURL_ERROR_SIZE_COPY];
};
/* Queues q. 0, or -1 when the fetcher is not running or the queue is full. */
int oidc_introspect(struct oidc_introspection *q);

struct event_base;
struct oidc_opts {
	unsigned refresh_s;     /* scheduled refresh */
	unsigned min_refresh_s; /* unknown-kid refreshes, per issuer */
};
/* Starts the fetcher on the control loop. */
int oidc_start(struct event_base *base, const struct oidc_opts *o);
void oidc_stop(void);

struct oidc_stats {
	uint64_t fetches, failures, key_sets;
};
void oidc_stats(struct oidc_stats *out);

#endif /* JR_OIDC_H */
