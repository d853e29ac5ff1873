/* Unit tests for the adapter's table and helper modules: the provider table is complete,
 * families and kinds, the percent-encoder, the option table, the metrics page, the
 * Anthropic-client conversion's refusals. */
#include "testlib.h"

#include "adconfig.h"
#include "admetrics.h"
#include "family.h"
#include "util/pct.h"
#include "provider.h"
#include "route.h"
#include "test_adapter_helpers.h"

#include <event2/buffer.h>
#include <stdlib.h>

/* Every family has an entry that can build, answer and stream. */
static void table_complete(void)
{
	for (int f = 0; f < XL__COUNT; f++) {
		const struct provider *p = prov_get(f);
		CHECK(p != NULL);
		if (!p)
			continue;
		CHECK(p->request && p->response && p->default_url);
		CHECK(p->ops & PROV_OP(UP_CHAT));
		CHECK(p->framing == PROV_SSE ? p->sse != NULL : p->event != NULL);
		CHECK((p->auth_header != NULL) != (p->sign != NULL));
		CHECK(strcmp(xl_provider_name((enum xl_provider)f), "unknown") != 0);
	}
	CHECK(prov_get(-1) == NULL);
	CHECK(prov_get(XL__COUNT) == NULL);
	CHECK_EQ_STR(xl_provider_name(XL__COUNT), "unknown");
}

static void families_and_kinds(void)
{
	CHECK_EQ_INT(fam_of_kind("vllm", ""), XL_OPENAI);
	CHECK_EQ_INT(fam_of_kind("ollama", ""), XL_OPENAI);
	CHECK_EQ_INT(fam_of_kind("ollama", "native"), XL_OLLAMA);
	CHECK_EQ_INT(fam_of_kind("azure_openai", NULL), XL_AZURE);
	CHECK_EQ_INT(fam_of_kind("bedrock", "native"), XL_BEDROCK);
	CHECK_EQ_INT(fam_of_kind("nope", ""), -1);
	CHECK_EQ_INT(fam_of_kind(NULL, ""), -1);
	CHECK_EQ_STR(xl_provider_name(XL_AZURE), "azure_openai");
}

/* An operation the entry does not offer is a 400; a default URL with {region}. */
static void table_ops_and_urls(void)
{
	struct ad_route r;
	struct up_request u;
	struct xl_error e = { 0 };
	char err[64];
	json_t *req = J("{\"model\":\"x\",\"input\":\"hi\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");

	CHECK_EQ_INT(route_parse("p=anthropic&m=c", 15, &r, err, sizeof(err)), 0);
	CHECK_EQ_INT(up_build(&r, "/v1/embeddings", req, "k", 0, &u, &e), -1);
	CHECK_EQ_INT(e.status, 400);
	CHECK_EQ_STR(e.code, "unsupported_by_provider");
	CHECK_EQ_INT(route_parse("p=bedrock&m=a%3Ab&r=eu-west-1", 29, &r, err, sizeof(err)), 0);
	CHECK_EQ_INT(up_build(&r, "/v1/chat/completions", req, "AK:SK", 0, &u, &e), 0);
	CHECK_EQ_STR(u.url, "https://bedrock-runtime.eu-west-1.amazonaws.com/model/a%3Ab/converse");
	up_free(&u);
	CHECK_EQ_INT(route_parse("p=cohere&m=command-r", 20, &r, err, sizeof(err)), 0);
	CHECK_EQ_INT(up_build(&r, "/v1/audio/speech", req, "k", 0, &u, &e), -1);
	CHECK_EQ_STR(e.code, "unsupported_by_provider");
	json_decref(req);
}

