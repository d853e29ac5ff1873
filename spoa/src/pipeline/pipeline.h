/*
 * pipeline: one decision per HAProxy request, run as an ordered list of stages over a
 * request context.
 *
 *   decode NOTIFY -> pl_request -> stages (identity, tenant, request, authz, route, ...)
 *                 -> pl_verdict -> ACK variables (txn.jr.*)
 *
 * A stage returns PL_NEXT to continue, PL_DONE once it has set a verdict (a denial, or a
 * final allow), or PL_PENDING after starting asynchronous work; it then calls
 * pl_resume() from its callback on the same event loop. The caller (the network layer)
 * owns the deadline: when it fires first it calls pl_abandon(), which sets the error
 * verdict and lets the ACK go out; the late pl_resume() then only releases the context.
 *
 * The runner (pipeline.c) knows nothing of sockets or clocks: the wall clock, the error
 * policy (struct pl_policy) and the worker's event loop (pl_ctx.base) come in with each
 * decision. The stages read the catalogue store (state/state.h) and call the modules they
 * front: the router (lb/, given a struct lb_request), the limits (limits.c over limit/ and
 * the Redis store, asynchronous), token identities (jwt/, oidc/, abuse/, audit/); those
 * keep their own clocks and counters. The pipeline owns the router's in-flight slot of a
 * request and settles it once, when the decision ends (pipeline.c, finish()).
 */
#ifndef JR_PIPELINE_H
#define JR_PIPELINE_H

#include <stddef.h>
#include <stdint.h>

#include "json/jscan.h"
#include "state/state.h"

struct jbuf;
struct event_base;

/* Why a decision came out as it did; also the metrics label. */
enum pl_reason {
	PL_R_OK = 0,
	PL_R_MISSING_CREDENTIALS,
	PL_R_AMBIGUOUS_CREDENTIALS,
	PL_R_INVALID_KEY,
	PL_R_REVOKED_KEY,
	PL_R_EXPIRED_KEY,
	PL_R_DISABLED_KEY,
	PL_R_TENANT_DISABLED,
	PL_R_UNKNOWN_URL,
	PL_R_BODY_TOO_LARGE,
	PL_R_INVALID_JSON,
	PL_R_MISSING_MODEL,
	PL_R_INVALID_MODEL,
	PL_R_UNKNOWN_MODEL,
	PL_R_MODEL_DISABLED,
	PL_R_NOT_READY,
	PL_R_DATABASE_UNAVAILABLE,
	PL_R_BAD_MESSAGE,
	PL_R_INTERNAL,
	PL_R_DEADLINE,
	PL_R_IP_NOT_ALLOWED,       /* tenant policy (policy.c) */
	PL_R_SERVICE_NOT_ALLOWED,
	PL_R_MODEL_NOT_GRANTED,    /* answered like an unknown model (404) */
	PL_R_MODEL_NOT_ALLOWED,    /* the key's model list (403) */
	PL_R_CREDENTIAL_UNAVAILABLE,
	PL_R_MODEL_NOT_SUPPORTED,  /* the model does not serve this service type (400) */
	PL_R_STREAM_NOT_SUPPORTED, /* "stream": true on a model that cannot stream (400) */
	PL_R_INVALID_FORM,         /* a multipart body we cannot read unambiguously (400) */
	PL_R_INVALID_TOKEN,        /* identity (pipeline/identity.c): a bearer token refused (401) */
	PL_R_TOKEN_EXPIRED,
	PL_R_TOKEN_REVOKED,
	PL_R_PERMISSION_DENIED,    /* RBAC (pipeline/rbac.c): a permission missing or denied (403) */
	PL_R_TOO_MANY_FAILURES,    /* abuse/: the client address is locked out (429) */
	PL_R_NO_UPSTREAM,          /* no server of the model or its fallbacks can serve (503; lb/) */
	PL_R_RATE_LIMITED,         /* a rate or concurrency limit (429, pipeline/limits.c) */
	PL_R_QUOTA_EXCEEDED,       /* a token quota or money budget (429 insufficient_quota) */
	PL_R_UNKNOWN_OBJECT,       /* a stored response the tenant did not create (pipeline/objects.c) */
	PL_R_INVALID_UPGRADE,      /* GET /v1/realtime without a valid WebSocket upgrade (400) */
	PL_R_REALTIME_UNSUPPORTED, /* a realtime session the model's backend cannot serve */
	PL_R__COUNT
};

const char *pl_reason_name(enum pl_reason r);

