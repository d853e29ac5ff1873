/*
 * Fuzz target: the provider table's request builders and response translators on
 * arbitrary JSON. Byte 0 picks the provider family, byte 1 the client's path (chat,
 * embeddings, another /v1 path, or an Anthropic-style /v1/messages request converted
 * first; with bit 7, a Responses API request converted first), streaming and metering;
 * the rest is the body. The same JSON is then taken as
 * the provider's answer (response translators, the Anthropic-client conversion) and as
 * a provider's error body. Properties besides memory safety: a built request has a URL,
 * a JSON body and at most UP_HEADERS_MAX headers; every refusal carries a 4xx/5xx
 * status, an error type and a message; a translated answer is a JSON object.
 */
#include "provider.h"
#include "route.h"
#include "upstream.h"
#include "xlate.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_error(const struct xl_error *e)
{
	if (e->status < 400 || e->status > 599 || !e->type || !e->message[0])
		__builtin_trap();
}

static void check_request(const struct up_request *u)
{
	json_t *body;

	if (!u->url[0] || !u->body || u->nheaders > UP_HEADERS_MAX || strlen(u->body) != u->body_len)
		__builtin_trap();
	if (!(body = json_loadb(u->body, u->body_len, 0, NULL)))
		__builtin_trap();
	json_decref(body);
}

static void build(int family, int flags, const char *path, const json_t *req)
{
	struct ad_route r = { 0 };
	struct up_request u;
	struct xl_error e = { 0 };

	r.family = family;
	snprintf(r.provider, sizeof(r.provider), "%s", xl_provider_name((enum xl_provider)family));
	snprintf(r.model, sizeof(r.model), "%s", flags & 8 ? "anthropic.claude-v2:1" : "model/with space");
	snprintf(r.public_model, sizeof(r.public_model), "public");
	snprintf(r.base_url, sizeof(r.base_url), "%s", flags & 16 ? "http://127.0.0.1:9/v1/" : "");
	snprintf(r.region, sizeof(r.region), "%s", flags & 32 ? "eu-west-1" : "");
	r.meter = (flags & 4) != 0;
	if (up_build(&r, path, req, flags & 64 ? "AKID:SECRET:TOKEN" : "AKID:SECRET", 1700000000, &u, &e) < 0) {
		check_error(&e);
		return;
	}
	check_request(&u);
	up_free(&u);
}

/* The same JSON as the provider's answer and as its error body. */
static void answer(int family, int op, json_t *resp, const uint8_t *raw, size_t size)
{
	struct xl_meta meta = { "chatcmpl-x", "public", 1 };
	struct prov_answer a = { &meta, (enum up_op)op, op == UP_EMBED, 0, NULL, NULL };
	struct xl_usage usage = { 0 };
	struct xl_error e = { 0 };
	json_t *out = prov_response((enum xl_provider)family, resp, &a, &usage, &e), *msg;

	if (!out) {
		check_error(&e);
	} else {
		if (!json_is_object(out))
			__builtin_trap();
		if (op == UP_CHAT && (msg = xl_openai_to_msg(out)))
			json_decref(msg);
		if (op == UP_CHAT) {
			struct xl_resp_meta rm = { "resp_x", "public", 1, resp };
			if (!(msg = xl_openai_to_resp(out, &rm)) || !json_is_object(msg))
				__builtin_trap();
			json_decref(msg);
		}
		json_decref(out);
	}
	xl_upstream_error((enum xl_provider)family, 400 + (long)(size % 200), (const char *)raw, size, &e);
	check_error(&e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const paths[] = { "/v1/chat/completions", "/v1/embeddings", "/v1/audio/speech",
					     "/v1/messages" };
	struct xl_error e = { 0 };
	json_t *req, *oreq;
	int family, flags;

	if (size < 2)
		return 0;
	family = data[0] % XL__COUNT;
	flags = data[1];
	if (!(req = json_loadb((const char *)data + 2, size - 2, 0, NULL)))
		return 0;
	if (flags & 128) {
		if ((oreq = xl_resp_to_openai(req, &e))) {
			build(family, flags, paths[0], oreq);
			json_decref(oreq);
		} else {
			check_error(&e);
		}
	} else if ((flags & 3) == 3) {
		if ((oreq = xl_msg_to_openai(req, &e))) {
			build(family, flags, paths[0], oreq);
			json_decref(oreq);
		} else {
			check_error(&e);
		}
	} else {
		build(family, flags, paths[flags & 3], req);
	}
	if (json_is_object(req))
		answer(family, (flags & 3) == 1 ? UP_EMBED : UP_CHAT, req, data + 2, size - 2);
	json_decref(req);
	return 0;
}
