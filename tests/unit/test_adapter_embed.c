/* Embeddings translated for Cohere (embed v2) and Bedrock (InvokeModel: Amazon Titan text
 * embeddings, Cohere Embed on Bedrock), from the providers' documented request and answer
 * shapes: requests, answers as OpenAI's list with usage, the URLs, refusals. */
#include "testlib.h"

#include "provider.h"
#include "route.h"
#include "test_adapter_helpers.h"
#include "xlate.h"

static void cohere_embed(void)
{
	json_t *req = J("{\"model\":\"pub\",\"input\":[\"hello\",\"world\"],\"dimensions\":256}"), *out;
	struct xl_usage u = { 0 };
	struct xl_error e;

	out = xl_cohere_embed_request(req, "embed-v4.0", &e);
	CHECK(PEQ(out, "", "{\"model\":\"embed-v4.0\",\"texts\":[\"hello\",\"world\"],\"input_type\":\"search_document\","
			   "\"embedding_types\":[\"float\"],\"output_dimension\":256}"));
	json_decref(out);
	json_decref(req);
	/* Cohere's documented v2 answer. */
	req = J("{\"id\":\"da6e531f\",\"embeddings\":{\"float\":[[0.016296387,-0.008354187],[-0.04,0.5]]},"
		"\"texts\":[\"hello\",\"world\"],\"meta\":{\"api_version\":{\"version\":\"2\"},\"billed_units\":{\"input_tokens\":2}}}");
	out = xl_cohere_embed_response(req, "pub", &u, &e);
	CHECK(PEQ(out, "", "{\"object\":\"list\",\"model\":\"pub\",\"data\":[{\"object\":\"embedding\",\"index\":0,"
			   "\"embedding\":[0.016296387,-0.008354187]},{\"object\":\"embedding\",\"index\":1,\"embedding\":[-0.04,0.5]}],"
			   "\"usage\":{\"prompt_tokens\":2,\"total_tokens\":2}}"));
	CHECK_EQ_INT(u.have, 1);
	CHECK_EQ_INT(u.prompt, 2);
	json_decref(out);
	json_decref(req);
	/* Token arrays, nothing to embed, an answer without vectors. */
	check_refused(xl_cohere_embed_request, "m", "{\"input\":[[1,2,3]]}", 400, NULL);
	check_refused(xl_cohere_embed_request, "m", "{\"input\":[]}", 0, NULL);
	req = J("{\"embeddings\":{\"int8\":[[1]]}}");
	CHECK(xl_cohere_embed_response(req, "m", &u, &e) == NULL);
	CHECK_EQ_INT(e.status, 502);
	json_decref(req);
}

static void bedrock_embed(void)
{
	json_t *req = J("{\"model\":\"pub\",\"input\":\"hello\",\"dimensions\":512}"), *out;
	struct xl_usage u = { 0 };
	struct xl_error e;

	/* Titan: one text. */
	out = xl_bedrock_embed_request(req, "amazon.titan-embed-text-v2:0", &e);
	CHECK(PEQ(out, "", "{\"inputText\":\"hello\",\"dimensions\":512}"));
	json_decref(out);
	out = xl_bedrock_embed_request(req, "cohere.embed-english-v3", &e);
	CHECK(PEQ(out, "", "{\"texts\":[\"hello\"],\"input_type\":\"search_document\"}"));
	json_decref(out);
	json_decref(req);
	req = J("{\"input\":[\"a\",\"b\"]}");
	CHECK(xl_bedrock_embed_request(req, "amazon.titan-embed-text-v2:0", &e) == NULL);
	CHECK_EQ_INT(e.status, 400);
	CHECK(strstr(e.message, "one text") != NULL);
	out = xl_bedrock_embed_request(req, "us.cohere.embed-multilingual-v3", &e);
	CHECK(PEQ(out, "texts", "[\"a\",\"b\"]"));
	json_decref(out);
	json_decref(req);

	/* The documented answers: Titan's, Cohere on Bedrock's. */
	req = J("{\"embedding\":[0.1,-0.2,0.3],\"inputTextTokenCount\":3}");
	out = xl_bedrock_embed_response(req, "pub", &u, &e);
	CHECK(PEQ(out, "data", "[{\"object\":\"embedding\",\"index\":0,\"embedding\":[0.1,-0.2,0.3]}]"));
	CHECK(PEQ(out, "usage", "{\"prompt_tokens\":3,\"total_tokens\":3}"));
	CHECK_EQ_INT(u.have, 1);
	json_decref(out);
	json_decref(req);
	req = J("{\"embeddings\":[[0.5],[0.25]],\"id\":\"x\",\"response_type\":\"embeddings_floats\",\"texts\":[\"a\",\"b\"]}");
	out = xl_bedrock_embed_response(req, "pub", &u, &e);
	CHECK_EQ_INT(json_array_size(P(out, "data")), 2);
	CHECK(PEQ(out, "data.1.embedding", "[0.25]"));
	CHECK_EQ_INT(u.have, 0);
	json_decref(out);
	json_decref(req);
	req = J("{\"message\":\"nothing\"}");
	CHECK(xl_bedrock_embed_response(req, "pub", &u, &e) == NULL);
	json_decref(req);
}

