/*
 * xlate_openai: the OpenAI-compatible family (OpenAI, Azure OpenAI, vLLM, Ollama,
 * GPUStack, Xinference, LocalAI, DashScope, Hunyuan, Hugging Face TGI): the entries
 * prov_openai and prov_azure.
 *
 * OpenAI-compatible requests keep every field the client sent (only "model" changes);
 * streamed ones that must be metered get stream_options.include_usage, and the extra
 * usage-only chunk this asks for is dropped again when the client did not want it.
 */
#include "provider.h"
#include "route.h"
#include "xlate_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int xl_is_responses(const char *path)
{
	return strcmp(path, "/v1/responses") == 0;
}

json_t *xl_openai_request(const json_t *req, const char *model, int meter, int *added,
			  struct xl_error *e)
{
	json_t *out = json_deep_copy(req), *so;

	*added = 0;
	if (!out) {
		xl_fail(e, 500, "server_error", "gateway_error", "Out of memory.");
		return NULL;
	}
	json_object_set_new(out, "model", json_string(model));
	if (meter && json_is_true(json_object_get(req, "stream"))) {
		so = json_object_get(out, "stream_options");
		if (!json_is_object(so)) {
			so = json_object();
			json_object_set_new(out, "stream_options", so);
		}
		if (!json_is_true(json_object_get(so, "include_usage"))) {
			json_object_set_new(so, "include_usage", json_true());
			*added = 1;
		}
	}
	return out;
}

void xl_openai_response(json_t *resp, const struct xl_meta *m, struct xl_usage *u)
{
	const json_t *usage = json_object_get(resp, "usage");

	if (json_is_object(usage) && json_object_get(usage, "input_tokens")) {
		/* A Responses API answer. */
		u->prompt = json_integer_value(json_object_get(usage, "input_tokens"));
		u->completion = json_integer_value(json_object_get(usage, "output_tokens"));
		u->have = 1;
	} else if (json_is_object(usage)) {
		u->prompt = json_integer_value(json_object_get(usage, "prompt_tokens"));
		u->completion = json_integer_value(json_object_get(usage, "completion_tokens"));
		u->have = 1;
	}
	if (m->model && json_is_string(json_object_get(resp, "model")))
		json_object_set_new(resp, "model", json_string(m->model));
}

/* An event of the Responses API (OpenAI's "Streaming responses" reference): the
 * response object of response.created, .in_progress, .completed, .incomplete and
 * .failed carries the id and, at the end, the usage; its model becomes the public
 * name. Everything passes through as it came. */
static int responses_sse(struct xl_stream *s, json_t *j)
{
	json_t *r = json_object_get(j, "response");
	const json_t *usage = json_object_get(r, "usage");
	const char *type = json_string_value(json_object_get(j, "type")), *id;

	if (!type) {
		xl_fail(&s->err, 502, "server_error", "bad_upstream_stream",
			"The model provider sent a Responses API event without a type.");
		return -1;
	}
	if (json_is_object(r)) {
		if ((id = json_string_value(json_object_get(r, "id"))) && !s->object_id[0])
			snprintf(s->object_id, sizeof(s->object_id), "%s", id);
		if (json_is_string(json_object_get(r, "model")))
			json_object_set_new(r, "model", json_string(s->model));
	}
	if (json_is_object(usage)) {
		s->usage.prompt = json_integer_value(json_object_get(usage, "input_tokens"));
		s->usage.completion = json_integer_value(json_object_get(usage, "output_tokens"));
		s->usage.have = 1;
	}
	if (strcmp(type, "response.output_text.delta") == 0 &&
	    json_is_string(json_object_get(j, "delta")))
		s->completion_chars += (int64_t)json_string_length(json_object_get(j, "delta"));
	s->emit(s->arg, j);
	return 0;
}

/* A chunk from an OpenAI-compatible server: usage read, the public model name set,
 * the usage-only chunk dropped when we asked for it and the client did not. */
