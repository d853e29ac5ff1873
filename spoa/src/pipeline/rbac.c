/*
 * rbac: role-based access control over service types and models (docs/identity.md).
 *
 * Applies to callers whose identity carries roles (ctx->rbac): every token identity, and
 * API keys that have roles in jairouter.api_key_roles. Two checks:
 *   rbac_service (after `access`):  the caller needs service:<service> (or service:*, *)
 *   rbac_model   (after `grants`):  the caller needs model:<name> (model:*, *) or
 *                                   group:<g> for a group that holds the model
 * Deny wins: a matching deny in any held role refuses, whatever the allows say. A refusal
 * is 403 permission_error `permission_denied` whose message names the permission.
 * RBAC only narrows: tenant grants, visibility and the key's model list still apply.
 */
#include "pipeline/pipeline.h"

#include "audit/audit.h"
#include "authz/ident.h"
#include "util/json.h"

#include <stdio.h>
#include <string.h>

struct want {
	enum id_perm_kind kind; /* IDP_SERVICE or IDP_MODEL */
	const char *name;
	int64_t model_id;
};

static int matches(const struct ident *id, const struct id_perm *p, const struct want *w)
{
	if (p->kind == IDP_ALL)
		return 1;
	if (p->kind == w->kind)
		return strcmp(p->target, "*") == 0 || strcmp(p->target, w->name) == 0;
	if (p->kind == IDP_GROUP && w->kind == IDP_MODEL)
		return w->model_id && ident_model_in_group(id, w->model_id, p->target);
	return 0;
}

/* 1 allowed, 0 no role grants it, -1 a role denies it (its name in denied_by). The
 * caller holds the store's read lock. */
static int evaluate(const struct ident *id, const struct pl_ctx *ctx, const struct want *w,
		    char *denied_by, size_t cap)
{
	int allowed = 0;

	for (int i = 0; i < ctx->nroles; i++) {
		const struct id_role *r = ident_role_by_id(id, ctx->role_ids[i]);
		for (int j = 0; r && j < r->nperms; j++) {
			if (!matches(id, &r->perms[j], w))
				continue;
			if (r->perms[j].deny) {
				snprintf(denied_by, cap, "%s", r->name);
				return -1;
			}
			allowed = 1;
		}
	}
	return allowed;
}

static enum pl_result check(struct pl_ctx *ctx, const struct want *w)
{
	const struct ident *id = state_ident(store_read_begin());
	const char *prefix = w->kind == IDP_SERVICE ? "service" : "model";
	char denied_by[IDENT_NAME_MAX] = "", perm[IDENT_PERM_TARGET_MAX + 16];
	int rc = evaluate(id, ctx, w, denied_by, sizeof(denied_by));

	store_read_end();
	snprintf(perm, sizeof(perm), "%s:%s", prefix, w->name);
	if (rc < 0) {
		pl_audit(ctx, "permission_denied", perm, 403);
		ctx->out.backend[0] = ctx->out.upstream_model[0] = '\0';
		return pl_deny(ctx, 403, PL_R_PERMISSION_DENIED, "permission_error", "permission_denied", NULL,
			       "The permission '%s' is denied by your role '%s'.", perm, denied_by);
	}
	if (rc == 0) {
		pl_audit(ctx, "permission_denied", perm, 403);
		ctx->out.backend[0] = ctx->out.upstream_model[0] = '\0';
		return pl_deny(ctx, 403, PL_R_PERMISSION_DENIED, "permission_error", "permission_denied", NULL,
			       "Your roles do not grant the permission '%s'.", perm);
	}
	return PL_NEXT;
}

int pl_rbac_allows_model(const struct state *s, const struct pl_ctx *ctx, const struct st_model *m)
{
	struct want w = { IDP_MODEL, m->name, m->id };
	char denied_by[IDENT_NAME_MAX];

	return !ctx->rbac || evaluate(state_ident(s), ctx, &w, denied_by, sizeof(denied_by)) > 0;
}

enum pl_result pl_stage_rbac_service(struct pl_ctx *ctx)
{
	/* GET /v1/models/{id} is part of the `models` service type. */
	struct want w = { IDP_SERVICE, pl_service_name(ctx->service == PL_SVC_MODEL_GET ? PL_SVC_MODELS
											: ctx->service), 0 };

	return ctx->rbac ? check(ctx, &w) : PL_NEXT;
}

enum pl_result pl_stage_rbac_model(struct pl_ctx *ctx)
{
	struct want w = { IDP_MODEL, ctx->out.model, 0 };
	const struct st_model *m;

	if (!ctx->rbac || !ctx->out.model[0])
		return PL_NEXT;
	m = state_find_model(store_read_begin(), ctx->out.model, strlen(ctx->out.model));
	w.model_id = m ? m->id : 0;
	store_read_end();
	return check(ctx, &w);
}

unsigned pl_rbac_actions(const struct pl_ctx *ctx, struct jbuf *roles)
{
	static const struct {
		const char *name;
		unsigned bit;
	} actions[] = { { "admin", PL_ACT_ADMIN }, { "usage:read", PL_ACT_USAGE_READ },
			{ "audit:read", PL_ACT_AUDIT_READ } };
	const struct ident *id = state_ident(store_read_begin());
	char denied_by[IDENT_NAME_MAX];
	unsigned held = 0;

	for (int i = 0; i < ctx->nroles; i++) {
		const struct id_role *r = ident_role_by_id(id, ctx->role_ids[i]);
		if (!r)
			continue;
		jbuf_puts(roles, roles->len ? "," : "");
		jbuf_put_string(roles, r->name, strlen(r->name));
	}
	for (size_t i = 0; ctx->rbac && i < sizeof(actions) / sizeof(actions[0]); i++) {
		struct want w = { IDP_ACTION, actions[i].name, 0 };
		if (evaluate(id, ctx, &w, denied_by, sizeof(denied_by)) > 0)
			held |= actions[i].bit;
	}
	store_read_end();
	return held;
}