static void embed_requests(void)
{
	json_t *req = J("{\"model\":\"pub\",\"input\":\"hi\"}");
	struct ad_route r;
	struct up_request u;
	struct xl_error e;
	char err[64];
	const char *h;

	h = "p=bedrock&r=eu-west-1&m=amazon.titan-embed-text-v2%3A0";
	CHECK_EQ_INT(route_parse(h, strlen(h), &r, err, sizeof(err)), 0);
	CHECK_EQ_INT(up_build(&r, "/v1/embeddings", req, "AKIDEXAMPLE:secret", 1440938160, &u, &e), 0);
	CHECK_EQ_STR(u.url, "https://bedrock-runtime.eu-west-1.amazonaws.com/model/amazon.titan-embed-text-v2%3A0/invoke");
	CHECK_EQ_INT(u.stream, 0);
	CHECK(strncmp(u.headers[2], "Authorization: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/", 55) == 0);
	up_free(&u);
	h = "p=cohere&m=embed-v4.0";
	CHECK_EQ_INT(route_parse(h, strlen(h), &r, err, sizeof(err)), 0);
	CHECK_EQ_INT(up_build(&r, "/v1/embeddings", req, "ck", 0, &u, &e), 0);
	CHECK_EQ_STR(u.url, "https://api.cohere.com/v2/embed");
	CHECK_EQ_STR(u.headers[0], "Authorization: Bearer ck");
	CHECK_EQ_INT(u.embed_base64, 0);
	up_free(&u);
	json_decref(req);
}

/* encoding_format "base64" (the openai SDKs' default): little-endian float32, base64. */
static void base64_vectors(void)
{
	json_t *req = J("{\"model\":\"pub\",\"input\":\"hi\",\"encoding_format\":\"base64\"}");
	json_t *resp = J("{\"embedding\":[1.0,-2.0,0.5],\"inputTextTokenCount\":1}"), *out;
	struct xl_meta meta = { "id", "pub", 0 };
	struct prov_answer a = { &meta, UP_EMBED, 0, 1, NULL, NULL };
	struct xl_usage usage = { 0 };
	struct ad_route r;
	struct up_request u;
	struct xl_error e;
	char err[64];

	CHECK_EQ_INT(route_parse("p=bedrock&m=amazon.titan-embed-text-v2%3A0", 42, &r, err, sizeof(err)), 0);
	CHECK_EQ_INT(up_build(&r, "/v1/embeddings", req, "AK:SK", 0, &u, &e), 0);
	CHECK_EQ_INT(u.embed_base64, 1);
	up_free(&u);
	/* 1.0 = 00 00 80 3f, -2.0 = 00 00 00 c0, 0.5 = 00 00 00 3f */
	out = prov_response(XL_BEDROCK, resp, &a, &usage, &e);
	CHECK_EQ_STR(PS(out, "data.0.embedding"), "AACAPwAAAMAAAAA/");
	json_decref(out);
	json_decref(resp);
	/* OpenAI-compatible servers encode themselves. */
	CHECK_EQ_INT(route_parse("p=vllm&u=http%3A%2F%2Fh%2Fv1&m=e5", 33, &r, err, sizeof(err)), 0);
	CHECK_EQ_INT(up_build(&r, "/v1/embeddings", req, NULL, 0, &u, &e), 0);
	CHECK_EQ_INT(u.embed_base64, 0);
	up_free(&u);
	json_decref(req);
}

int main(void)
{
	RUN(cohere_embed);
	RUN(bedrock_embed);
	RUN(embed_requests);
	RUN(base64_vectors);
	TEST_END();
}