enum pl_service {
	PL_SVC_NONE = 0,
	PL_SVC_CHAT,
	PL_SVC_COMPLETIONS,
	PL_SVC_EMBEDDINGS,
	PL_SVC_MODELS,     /* GET /v1/models: answered by the gateway itself */
	PL_SVC_MODEL_GET,  /* GET /v1/models/{id} */
	PL_SVC_RERANK,
	PL_SVC_AUDIO_SPEECH,
	PL_SVC_AUDIO_TRANSCRIPTIONS, /* multipart/form-data */
	PL_SVC_IMAGES_GENERATIONS,
	PL_SVC_IMAGES_EDITS,         /* multipart/form-data */
	PL_SVC_MODERATIONS,
	PL_SVC_REALTIME,             /* GET /v1/realtime: a WebSocket session (docs/api.md) */
	PL_SVC__COUNT
};

const char *pl_service_name(enum pl_service s);

/* A string argument from the NOTIFY; ptr is NULL when the argument was absent or NULL. */
struct pl_str {
	const char *ptr;
	size_t len;
};

/* Decoded arguments of the `jairouter-request` message (docs/design.md). Strings point
 * into the context's own copy of the NOTIFY payload. */
struct pl_request {
	struct pl_str method, path, authorization, api_key, content_type, request_id;
	struct pl_str affinity; /* the affinity header's value (hash routing; lb/) */
	struct pl_str user;    /* end user for limits (arg `user`: a header or a JWT subject) */
	struct pl_str trace;   /* the W3C trace context of the gateway's span (arg `trace`) */
	struct pl_str query;   /* the query string, without '?' (arg `query`; file and batch lists) */
	struct pl_str body;    /* the buffered request body (arg `body`), when sent */
	struct pl_str rt_model; /* GET /v1/realtime: the query's model, percent-encoded */
	int64_t rt_ws;         /* GET /v1/realtime: 1 a valid WebSocket upgrade, 0 not; -1 absent */
	int has_body;          /* the `body` argument was present (even if empty) */
	struct pl_str model;   /* from the body (or the legacy `model` argument): a string */
	int model_present;     /* a model was given, whatever its type */
	int stream;            /* 1 when "stream": true (or the form field stream=true) */
	int is_form;           /* the body is multipart/form-data (model from its form field) */
	int64_t model_off;     /* the model value in the body as sent: offset and length */
	int64_t model_raw_len; /* (JSON: the quoted token; form: the part's content); -1 none */
	int64_t body_len;      /* bytes HAProxy buffered; -1 unknown */
	int64_t body_size;     /* announced length; -1 unknown */
	int64_t cred_count;    /* credential headers seen; -1 unknown */
	int src_family;        /* 0 unknown, 4, 6 */
	uint8_t src[16];
};

#define PL_ERROR_MAX 768
#define PL_MESSAGE_MAX 384
#define PL_UPSTREAM_MAX 4200 /* an upstream credential header value (state/policy.h) */
#define PL_ADAPTER_MAX 8192  /* the adapter route (pipeline/adapter.c), percent-encoded */

struct pl_verdict {
	int allow;
	int respond;                  /* answer directly with status and body (no upstream) */
	char *body;                   /* respond: JSON body, owned (freed by pl_ctx_clear) */
	size_t body_len;
	int status;                   /* HTTP status for a denial */
	enum pl_reason reason;
	const char *err_type;         /* OpenAI error type */
	const char *err_code;         /* OpenAI error code, NULL for JSON null */
	const char *err_param;        /* NULL for JSON null */
	char message[PL_MESSAGE_MAX]; /* plain text; escaped when encoded */
	int retry_after;              /* seconds; 0 = none */
	char backend[ST_NAME_MAX];
	char model[ST_MODEL_MAX];
	char tenant[ST_NAME_MAX];
	char key_prefix[ST_PREFIX_MAX];
	/* allow, when the catalogue's upstream name differs from the model's name: the name
	 * to send, and where HAProxy replaces the model value in the body (haproxy/
	 * jairouter.lua) with model_rewrite, its encoding for the body (a JSON string with
	 * quotes, or the raw form value). */
	char upstream_model[ST_MODEL_MAX];
	/* allow: the server the agent chose in `backend` ("": HAProxy balances), and the
	 * primary model's problem when a fallback model serves instead (lb/). */
	char server[64];
	char fallback[16];
	int64_t model_off, model_len;
	char model_rewrite[2 * ST_MODEL_MAX + 2];
	/* allow: the provider credential HAProxy injects upstream (policy.c); never logged,
	 * zeroed by pl_ctx_clear. up_header: 0 none, else enum pol_header. */
	int up_header;
	size_t up_len;
	char up_value[PL_UPSTREAM_MAX];
	/* allow, when the request detours through jairouter-adapter (pipeline/adapter.c):
	 * its route, "k=v&..." (var `adapter`, header x-jairouter-adapter); "" = direct. */
	char adapter[PL_ADAPTER_MAX];
	/* allow, a direct stream (no detour) of chat or completions: how its usage is read
	 * (pipeline/adapter.c, haproxy/jairouter.lua). meter: PL_METER_KEEP the client asked
	 * for the usage chunk, PL_METER_STRIP the gateway asks for it (the body splice
	 * meter_off/meter_len) and removes it from the answer. body_delta: the body's change
	 * of length from every splice (model rewrite included), for Content-Length. */
	int meter;
	int64_t meter_off, meter_len, body_delta;
	/* The x-ratelimit-* headers (pipeline/limits.c), on allows and denials: [0] requests,
	 * [1] tokens; limit < 0 = no such limit applied. reset in milliseconds. */
	struct {
		int64_t limit, remaining, reset_ms;
	} rl[2];
};

