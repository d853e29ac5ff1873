/*
 * Files and batches (docs/api.md, "Files and batches"). A file or a batch names no
 * model, and its id is the model server's, shared by every tenant the gateway fronts:
 *
 *  - an upload goes to the backend of the tenant's files model (the tenant setting
 *    files_model, else the agent's files_model option), with that model's grants,
 *    roles, routing and rate limits; a batch input file (purpose=batch) is read line by
 *    line first: every line's model must be one the tenant may use, on that backend;
 *  - a batch goes to the backend of its input file's model;
 *  - an id in the path must be the tenant's (state/objects.h), else 404 as for an
 *    unknown id; the request is routed as one of the owner's model;
 *  - GET /v1/files and GET /v1/batches are answered here, from the tenant's own records
 *    (the object JSON last seen): passing the provider's list through would show every
 *    tenant's ids.
 *
 * No tokens are reserved (ctx->obj_use): a batch's tokens are billed once, when it is
 * seen completed (objects/batches.c).
 */
#include "pipeline/pipeline.h"

#include "config/config.h"
#include "form/multipart.h"
#include "json/jscan.h"
#include "state/objects.h"
#include "state/policy.h"
#include "state/state.h"
#include "util/json.h"
#include "util/pct.h"
#include "util/xalloc.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define ID_ECHO_MAX 64
#define LIST_BYTES_MAX (512 * 1024) /* a list answer beyond this ends early, has_more */
#define LIST_LIMIT_MAX 10000
#define LINE_ECHO_MAX 64

/* Options (pl_files_configure), read by every worker. */
static struct {
	_Atomic(char *) model; /* the default files model; NULL: none */
	_Atomic unsigned max_bytes;
} opt;

/* The endpoints a batch may run: the ones the gateway serves and bills per model. */
static const char *const batch_endpoints[] = {
	"/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/responses", "/v1/moderations",
};

void pl_files_configure(const struct jr_config *cfg)
{
	char *m = cfg->files_model[0] ? strdup(cfg->files_model) : NULL;

	/* The previous string is leaked on purpose: a worker may be reading it (a reload
	 * is rare; one model name each). */
	atomic_store(&opt.model, m);
	atomic_store(&opt.max_bytes, cfg->files_max_bytes);
}

static int is(const struct pl_str *s, const char *lit)
{
	return s->ptr && s->len == strlen(lit) && memcmp(s->ptr, lit, s->len) == 0;
}

/* prefix "/{id}" or prefix "/{id}{suffix}": the id, or len 0. */
static struct pl_str id_in(const struct pl_str *path, const char *prefix, const char *suffix)
{
	size_t pl = strlen(prefix), sl = suffix ? strlen(suffix) : 0;
	struct pl_str id = { NULL, 0 };

	if (path->len <= pl + 1 || memcmp(path->ptr, prefix, pl) != 0 || path->ptr[pl] != '/')
		return id;
	id.ptr = path->ptr + pl + 1;
	id.len = path->len - pl - 1;
	if (sl) {
		if (id.len <= sl || memcmp(id.ptr + id.len - sl, suffix, sl) != 0)
			return (struct pl_str){ NULL, 0 };
		id.len -= sl;
	}
	if (memchr(id.ptr, '/', id.len))
		return (struct pl_str){ NULL, 0 };
	return id;
}

static int op_of(const struct pl_ctx *ctx, const struct pl_str *path)
{
	const struct pl_str *m = &ctx->in.method;
	int get = is(m, "GET"), post = is(m, "POST"), del = is(m, "DELETE");

	if (is(path, "/v1/files"))
		return post ? PL_OBJ_FILE_CREATE : get ? PL_OBJ_FILE_LIST : PL_OBJ_NONE;
	if (is(path, "/v1/batches"))
		return post ? PL_OBJ_BATCH_CREATE : get ? PL_OBJ_BATCH_LIST : PL_OBJ_NONE;
	if ((get || del) && id_in(path, "/v1/files", NULL).len)
		return PL_OBJ_FILE_USE;
	if (get && id_in(path, "/v1/files", "/content").len)
		return PL_OBJ_FILE_USE;
	if (get && id_in(path, "/v1/batches", NULL).len)
		return PL_OBJ_BATCH_USE;
	if (post && id_in(path, "/v1/batches", "/cancel").len)
		return PL_OBJ_BATCH_USE;
	return PL_OBJ_NONE;
}