static int openai_sse(struct xl_stream *s, const char *event, json_t *j)
{
	const json_t *usage = json_object_get(j, "usage"), *choices = json_object_get(j, "choices"), *c;
	const json_t *err = json_object_get(j, "error");
	size_t i;

	(void)event;
	if (s->responses)
		return responses_sse(s, j);
	if (json_is_object(err)) {
		xl_fail(&s->err, 502, "server_error", "upstream_error",
			"The model provider failed during the stream: %.180s",
			json_string_value(json_object_get(err, "message")) ?: "no message");
		return -1;
	}
	if (json_is_object(usage)) {
		s->usage.prompt = json_integer_value(json_object_get(usage, "prompt_tokens"));
		s->usage.completion = json_integer_value(json_object_get(usage, "completion_tokens"));
		s->usage.have = 1;
	}
	json_array_foreach(choices, i, c) {
		const json_t *d = json_object_get(c, "delta");
		const char *t = json_string_value(json_object_get(d, "content"));
		if (t)
			s->completion_chars += (int64_t)strlen(t);
	}
	if (s->strip_usage && json_is_object(usage)) {
		if (!json_array_size(choices))
			return 0; /* the usage-only chunk we asked for */
		json_object_del(j, "usage");
	}
	if (json_is_string(json_object_get(j, "model")))
		json_object_set_new(j, "model", json_string(s->model));
	s->emit(s->arg, j);
	return 0;
}

/* ---- the entries --------------------------------------------------------------------- */

#define AZURE_API_VERSION "2024-10-21"

/* Every /v1/... path is forwarded under the base URL (which ends in /v1). */
static json_t *openai_build(const struct prov_call *c, struct up_request *u, struct xl_error *e)
{
	const char *sub = strncmp(c->path, "/v1/", 4) == 0 ? c->path + 3 : c->path;
	json_t *body = xl_openai_request(c->req, c->route->model, c->route->meter && !xl_is_responses(c->path),
					 &u->added_usage, e);

	if (body && up_url(u, c->base, "%s", sub) < 0)
		return xl_url_failed(body, e);
	return body;
}

/* Azure names the deployment (the upstream model) in the path. */
static json_t *azure_build(const struct prov_call *c, struct up_request *u, struct xl_error *e)
{
	const struct ad_route *r = c->route;
	const char *sub = strncmp(c->path, "/v1/", 4) == 0 ? c->path + 4 : c->path;
	json_t *body = xl_openai_request(c->req, r->model, r->meter && !xl_is_responses(c->path),
					 &u->added_usage, e);

	if (body && up_url(u, c->base, "/openai/deployments/%s/%s?api-version=%s", c->model_enc, sub,
			   r->api_version[0] ? r->api_version : AZURE_API_VERSION) < 0)
		return xl_url_failed(body, e);
	return body;
}

static json_t *openai_answer(json_t *resp, const struct prov_answer *a, struct xl_usage *u,
			     struct xl_error *e)
{
	(void)e;
	xl_openai_response(resp, a->meta, u);
	return json_incref(resp);
}

const struct provider prov_openai = {
	.default_url = "https://api.openai.com/v1",
	.framing = PROV_SSE,
	.ops = PROV_ALL_OPS,
	.openai_compatible = 1,
	.auth_header = "Authorization",
	.auth_scheme = "Bearer ",
	.request = openai_build,
	.response = openai_answer,
	.sse = openai_sse,
};

/* A JSON credential is an Entra ID application's client credentials; else an API key. */
static enum oa_grant azure_grant(const char *secret)
{
	return oa_grant_of(secret, OA_ENTRA);
}

const struct provider prov_azure = {
	.default_url = "",
	.framing = PROV_SSE,
	.ops = PROV_ALL_OPS,
	.openai_compatible = 1,
	.auth_header = "api-key",
	.grant = azure_grant,
	.request = azure_build,
	.response = openai_answer,
	.sse = openai_sse,
};