#define PL_TRACE_STAGES 24

enum pl_meter { PL_METER_NONE = 0, PL_METER_KEEP, PL_METER_STRIP };
/* What the splice of PL_METER_STRIP writes: inserted before the root's closing brace when
 * the body has no stream_options (meter_len 0), or in place of its value. jairouter.lua
 * has the same two strings. */
#define PL_METER_INSERT ",\"stream_options\":{\"include_usage\":true}"
#define PL_METER_REPLACE "{\"include_usage\":true}"

enum pl_result { PL_NEXT = 0, PL_DONE = 1, PL_PENDING = 2 };

#define PL_END_USER_MAX 256 /* the JWT `sub` (jwt/jwt.h JWT_STR_MAX) */
#define PL_ROLES_MAX 16
enum pl_auth_kind { PL_AUTH_NONE = 0, PL_AUTH_KEY, PL_AUTH_JWT };

struct pl_ctx;

struct pl_stage {
	const char *name;
	enum pl_result (*run)(struct pl_ctx *ctx);
};

typedef void (*pl_done_fn)(struct pl_ctx *ctx, void *arg);
typedef void (*pl_release_fn)(struct pl_ctx *ctx, void *arg);

/* Policy the caller hands to each decision. */
struct pl_policy {
	int on_error_allow;  /* verdict when a decision fails internally */
	int64_t now_unix;    /* wall clock for key expiry, from the caller */
};

struct pl_ctx {
	struct pl_request in;
	struct pl_verdict out;
	struct pl_policy policy;
	/* The event loop of the worker running the decision, set by the caller after
	 * pl_ctx_init: asynchronous stages (Redis limits, token introspection) attach their
	 * I/O and wake-ups to it. NULL (tests): they decide without waiting. */
	struct event_base *base;
	enum pl_service service;
	/* Filled by the identity and tenant stages. */
	int64_t tenant_id;
	int64_t key_id;
	/* Token identities (pipeline/identity.c, docs/identity.md): the issuer, the end user
	 * (the JWT `sub`; "" for API keys), and the roles RBAC holds the caller to when
	 * rbac is set (tokens always; API keys that have roles). */
	int auth_kind;                    /* enum pl_auth_kind */
	int64_t issuer_id;
	char end_user[PL_END_USER_MAX];
	char jti[PL_END_USER_MAX];
	char issuer[PL_END_USER_MAX];     /* the token's `iss` (also when refused: audit) */
	const char *auth_detail;          /* why a token was refused (audit), static text */
	int rbac;
	int nroles;
	int64_t role_ids[PL_ROLES_MAX];
	/* Filled by the request stage from the JSON body. */
	struct jscan_top json;
	/* Stored objects (pipeline/objects.c, docs/api.md): POST /v1/responses creates one
	 * (obj_create); GET|DELETE /v1/responses/{id}[/input_items] uses one (obj_use), and
	 * is routed as a chat request of the owner's model, copied into obj_model. */
	int obj_create, obj_use;
	char obj_model[ST_MODEL_MAX];
	char rt_model[ST_MODEL_MAX];      /* GET /v1/realtime: the query's model, decoded */
	/* Files and batches (pipeline/files.c): which operation; obj_use is set too (no
	 * body names a model, no tokens are reserved). */
	int obj_op; /* enum pl_obj_op */
	/* The in-flight slot the route stage took on a server (lb/lb.h): the pipeline owns
	 * it and gives it back once, when the decision ends, unless the verdict sends the
	 * request to that very server (finish() in pipeline.c). A stage that changes its mind
	 * only changes the verdict (out.server, out.backend, out.allow). */
	char slot_backend[ST_NAME_MAX];
	char slot_server[64];
	/* Runner state. */
	const struct pl_stage *stages;
	size_t nstages, next;
	/* A sampled trace (trace/trace.h): the wall clock at the start and at the end of each
	 * stage that ran, for the decision's spans. */
	int traced;
	int64_t trace_start_ns;
	int64_t stage_end_ns[PL_TRACE_STAGES];
	int finished;   /* the verdict is final and done() was called */
	int pending;    /* a stage is waiting for asynchronous work */
	int abandoned;  /* the deadline fired first */
	pl_done_fn done;
	pl_release_fn release;
	void *arg;
	/* The NOTIFY payload copy that in.* points into. */
	uint8_t *payload;
	size_t payload_len;
};