int pl_files_match(struct pl_ctx *ctx, const struct pl_str *path)
{
	int op = path->ptr ? op_of(ctx, path) : PL_OBJ_NONE;

	if (op == PL_OBJ_NONE)
		return 0;
	ctx->service = PL_SVC_CHAT;
	ctx->obj_use = 1;
	ctx->obj_op = op;
	return 1;
}

static struct pl_str api_path(const struct pl_ctx *ctx)
{
	struct pl_str p = ctx->in.path;

	if (p.ptr && p.len > 4 && memcmp(p.ptr, "/api/", 5) == 0)
		p.ptr += 4, p.len -= 4;
	return p;
}

static void route_to(struct pl_ctx *ctx, const char *model)
{
	snprintf(ctx->obj_model, sizeof(ctx->obj_model), "%s", model);
	ctx->in.model.ptr = ctx->obj_model;
	ctx->in.model.len = strlen(ctx->obj_model);
	ctx->in.model_present = 1;
	ctx->in.model_off = ctx->in.model_raw_len = -1;
}

/* The tenant's (kind, id) object: its model's name into model[ST_MODEL_MAX] and its
 * purpose (files) into purpose[OBJ_PURPOSE_MAX]; -1 when unknown, another tenant's, or
 * its model is gone. */
static int owner(const struct pl_ctx *ctx, enum obj_kind kind, const char *id, size_t len, char *model,
		 char *purpose)
{
	const struct state *s = store_read_begin();
	const struct st_object *o = obj_id_valid(id, len) ? objects_find(state_objects(s), kind, id, len) : NULL;
	const struct st_model *m = o && o->tenant_id == ctx->tenant_id ? state_find_model_id(s, o->model_id) : NULL;

	if (m) {
		snprintf(model, ST_MODEL_MAX, "%s", m->name);
		if (purpose)
			snprintf(purpose, OBJ_PURPOSE_MAX, "%s", o->purpose);
	}
	store_read_end();
	return m ? 0 : -1;
}

static enum pl_result no_such(struct pl_ctx *ctx, enum obj_kind kind, const char *param, const char *id,
			      size_t len)
{
	int n = obj_id_valid(id, len) ? (int)(len > ID_ECHO_MAX ? ID_ECHO_MAX : len) : 0;

	return pl_deny(ctx, 404, PL_R_UNKNOWN_OBJECT, "invalid_request_error", "not_found", param,
		       "No such %s object: '%.*s'.", kind == OBJ_FILE ? "File" : "Batch", n, id);
}

static enum pl_result use_id(struct pl_ctx *ctx)
{
	struct pl_str path = api_path(ctx), id = id_in(&path, "/v1/files", NULL);
	enum obj_kind kind = OBJ_FILE;
	char model[ST_MODEL_MAX];

	if (!id.len)
		id = id_in(&path, "/v1/files", "/content");
	if (!id.len) {
		kind = OBJ_BATCH;
		id = id_in(&path, "/v1/batches", NULL);
	}
	if (!id.len)
		id = id_in(&path, "/v1/batches", "/cancel");
	if (owner(ctx, kind, id.ptr, id.len, model, NULL) < 0)
		return no_such(ctx, kind, NULL, id.ptr, id.len);
	route_to(ctx, model);
	return PL_NEXT;
}

/* ---- uploads ---------------------------------------------------------------------------- */

