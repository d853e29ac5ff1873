/*
 * Tenant policy stages (docs/tenancy.md):
 *
 *   identity -> tenant -> client_ip -> request -> access -> authz -> grants -> route
 *
 * client_ip: the tenant's and the key's client network allow-lists (403), and the
 *            tenant's on_error setting for the rest of the decision.
 * access:    the tenant's service types (403); a private model the tenant may not use,
 *            named directly, is refused exactly like an unknown model (404) before the
 *            catalogue stage can say anything about it (disabled, wrong service...).
 * grants:    the resolved model against grants and visibility (404 as unknown), the
 *            key's model list (403), and the provider credential HAProxy injects.
 *
 * Each stage copies what it needs under the store's read lock and decides after.
 */
#include "pipeline/pipeline.h"

#include "state/policy.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#define MODEL_ECHO_MAX 128 /* as stages.c: longest model name quoted back */

static int echo_len(size_t len)
{
	return (int)(len > MODEL_ECHO_MAX ? MODEL_ECHO_MAX : len);
}

/* The same answer as for a model that does not exist (stages.c): nothing tells a
 * tenant that another tenant's private model is there. */
static enum pl_result deny_as_unknown(struct pl_ctx *ctx, const char *name, size_t len)
{
	ctx->out.backend[0] = '\0';
	ctx->out.model[0] = '\0';
	return pl_deny(ctx, 404, PL_R_MODEL_NOT_GRANTED, "invalid_request_error", "model_not_found",
		       "model", "The model `%.*s` does not exist or you do not have access to it.",
		       echo_len(len), name ? name : "");
}

static void format_ip(const struct pl_request *in, char *buf, size_t cap)
{
	if (in->src_family == 4)
		inet_ntop(AF_INET, in->src, buf, (socklen_t)cap);
	else if (in->src_family == 6)
		inet_ntop(AF_INET6, in->src, buf, (socklen_t)cap);
	else
		snprintf(buf, cap, "an unknown address");
}

enum pl_result pl_stage_client_ip(struct pl_ctx *ctx)
{
	const struct pl_request *in = &ctx->in;
	const struct policy *p = state_policy(store_read_begin());
	const struct pol_tenant *t = policy_tenant(p, ctx->tenant_id);
	const struct pol_key *k = policy_key(p, ctx->key_id);
	int tenant_ok = !t || policy_ip_allowed(&t->ips, in->src_family, in->src);
	int key_ok = !k || policy_ip_allowed(&k->ips, in->src_family, in->src);
	char ip[INET6_ADDRSTRLEN + 1];

	if (t && t->on_error != POL_ON_ERROR_DEFAULT)
		ctx->policy.on_error_allow = t->on_error == POL_FAIL_OPEN;
	store_read_end();
	if (tenant_ok && key_ok)
		return PL_NEXT;
	format_ip(in, ip, sizeof(ip));
	return pl_deny(ctx, 403, PL_R_IP_NOT_ALLOWED, "permission_error", "ip_not_allowed", NULL,
		       "Requests from %s are not allowed for this %s. Contact your administrator.",
		       ip, tenant_ok ? "API key" : "tenant");
}

/* The service type name of jairouter.service_names(); GET /v1/models/{id} is "models". */
static int service_bit(enum pl_service svc)
{
	const char *name = svc == PL_SVC_MODEL_GET ? "models" : pl_service_name(svc);

	return policy_service_bit(name, strlen(name));
}

static int answered_here(enum pl_service svc)
{
	return svc == PL_SVC_MODELS || svc == PL_SVC_MODEL_GET;
}

enum pl_result pl_stage_access(struct pl_ctx *ctx)
{
	const struct pl_request *in = &ctx->in;
	const struct state *s = store_read_begin();
	const struct policy *p = state_policy(s);
	const struct pol_tenant *t = policy_tenant(p, ctx->tenant_id);
	uint32_t services = t ? t->services : POL_SERVICES_ALL;
	const struct st_model *m = NULL;
	int bit = service_bit(ctx->service), hidden = 0;

	if (!answered_here(ctx->service) && in->model.ptr)
		m = state_resolve_model(s, in->model.ptr, in->model.len);
	if (m)
		hidden = !policy_model_access(p, ctx->tenant_id, m->id);
	store_read_end();
	if (services != POL_SERVICES_ALL && (bit < 0 || !(services & (1u << bit))))
		return pl_deny(ctx, 403, PL_R_SERVICE_NOT_ALLOWED, "permission_error",
			       "service_not_allowed", NULL,
			       "This tenant may not use the '%s' service. Contact your administrator.",
			       ctx->service == PL_SVC_MODEL_GET ? "models" : pl_service_name(ctx->service));
	if (hidden)
		return deny_as_unknown(ctx, in->model.ptr, in->model.len);
	return PL_NEXT;
}

int pl_model_visible(const struct state *s, const struct pl_ctx *ctx, const struct st_model *m)
{
	return policy_model_usable(state_policy(s), ctx->tenant_id, ctx->key_id, m->id, m->name);
}

/* What the grants stage learns under the lock. */
struct grant_view {
	int found, usable, key_allows, cred_broken;
};

static void grant_look(struct pl_ctx *ctx, struct grant_view *g)
{
	const struct state *s = store_read_begin();
	const struct policy *p = state_policy(s);
	const struct st_model *m = state_find_model(s, ctx->out.model, strlen(ctx->out.model));
	const struct pol_cred *c;

	memset(g, 0, sizeof(*g));
	if ((g->found = m != NULL)) {
		g->usable = policy_model_access(p, ctx->tenant_id, m->id);
		g->key_allows = policy_key_allows_model(policy_key(p, ctx->key_id), m->name);
	}
	c = policy_credential(p, m ? m->id : 0, ctx->out.backend);
	if (c && c->broken)
		g->cred_broken = 1;
	else if (c && c->len < sizeof(ctx->out.up_value)) {
		memcpy(ctx->out.up_value, c->value, c->len);
		ctx->out.up_len = c->len;
		ctx->out.up_header = (int)c->header;
	}
	store_read_end();
}

enum pl_result pl_stage_grants(struct pl_ctx *ctx)
{
	const struct pl_request *in = &ctx->in;
	struct grant_view g;

	if (answered_here(ctx->service) || ctx->out.respond || !ctx->out.model[0])
		return PL_NEXT;
	grant_look(ctx, &g);
	if (!g.found || !g.usable)
		return deny_as_unknown(ctx, in->model.ptr, in->model.len);
	if (!g.key_allows)
		return pl_deny(ctx, 403, PL_R_MODEL_NOT_ALLOWED, "permission_error", "model_not_allowed",
			       "model", "This API key may not use the model `%.*s`.",
			       echo_len(strlen(ctx->out.model)), ctx->out.model);
	if (g.cred_broken) {
		ctx->out.backend[0] = '\0'; /* never fail open without the credential */
		return pl_deny(ctx, 503, PL_R_CREDENTIAL_UNAVAILABLE, "server_error",
			       "upstream_credential_unavailable", NULL,
			       "The gateway cannot use its provider credential for this model. "
			       "Contact your administrator.");
	}
	return PL_NEXT;
}