enum pl_decode_result {
	PL_DECODE_OK = 0,
	PL_DECODE_NO_MESSAGE = -1, /* well-formed, but no `jairouter-request` message */
	PL_DECODE_MALFORMED = -2,  /* not a valid LIST-OF-MESSAGES: a protocol error */
};

/* Stored objects (pipeline/objects.c). pl_objects_match: 1 when the request is one of
 * the Responses API's (it sets ctx->service and the obj_* flags), else 0.
 * pl_objects_check: for obj_use, the owner's model becomes the request's model (404 for
 * an id the tenant did not create); for obj_create, a previous_response_id must be the
 * tenant's own (400). PL_NEXT or PL_DONE. */
int pl_objects_match(struct pl_ctx *ctx, const struct pl_str *path);
enum pl_result pl_objects_check(struct pl_ctx *ctx);

/* Files and batches (pipeline/files.c, docs/api.md "Files and batches").
 * pl_files_match: 1 when the request is one of the Files or Batch API's (it sets
 * ctx->service, obj_use and obj_op). pl_files_check (request stage): the model whose
 * backend serves it becomes the request's model (the tenant's files_model for an
 * upload, the owner's for an id), an upload of purpose batch has every line checked.
 * pl_files_list (authz stage): the lists, answered from the tenant's own records. */
enum pl_obj_op {
	PL_OBJ_NONE = 0,
	PL_OBJ_FILE_CREATE, PL_OBJ_FILE_LIST, PL_OBJ_FILE_USE,
	PL_OBJ_BATCH_CREATE, PL_OBJ_BATCH_LIST, PL_OBJ_BATCH_USE,
};
struct jr_config;
void pl_files_configure(const struct jr_config *cfg);
int pl_files_match(struct pl_ctx *ctx, const struct pl_str *path);
enum pl_result pl_files_check(struct pl_ctx *ctx);
enum pl_result pl_files_list(struct pl_ctx *ctx);

/* Decodes a NOTIFY payload: copies it into the context (ctx->payload, allocated; freed by
 * pl_ctx_clear) and fills ctx->in from the `jairouter-request` message. Other messages
 * are ignored. */
enum pl_decode_result pl_request_decode(struct pl_ctx *ctx, const uint8_t *payload, size_t len);

void pl_ctx_init(struct pl_ctx *ctx, const struct pl_policy *policy);
void pl_ctx_clear(struct pl_ctx *ctx);

/* Runs the stages. done(ctx, arg) is called exactly once when the verdict is final
 * (possibly before pl_start returns); release(ctx, arg) exactly once when the context may
 * be freed (after done, and after any pending stage has come back). Returns 1 when the
 * decision finished synchronously, 0 when a stage is pending. */
int pl_start(struct pl_ctx *ctx, const struct pl_stage *stages, size_t nstages, pl_done_fn done,
	     pl_release_fn release, void *arg);

/* Called by an asynchronous stage when its work is complete. */
void pl_resume(struct pl_ctx *ctx, enum pl_result r);

/* Deadline: finalises with the error verdict (PL_R_DEADLINE); the pending stage's later
 * pl_resume() releases the context. No-op when already finished. */
void pl_abandon(struct pl_ctx *ctx);

/* Sets a direct answer (takes ownership of body, a malloc'd JSON document). */
enum pl_result pl_respond(struct pl_ctx *ctx, int status, char *body, size_t len);