/* The files model of the tenant, or of the agent; 0, or -1 when neither is set. */
static int files_model(const struct pl_ctx *ctx, char *out)
{
	const struct pol_tenant *t = policy_tenant(state_policy(store_read_begin()), ctx->tenant_id);
	char *dflt = atomic_load(&opt.model);

	out[0] = '\0';
	if (t && t->files_model[0])
		snprintf(out, ST_MODEL_MAX, "%s", t->files_model);
	store_read_end();
	if (!out[0] && dflt)
		snprintf(out, ST_MODEL_MAX, "%s", dflt);
	return out[0] ? 0 : -1;
}

static int is_batch_endpoint(const char *p, size_t n)
{
	for (size_t i = 0; i < sizeof(batch_endpoints) / sizeof(batch_endpoints[0]); i++)
		if (strlen(batch_endpoints[i]) == n && memcmp(batch_endpoints[i], p, n) == 0)
			return 1;
	return 0;
}

enum line_verdict { LINE_OK, LINE_BAD, LINE_ENDPOINT, LINE_UNKNOWN, LINE_FORBIDDEN, LINE_ELSEWHERE };

/* Whether the tenant may run model[0..n) in a batch on backend: an active model it may
 * use, of that backend, sent upstream under its own name (a batch file is not rewritten). */
static enum line_verdict check_model(const struct pl_ctx *ctx, const char *name, size_t n, const char *backend)
{
	const struct state *s = store_read_begin();
	const struct st_model *m = state_resolve_model(s, name, n);
	enum line_verdict v = LINE_OK;

	if (!m || m->status != ST_ACTIVE || !pl_model_visible(s, ctx, m))
		v = LINE_UNKNOWN;
	else if (!pl_rbac_allows_model(s, ctx, m))
		v = LINE_FORBIDDEN;
	else if (strcmp(m->backend, backend) != 0 || strcmp(m->name, name) != 0 ||
		 (m->upstream[0] && strcmp(m->upstream, m->name) != 0))
		v = LINE_ELSEWHERE;
	store_read_end();
	return v;
}

/* One line of a batch input file: {"custom_id", "method": "POST", "url", "body": {...
 * "model" ...}}, each member once. The model's name goes to model[JSCAN_MODEL_MAX]. */
static enum line_verdict check_line(const struct pl_ctx *ctx, const char *p, size_t n, const char *backend,
				    char *model)
{
	static const char *const keys[] = { "method", "url", "body" };
	struct jscan_member m[3];
	struct jscan_top body;
	char url[64];
	size_t ul;

	model[0] = '\0';
	if (jscan_members(p, n, JSCAN_DEFAULT_DEPTH, keys, 3, m) != JSCAN_OK || m[0].count != 1 ||
	    m[1].count != 1 || m[2].count != 1 || m[2].type != JSCAN_OBJECT || m[1].type != JSCAN_STRING)
		return LINE_BAD;
	if (jscan_string(p + m[1].offset, m[1].len, url, sizeof(url), &ul) < 0 || !is_batch_endpoint(url, ul))
		return LINE_ENDPOINT;
	if (jscan_top(p + m[2].offset, m[2].len, JSCAN_DEFAULT_DEPTH, &body) != JSCAN_OK ||
	    body.model_count != 1 || body.model_type != JSCAN_STRING || body.model_too_long ||
	    body.model_has_nul || !body.model_len)
		return LINE_BAD;
	memcpy(model, body.model, body.model_len + 1);
	return check_model(ctx, body.model, body.model_len, backend);
}

static enum pl_result deny_line(struct pl_ctx *ctx, enum line_verdict v, size_t line, const char *model)
{
	int ml = (int)strnlen(model, LINE_ECHO_MAX);

