/*
 * Stored objects of the Responses API (docs/api.md). A model server keeps each response
 * it creates (unless the request says "store": false) and serves it again by id; the
 * ids are the model server's, shared by every tenant the gateway fronts. The gateway
 * records who created each id (objects/objects.h, state/objects.h) and lets only that
 * tenant name it again: in the path (retrieve, delete, input items) and in a new
 * request's previous_response_id. Anything else is answered as OpenAI answers an
 * unknown id.
 */
#include "pipeline/pipeline.h"

#include "state/objects.h"
#include "state/state.h"

#include <stdio.h>
#include <string.h>

#define RESPONSES "/v1/responses"
#define INPUT_ITEMS "/input_items"
#define ID_ECHO_MAX 64

static int is(const struct pl_str *s, const char *lit)
{
	return s->ptr && s->len == strlen(lit) && memcmp(s->ptr, lit, s->len) == 0;
}

/* The id in /v1/responses/{id}[/input_items]; 0 when the path is not of that form. */
static int id_of(const struct pl_str *path, struct pl_str *id, int *items)
{
	size_t pl = strlen(RESPONSES "/"), il = strlen(INPUT_ITEMS);
	const char *slash;

	if (path->len <= pl || memcmp(path->ptr, RESPONSES "/", pl) != 0)
		return 0;
	id->ptr = path->ptr + pl;
	id->len = path->len - pl;
	slash = memchr(id->ptr, '/', id->len);
	*items = 0;
	if (slash) {
		if ((size_t)(id->ptr + id->len - slash) != il || memcmp(slash, INPUT_ITEMS, il) != 0)
			return 0;
		id->len = (size_t)(slash - id->ptr);
		*items = 1;
	}
	return id->len > 0;
}

int pl_objects_match(struct pl_ctx *ctx, const struct pl_str *path)
{
	struct pl_str id;
	int items;

	if (is(&ctx->in.method, "POST") && is(path, RESPONSES)) {
		ctx->service = PL_SVC_CHAT;
		ctx->obj_create = 1;
		return 1;
	}
	if (pl_files_match(ctx, path))
		return 1;
	if (!path->ptr || !id_of(path, &id, &items))
		return 0;
	if (!(is(&ctx->in.method, "GET") || (!items && is(&ctx->in.method, "DELETE"))))
		return 0;
	ctx->service = PL_SVC_CHAT;
	ctx->obj_use = 1;
	return 1;
}

/* The model of the tenant's object (kind, id), copied into ctx->obj_model; -1 when the
 * id is unknown, another tenant's, or its model is gone. */
static int owner_model(struct pl_ctx *ctx, enum obj_kind kind, const char *id, size_t len)
{
	const struct state *s = store_read_begin();
	const struct st_object *o = objects_find(state_objects(s), kind, id, len);
	const struct st_model *m = o && o->tenant_id == ctx->tenant_id ? state_find_model_id(s, o->model_id) : NULL;

	if (m)
		snprintf(ctx->obj_model, sizeof(ctx->obj_model), "%s", m->name);
	store_read_end();
	return m ? 0 : -1;
}

static enum pl_result use_object(struct pl_ctx *ctx)
{
	struct pl_str path = ctx->in.path, id;
	int items, n;

	if (path.len > 4 && memcmp(path.ptr, "/api/", 5) == 0)
		path.ptr += 4, path.len -= 4;
	id_of(&path, &id, &items);
	n = (int)(id.len > ID_ECHO_MAX ? ID_ECHO_MAX : id.len);
	if (!obj_id_valid(id.ptr, id.len) || owner_model(ctx, OBJ_RESPONSE, id.ptr, id.len) < 0)
		return pl_deny(ctx, 404, PL_R_UNKNOWN_OBJECT, "invalid_request_error", "not_found", NULL,
			       "No response found with id '%.*s'.", obj_id_valid(id.ptr, id.len) ? n : 0,
			       id.ptr);
	/* Routed as a request for the owner's model: grants, roles, routing and limits
	 * apply as to the request that created it. */
	ctx->in.model.ptr = ctx->obj_model;
	ctx->in.model.len = strlen(ctx->obj_model);
	ctx->in.model_present = 1;
	ctx->in.model_off = ctx->in.model_raw_len = -1;
	return PL_NEXT;
}

/* previous_response_id names a response of the same tenant, or the request is refused
 * (as OpenAI refuses an unknown one). The model may differ: the id only has to be the
 * tenant's. */
static enum pl_result check_previous(struct pl_ctx *ctx)
{
	const struct jscan_top *j = &ctx->json;
	int n = (int)(j->prev_len > ID_ECHO_MAX ? ID_ECHO_MAX : j->prev_len);
	char model[ST_MODEL_MAX];

	if (!j->prev_count || j->prev_type == JSCAN_NULL)
		return PL_NEXT;
	if (j->prev_count > 1)
		return pl_deny(ctx, 400, PL_R_INVALID_JSON, "invalid_request_error", "duplicate_field",
			       "previous_response_id", "The request body has more than one "
			       "'previous_response_id' field.");
	if (j->prev_type != JSCAN_STRING)
		return pl_deny(ctx, 400, PL_R_INVALID_JSON, "invalid_request_error", "invalid_type",
			       "previous_response_id", "Invalid type for 'previous_response_id': "
			       "expected a string.");
	memcpy(model, ctx->obj_model, sizeof(model));
	if (j->prev_too_long || !obj_id_valid(j->prev, j->prev_len) ||
	    owner_model(ctx, OBJ_RESPONSE, j->prev, j->prev_len) < 0)
		return pl_deny(ctx, 400, PL_R_UNKNOWN_OBJECT, "invalid_request_error",
			       "previous_response_not_found", "previous_response_id",
			       "Previous response with id '%.*s' not found.",
			       obj_id_valid(j->prev, j->prev_len) ? n : 0, j->prev);
	memcpy(ctx->obj_model, model, sizeof(model));
	return PL_NEXT;
}

enum pl_result pl_objects_check(struct pl_ctx *ctx)
{
	if (ctx->obj_op)
		return pl_files_check(ctx);
	if (ctx->obj_use)
		return use_object(ctx);
	if (ctx->obj_create)
		return check_previous(ctx);
	return PL_NEXT;
}