/* Verdict helpers for stages. pl_deny formats the message (printf-style). */
enum pl_result pl_deny(struct pl_ctx *ctx, int status, enum pl_reason reason, const char *type,
		       const char *code, const char *param, const char *fmt, ...)
	__attribute__((format(printf, 7, 8)));
/* The internal-error verdict, following policy.on_error_allow. */
enum pl_result pl_fail(struct pl_ctx *ctx, enum pl_reason reason);

/* Writes the OpenAI error envelope for a denial into buf. Returns the length or -1. */
int pl_error_json(const struct pl_verdict *v, char *buf, size_t cap);

/* Bytes an ACK for this verdict may need (size the buffer with it). */
size_t pl_ack_size_hint(const struct pl_verdict *v);

/* Encodes the ACK frame for the verdict (stream and frame id echoed). Returns the frame
 * size or -1 if it cannot fit max_frame even without the error body. A direct answer
 * whose body does not fit max_frame becomes a 500 naming the limit. */
int pl_ack_encode(const struct pl_verdict *v, uint64_t sid, uint64_t fid, uint8_t *buf,
		  size_t cap, uint32_t max_frame);

/* Tenant policy stages (policy.c): client_ip runs after the tenant (client IP
 * allow-lists, per-tenant on_error), access after the request (service types, and a
 * private model named directly is as unknown), grants after authz (model grants, the
 * key's model list, the provider credential). */
enum pl_result pl_stage_client_ip(struct pl_ctx *ctx);
enum pl_result pl_stage_access(struct pl_ctx *ctx);
enum pl_result pl_stage_grants(struct pl_ctx *ctx);

/* Whether the caller (ctx->tenant_id, ctx->key_id) may use model m: grants, visibility
 * and the key's model list. For listings (GET /v1/models); call under the read lock. */
int pl_model_visible(const struct state *s, const struct pl_ctx *ctx, const struct st_model *m);

/* Identity (identity.c): a bearer token that is not an API key (a JWT); the address
 * lock-out and the audit of refusals around the identity stage. RBAC (rbac.c): the
 * service permission (after access) and the model permission (after grants). */
enum pl_result pl_identity_token(struct pl_ctx *ctx, const char *tok, size_t len);
/* Any other bearer token: RFC 7662 introspection (PL_PENDING) when an issuer has it. */
enum pl_result pl_identity_opaque(struct pl_ctx *ctx, const char *tok, size_t len);
enum pl_result pl_identity_guard(struct pl_ctx *ctx, enum pl_result (*inner)(struct pl_ctx *));
/* A security-audit entry (audit/) for the request in ctx: event, reason, HTTP status. */
void pl_audit(struct pl_ctx *ctx, const char *event, const char *reason, int status);
enum pl_result pl_stage_rbac_service(struct pl_ctx *ctx);
enum pl_result pl_stage_rbac_model(struct pl_ctx *ctx);
/* Whether the caller's roles let it use model m (listings); call under the read lock. */
int pl_rbac_allows_model(const struct state *s, const struct pl_ctx *ctx, const struct st_model *m);
/* After route: decides whether the request detours through jairouter-adapter
 * (adapter.c) and writes its route into out.adapter. */
enum pl_result pl_stage_adapter(struct pl_ctx *ctx);

/* Frees what the stages keep per worker thread (the verified-token cache of identity.c).
 * A worker-exit hook (net/server.h); arg unused. */
void pl_worker_exit(void *arg);

/* The spine's stages, in order (stages.c). */
extern const struct pl_stage pl_default_stages[];
extern const size_t pl_default_nstages;

/* The administration API's identity check (api/): the same identity, tenant and client
 * address stages as a model request, then an allow naming the caller. Permissions are
 * the API's to check, with pl_rbac_actions(). */
extern const struct pl_stage pl_admin_stages[];
extern const size_t pl_admin_nstages;

/* Actions of the administration surface (roles' `admin`, `usage:read`, `audit:read`). */
enum pl_action { PL_ACT_ADMIN = 1, PL_ACT_USAGE_READ = 2, PL_ACT_AUDIT_READ = 4 };
/* The actions the caller's roles grant (bits of enum pl_action; a deny wins, `*` grants
 * all); a caller without roles holds none. The names of its roles are appended to roles
 * as JSON strings separated by commas. Takes the store's read lock. */
unsigned pl_rbac_actions(const struct pl_ctx *ctx, struct jbuf *roles);

#endif /* JR_PIPELINE_H */