	switch (v) {
	case LINE_ENDPOINT:
		return pl_deny(ctx, 400, PL_R_INVALID_JSON, "invalid_request_error", "invalid_batch_line", "file",
			       "Line %zu of the batch file: 'url' must be one of /v1/chat/completions, "
			       "/v1/completions, /v1/embeddings, /v1/responses, /v1/moderations.", line);
	case LINE_UNKNOWN:
		return pl_deny(ctx, 400, PL_R_UNKNOWN_MODEL, "invalid_request_error", "model_not_found", "file",
			       "Line %zu of the batch file: the model `%.*s` does not exist or you do not "
			       "have access to it.", line, ml, model);
	case LINE_FORBIDDEN:
		return pl_deny(ctx, 403, PL_R_PERMISSION_DENIED, "permission_error", "permission_denied", "file",
			       "Line %zu of the batch file: you may not use the model `%.*s`.", line, ml, model);
	case LINE_ELSEWHERE:
		return pl_deny(ctx, 400, PL_R_MODEL_NOT_SUPPORTED, "invalid_request_error", "model_not_supported",
			       "file", "Line %zu of the batch file: the model `%.*s` cannot run in a batch of "
			       "this tenant's files model (another backend, or another upstream name).",
			       line, ml, model);
	default:
		return pl_deny(ctx, 400, PL_R_INVALID_JSON, "invalid_request_error", "invalid_batch_line", "file",
			       "Line %zu of the batch file is not a JSON object with one 'method', one "
			       "string 'url' and one object 'body' holding one string 'model'.", line);
	}
}

/* Every non-empty line of the batch file (JSONL), against the files model's backend. */
static enum pl_result check_batch_file(struct pl_ctx *ctx, const char *p, size_t n)
{
	char backend[ST_NAME_MAX], model[JSCAN_MODEL_MAX];
	const struct state *s = store_read_begin();
	const struct st_model *fm = state_resolve_model(s, ctx->obj_model, strlen(ctx->obj_model));
	size_t line = 0;

	snprintf(backend, sizeof(backend), "%s", fm ? fm->backend : "");
	store_read_end();
	if (!backend[0])
		return PL_NEXT; /* the files model is unknown: refused by the authz stage */
	while (n) {
		const char *nl = memchr(p, '\n', n);
		size_t len = nl ? (size_t)(nl - p) : n, rest = nl ? n - len - 1 : 0;
		enum line_verdict v;

		line++;
		if (len && p[len - 1] == '\r')
			len--;
		if (len && (v = check_line(ctx, p, len, backend, model)) != LINE_OK)
			return deny_line(ctx, v, line, model);
		p = nl ? nl + 1 : p + n;
		n = rest;
	}
	return PL_NEXT;
}

/* Whether a purpose value means a batch input file to a lenient server: "batch" in any
 * case, with surrounding white space. Such an upload is inspected (and passed on as
 * sent); only an exact "batch" is what OpenAI documents. */