static void percent_encoding(void)
{
	char out[64];

	CHECK_EQ_INT(pct_encode("a b%c\x01~", 7, PCT_PRINTABLE, out, sizeof(out)), 13);
	CHECK_EQ_STR(out, "a%20b%25c%01~");
	CHECK_EQ_INT(pct_encode("a/b:c", 5, PCT_UNRESERVED, out, sizeof(out)), 9);
	CHECK_EQ_STR(out, "a%2Fb%3Ac");
	CHECK_EQ_INT(pct_decode("a%2Fb%3ac", 9, out, sizeof(out)), 5);
	CHECK_EQ_STR(out, "a/b:c");
	CHECK_EQ_INT(pct_decode("abc", 3, out, 3), -1); /* no room for the NUL */
	CHECK_EQ_INT(pct_encode("abc", 3, PCT_UNRESERVED, out, 0), -1);
}

static void options(void)
{
	struct ad_config c;
	char err[128];
	char *ok[] = { "x", "--listen", "127.0.0.1:0", "--max-inflight", "7", "--max-body", "2048",
		       "--log-level", "debug", NULL };
	char *range[] = { "x", "--max-inflight", "0", NULL };
	char *unknown[] = { "x", "--nope", "1", NULL };
	char *missing[] = { "x", "--listen", NULL };
	char *level[] = { "x", "--log-level", "loud", NULL };

	adcfg_defaults(&c);
	CHECK_EQ_INT(c.max_body, 4u << 20);
	CHECK_EQ_INT(adcfg_parse(9, ok, &c, err, sizeof(err)), 0);
	CHECK_EQ_STR(c.listen, "127.0.0.1:0");
	CHECK_EQ_INT(c.max_inflight, 7);
	CHECK_EQ_INT(c.max_body, 2048);
	CHECK_EQ_INT(c.log_level, 3);
	CHECK_EQ_INT(adcfg_parse(3, range, &c, err, sizeof(err)), -1);
	CHECK(strstr(err, "from 1 to 1000000") != NULL);
	CHECK_EQ_INT(adcfg_parse(3, unknown, &c, err, sizeof(err)), -1);
	CHECK_EQ_INT(adcfg_parse(2, missing, &c, err, sizeof(err)), -1);
	CHECK_EQ_INT(adcfg_parse(3, level, &c, err, sizeof(err)), -1);
}

static void metrics_page(void)
{
	struct ad_metrics m = { 0 };
	struct evbuffer *b = evbuffer_new();
	char *text;
	size_t n;

	m.requests[XL_BEDROCK][CLIENT_ANTHROPIC] = 3;
	m.reports_failed = 2;
	m.inflight = 1;
	adm_status(&m, 503);
	adm_status(&m, 42);
	adm_render(&m, b);
	n = evbuffer_get_length(b);
	text = calloc(1, n + 1);
	evbuffer_remove(b, text, n);
	CHECK(strstr(text, "jairouter_adapter_requests_total{provider=\"bedrock\",client=\"anthropic\"} 3\n"));
	CHECK(strstr(text, "jairouter_adapter_responses_total{code=\"5xx\"} 1\n"));
	CHECK(strstr(text, "# TYPE jairouter_adapter_reports_total counter\n"
			   "jairouter_adapter_reports_total{result=\"sent\"} 0\n"
			   "jairouter_adapter_reports_total{result=\"failed\"} 2\n"));
	CHECK(strstr(text, "jairouter_adapter_inflight 1\n"));
	CHECK_EQ_INT(m.status[0], 1);
	free(text);
	evbuffer_free(b);
}

/* A Messages request without a model or max_tokens is the client's 400. */
static void messages_refusals(void)
{
	struct xl_error e = { 0 };
	json_t *req = J("{\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");

	CHECK(xl_msg_to_openai(req, &e) == NULL);
	CHECK_EQ_INT(e.status, 400);
	CHECK_EQ_STR(e.message, "model: Field required");
	json_decref(req);
	req = J("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
	CHECK(xl_msg_to_openai(req, &e) == NULL);
	CHECK_EQ_STR(e.message, "max_tokens: Field required");
	json_decref(req);
}

int main(void)
{
	RUN(table_complete);
	RUN(families_and_kinds);
	RUN(table_ops_and_urls);
	RUN(percent_encoding);
	RUN(options);
	RUN(metrics_page);
	RUN(messages_refusals);
	TEST_END();
}