static int is_batch_purpose(const char *p, size_t n)
{
	while (n && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
		p++, n--;
	while (n && (p[n - 1] == ' ' || p[n - 1] == '\t' || p[n - 1] == '\r' || p[n - 1] == '\n'))
		n--;
	return n == 5 && strncasecmp(p, "batch", 5) == 0;
}

static enum pl_result create_file(struct pl_ctx *ctx)
{
	const struct pl_request *in = &ctx->in;
	char b[MP_BOUNDARY_MAX + 1], model[ST_MODEL_MAX];
	int bl = mp_boundary(in->content_type.ptr, in->content_type.len, b);
	int truncated = in->body_size >= 0 && in->body_len >= 0 && in->body_size > in->body_len;
	const char *body = in->body.ptr ? in->body.ptr : "";
	unsigned max = atomic_load(&opt.max_bytes);
	struct mp_form f;
	int batch;

	if (files_model(ctx, model) < 0)
		return pl_deny(ctx, 400, PL_R_UNKNOWN_MODEL, "invalid_request_error", "files_not_configured",
			       NULL, "Files are not enabled for this tenant: the gateway needs the tenant "
			       "setting 'files_model' (or the agent's files_model option) to know where "
			       "files are stored.");
	route_to(ctx, model);
	if (bl < 0)
		return pl_deny(ctx, 400, PL_R_INVALID_FORM, "invalid_request_error", "invalid_multipart", NULL,
			       "A file is uploaded as multipart/form-data with a valid boundary parameter.");
	if (mp_parse(body, in->body.len, b, (size_t)bl, &f) < 0 || (!truncated && !f.complete))
		return pl_deny(ctx, 400, PL_R_INVALID_FORM, "invalid_request_error", "invalid_multipart", NULL,
			       "We could not parse the multipart/form-data body of your request.");
	if (f.purpose.count > 1 || f.file.count > 1)
		return pl_deny(ctx, 400, PL_R_INVALID_FORM, "invalid_request_error", "duplicate_field",
			       f.purpose.count > 1 ? "purpose" : "file", "The form has more than one '%s' field.",
			       f.purpose.count > 1 ? "purpose" : "file");
	if (truncated && !f.purpose.count)
		return pl_deny(ctx, 413, PL_R_BODY_TOO_LARGE, "invalid_request_error", "request_too_large",
			       "purpose", "The upload (%lld bytes) is larger than the gateway can inspect "
			       "(%lld bytes), and its 'purpose' field is not within that part: send "
			       "'purpose' before the file.", (long long)in->body_size, (long long)in->body_len);
	if (f.purpose.count && f.purpose.is_file)
		return pl_deny(ctx, 400, PL_R_INVALID_FORM, "invalid_request_error", "invalid_type", "purpose",
			       "Invalid 'purpose' form field: expected a plain value, not a file.");
	batch = f.purpose.count && is_batch_purpose(body + f.purpose.offset, f.purpose.len);
	if (batch && truncated)
		return pl_deny(ctx, 413, PL_R_BODY_TOO_LARGE, "invalid_request_error", "batch_file_too_large",
			       "file", "A batch input file is read line by line before it is stored: the upload "
			       "(%lld bytes) is larger than the gateway can inspect (%lld bytes). Split the "
			       "batch into smaller files.", (long long)in->body_size, (long long)in->body_len);
	if (!batch && in->body_size > (int64_t)max)
		return pl_deny(ctx, 413, PL_R_BODY_TOO_LARGE, "invalid_request_error", "file_too_large", "file",
			       "The upload (%lld bytes) is larger than this gateway accepts (%u bytes).",
			       (long long)in->body_size, max);
	if (batch && f.file.count)
		return check_batch_file(ctx, body + f.file.offset, f.file.len);
	return PL_NEXT;
}

/* ---- batch creates ---------------------------------------------------------------------- */

static enum pl_result create_batch(struct pl_ctx *ctx)
{
	static const char *const keys[] = { "input_file_id", "endpoint" };
	const struct pl_request *in = &ctx->in;
	const char *p = in->body.ptr ? in->body.ptr : "";
	struct jscan_member m[2];
	char id[OBJ_ID_MAX + 1], ep[64], model[ST_MODEL_MAX], purpose[OBJ_PURPOSE_MAX];
	size_t il = 0, el;

	if (in->body_size >= 0 && in->body_len >= 0 && in->body_size > in->body_len)
		return pl_deny(ctx, 413, PL_R_BODY_TOO_LARGE, "invalid_request_error", "request_too_large", NULL,
			       "The request body (%lld bytes) is larger than the gateway can inspect.",
			       (long long)in->body_size);
	if (jscan_members(p, in->body.len, JSCAN_DEFAULT_DEPTH, keys, 2, m) != JSCAN_OK)
		return pl_deny(ctx, 400, PL_R_INVALID_JSON, "invalid_request_error", "invalid_json", NULL,
			       "We could not parse the JSON body of your request: it must be a JSON object "
			       "(Content-Type: application/json).");
	if (m[0].count != 1 || m[0].type != JSCAN_STRING ||
	    jscan_string(p + m[0].offset, m[0].len, id, sizeof(id), &il) < 0)
		return pl_deny(ctx, 400, PL_R_INVALID_JSON, "invalid_request_error", "invalid_value",
			       "input_file_id", "'input_file_id' must be given once, as a string.");
	if (m[1].count != 1 || m[1].type != JSCAN_STRING ||
	    jscan_string(p + m[1].offset, m[1].len, ep, sizeof(ep), &el) < 0 || !is_batch_endpoint(ep, el))
		return pl_deny(ctx, 400, PL_R_INVALID_JSON, "invalid_request_error", "invalid_value", "endpoint",
			       "'endpoint' must be one of /v1/chat/completions, /v1/completions, "
			       "/v1/embeddings, /v1/responses, /v1/moderations.");
	if (owner(ctx, OBJ_FILE, id, il, model, purpose) < 0)
		return no_such(ctx, OBJ_FILE, "input_file_id", id, il);
	if (purpose[0] && strcmp(purpose, "batch") != 0)
		return pl_deny(ctx, 400, PL_R_INVALID_JSON, "invalid_request_error", "invalid_value",
			       "input_file_id", "The file '%s' was not uploaded with purpose 'batch'.", id);
	route_to(ctx, model);
	return PL_NEXT;
}

enum pl_result pl_files_check(struct pl_ctx *ctx)
{
	switch (ctx->obj_op) {
	case PL_OBJ_FILE_CREATE:
		return create_file(ctx);
	case PL_OBJ_BATCH_CREATE:
		return create_batch(ctx);
	case PL_OBJ_FILE_USE:
	case PL_OBJ_BATCH_USE:
		return use_id(ctx);
	default:
		return PL_NEXT; /* lists: answered by the authz stage */
	}
}

/* ---- lists ------------------------------------------------------------------------------ */

struct list_query {
	long limit;
	int asc;
	char after[OBJ_ID_MAX];
	char purpose[OBJ_PURPOSE_MAX];
	const char *bad; /* the parameter that is not valid */
};

static void set_param(struct list_query *q, const char *k, size_t kl, const char *v, size_t vl)
{
	char val[OBJ_ID_MAX + 8], *end;
	int n = pct_decode(v, vl, val, sizeof(val));
	const char *key = kl == 5 && !memcmp(k, "limit", 5) ? "limit" : kl == 5 && !memcmp(k, "after", 5) ? "after"
			  : kl == 5 && !memcmp(k, "order", 5) ? "order" : kl == 7 && !memcmp(k, "purpose", 7) ? "purpose"
			  : NULL;

	if (!key)
		return; /* other parameters are ignored, as OpenAI ignores them */
	if (n < 0) {
		q->bad = key;
		return;
	}
	val[n] = '\0';
	if (key[0] == 'l') {
		q->limit = strtol(val, &end, 10);
		if (!n || *end || q->limit < 1 || q->limit > LIST_LIMIT_MAX)
			q->bad = key;
	} else if (key[0] == 'a') {
		if (!obj_id_valid(val, (size_t)n))
			q->bad = key;
		else
			memcpy(q->after, val, (size_t)n + 1);
	} else if (key[0] == 'o') {
		if (strcmp(val, "asc") && strcmp(val, "desc"))
			q->bad = key;
		q->asc = strcmp(val, "asc") == 0;
	} else if ((size_t)n >= sizeof(q->purpose)) {
		q->bad = key;
	} else {
		memcpy(q->purpose, val, (size_t)n + 1);
	}
}

static void parse_query(const struct pl_str *qs, struct list_query *q)
{
	const char *p = qs->ptr, *end = qs->ptr ? qs->ptr + qs->len : NULL;

	while (p && p < end) {
		const char *amp = memchr(p, '&', (size_t)(end - p)), *stop = amp ? amp : end;
		const char *eq = memchr(p, '=', (size_t)(stop - p));

		if (eq)
			set_param(q, p, (size_t)(eq - p), eq + 1, (size_t)(stop - eq - 1));
		p = stop + 1;
	}
}

struct collect {
	const struct st_object **v;
	size_t n, cap;
	int64_t tenant;
	enum obj_kind kind;
	const char *purpose;
};

static void collect_one(const struct st_object *o, void *arg)
{
	struct collect *c = arg;

	if (o->tenant_id != c->tenant || o->kind != c->kind || o->deleted ||
	    (c->purpose[0] && strcmp(o->purpose, c->purpose)))
		return;
	if (c->n == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 64;
		c->v = xrealloc(c->v, c->cap * sizeof(*c->v));
	}
	c->v[c->n++] = o;
}

/* Newest first (created_at, then id), as OpenAI lists. */
static int newest_first(const void *a, const void *b)
{
	const struct st_object *x = *(const struct st_object *const *)a, *y = *(const struct st_object *const *)b;

	if (x->created_at != y->created_at)
		return x->created_at > y->created_at ? -1 : 1;
	return -strcmp(x->object_id, y->object_id);
}

static void put_object(struct jbuf *b, const struct st_object *o)
{
	if (o->json) {
		jbuf_puts(b, o->json);
		return;
	}
	jbuf_puts(b, "{\"id\":");
	jbuf_put_string(b, o->object_id, strlen(o->object_id));
	jbuf_printf(b, ",\"object\":\"%s\",\"created_at\":%lld}", o->kind == OBJ_FILE ? "file" : "batch",
		    (long long)o->created_at);
}

/* The page of c (sorted) that q asks for, as OpenAI's list object. */
static void render(struct jbuf *b, const struct collect *c, const struct list_query *q)
{
	size_t start = 0, shown = 0, i;
	const struct st_object *first = NULL, *last = NULL;

	if (q->after[0]) {
		for (start = 0; start < c->n && strcmp(c->v[q->asc ? c->n - 1 - start : start]->object_id, q->after);
		     start++)
			;
		start = start < c->n ? start + 1 : c->n;
	}
	jbuf_puts(b, "{\"object\":\"list\",\"data\":[");
	for (i = start; i < c->n && shown < (size_t)q->limit && b->len < LIST_BYTES_MAX; i++, shown++) {
		const struct st_object *o = c->v[q->asc ? c->n - 1 - i : i];

		if (shown)
			jbuf_put(b, ",", 1);
		put_object(b, o);
		first = first ? first : o;
		last = o;
	}
	jbuf_puts(b, "],\"first_id\":");
	if (first)
		jbuf_put_string(b, first->object_id, strlen(first->object_id));
	else
		jbuf_puts(b, "null");
	jbuf_puts(b, ",\"last_id\":");
	if (last)
		jbuf_put_string(b, last->object_id, strlen(last->object_id));
	else
		jbuf_puts(b, "null");
	jbuf_printf(b, ",\"has_more\":%s}", i < c->n ? "true" : "false");
}

enum pl_result pl_files_list(struct pl_ctx *ctx)
{
	int files = ctx->obj_op == PL_OBJ_FILE_LIST;
	struct list_query q = { files ? LIST_LIMIT_MAX : 20, 0, "", "", NULL };
	struct collect c = { NULL, 0, 0, ctx->tenant_id, files ? OBJ_FILE : OBJ_BATCH, q.purpose };
	struct jbuf b = { NULL, 0, 0 };

	parse_query(&ctx->in.query, &q);
	if (q.bad)
		return pl_deny(ctx, 400, PL_R_INVALID_JSON, "invalid_request_error", "invalid_value", q.bad,
			       "Invalid '%s': %s.", q.bad,
			       q.bad[0] == 'l' ? "expected an integer from 1 to 10000"
			       : q.bad[0] == 'o' ? "expected 'asc' or 'desc'" : "not a valid value");
	objects_each_of_tenant(state_objects(store_read_begin()), ctx->tenant_id, collect_one, &c);
	if (c.n)
		qsort(c.v, c.n, sizeof(*c.v), newest_first);
	render(&b, &c, &q);
	store_read_end();
	free(c.v);
	return pl_respond(ctx, 200, b.p, b.len);
}
