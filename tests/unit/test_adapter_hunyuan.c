/* Tencent Hunyuan's native API: the TC3-HMAC-SHA256 signature against the published
 * example of Tencent Cloud's signature v3 documentation (CVM DescribeInstances,
 * timestamp 1551113065), and the translators on the API's documented shapes. */
#include "testlib.h"

#include "provider.h"
#include "route.h"
#include "tc3.h"
#include "test_adapter_helpers.h"
#include "xlate.h"

static const struct xl_meta META = { "req-1", "public-model", 1700000000 };

static void tc3_published_example(void)
{
	/* The documentation's request: its key (masked there as shown), payload and time. */
	const char *payload = "{\"Limit\": 1, \"Filters\": [{\"Values\": [\"\\u672a\\u547d\\u540d\"], \"Name\": \"instance-name\"}]}";
	struct tc3_request r = { "AKIDz8krbsJ5yKBZQpn74WFkmLPx3*******", "Gu5t9xGARNpq86cd98joQYCN3*******", "cvm",
				 "cvm.tencentcloudapi.com", "application/json; charset=utf-8", payload, strlen(payload),
				 1551113065 };
	char auth[TC3_AUTH_MAX];

	CHECK_EQ_INT(tc3_sign(&r, auth, sizeof(auth)), 0);
	CHECK_EQ_STR(auth, "TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3*******/2019-02-25/cvm/tc3_request, "
			   "SignedHeaders=content-type;host, Signature=2230eefd229f582d8b1b891af7107b91597240707d778ab3738f756258d7652c");
	/* One byte of the payload changes the signature; a missing field or no room fails. */
	r.payload_len--;
	CHECK_EQ_INT(tc3_sign(&r, auth, sizeof(auth)), 0);
	CHECK(strstr(auth, "2230eefd229f") == NULL);
	CHECK_EQ_INT(tc3_sign(&r, auth, 64), -1);
	r.secret_key = NULL;
	CHECK_EQ_INT(tc3_sign(&r, auth, sizeof(auth)), -1);
}

static void hunyuan_request_and_answer(void)
{
	json_t *req = J("{\"model\":\"pub\",\"stream\":true,\"temperature\":0.5,\"messages\":["
			"{\"role\":\"system\",\"content\":\"Be brief.\"},{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Hi\"}]}]}");
	json_t *out, *resp;
	struct xl_usage u = { 0 };
	struct xl_error e;

	out = xl_hunyuan_request(req, "hunyuan-lite", &e);
	CHECK(PEQ(out, "", "{\"Model\":\"hunyuan-lite\",\"Messages\":[{\"Role\":\"system\",\"Content\":\"Be brief.\"},"
			   "{\"Role\":\"user\",\"Content\":\"Hi\"}],\"Stream\":true,\"Temperature\":0.5}"));
	json_decref(out);
	json_decref(req);
	check_refused(xl_hunyuan_request, "m",
		      "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":[]}", 0, "unsupported_by_provider");
	check_refused(xl_hunyuan_request, "m",
		      "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":{\"url\":\"u\"}}]}]}", 0, NULL);

	/* The API's documented answer and error shapes. */
	resp = J("{\"Response\":{\"RequestId\":\"a1\",\"Note\":\"n\",\"Choices\":[{\"FinishReason\":\"stop\",\"Message\":"
		 "{\"Role\":\"assistant\",\"Content\":\"Hello!\"}}],\"Created\":1715330000,\"Id\":\"a1\","
		 "\"Usage\":{\"PromptTokens\":3,\"CompletionTokens\":2,\"TotalTokens\":5}}}");
	out = xl_hunyuan_response(resp, &META, &u, &e);
	CHECK_EQ_STR(PS(out, "id"), "a1");
	CHECK_EQ_STR(PS(out, "choices.0.message.content"), "Hello!");
	CHECK_EQ_STR(PS(out, "choices.0.finish_reason"), "stop");
	CHECK(PEQ(out, "usage", "{\"prompt_tokens\":3,\"completion_tokens\":2,\"total_tokens\":5}"));
	json_decref(out);
	json_decref(resp);
	resp = J("{\"Response\":{\"Error\":{\"Code\":\"AuthFailure.SignatureFailure\",\"Message\":\"The provided credentials "
		 "could not be validated.\"},\"RequestId\":\"r\"}}");
	CHECK(xl_hunyuan_response(resp, &META, &u, &e) == NULL);
	CHECK_EQ_INT(e.status, 502);
	CHECK_EQ_STR(e.code, "upstream_authentication_failed");
	json_decref(resp);
	resp = J("{\"Response\":{\"Error\":{\"Code\":\"LimitExceeded\",\"Message\":\"slow down\"}}}");
	CHECK(xl_hunyuan_response(resp, &META, &u, &e) == NULL);
	CHECK_EQ_INT(e.status, 429);
	json_decref(resp);
}

static void hunyuan_stream_and_signing(void)
{
	json_t *chunks, *req = J("{\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]}");
	struct ad_route r;
	struct up_request u;
	struct xl_error e;
	char err[64];
	const char *ev1 = "{\"Note\":\"n\",\"Choices\":[{\"Delta\":{\"Role\":\"assistant\",\"Content\":\"Hel\"},\"FinishReason\":\"\"}],"
			  "\"Created\":1,\"Id\":\"x\",\"Usage\":{\"PromptTokens\":3,\"CompletionTokens\":1,\"TotalTokens\":4}}";
	const char *ev2 = "{\"Choices\":[{\"Delta\":{\"Role\":\"assistant\",\"Content\":\"lo\"},\"FinishReason\":\"stop\"}],"
			  "\"Usage\":{\"PromptTokens\":3,\"CompletionTokens\":2,\"TotalTokens\":5}}";

	chunks = stream_of_two(XL_HUNYUAN, &META, NULL, ev1, ev2);
	check_hello_chunks(chunks);
	json_decref(chunks);

	CHECK_EQ_INT(fam_of_kind("hunyuan", "native"), XL_HUNYUAN);
	CHECK_EQ_INT(fam_of_kind("hunyuan", NULL), XL_OPENAI);
	CHECK_EQ_INT(route_parse("p=hunyuan&av=native&r=ap-guangzhou&m=hunyuan-lite", 48, &r, err, sizeof(err)), 0);
	CHECK_EQ_INT(up_build(&r, "/v1/chat/completions", req, "AKIDtest:secretkey", 1551113065, &u, &e), 0);
	CHECK_EQ_STR(u.url, "https://hunyuan.tencentcloudapi.com/");
	CHECK_EQ_INT(header_count(&u, "X-TC-Action: ChatCompletions", 0), 1);
	CHECK_EQ_INT(header_count(&u, "X-TC-Version: 2023-09-01", 0), 1);
	CHECK_EQ_INT(header_count(&u, "X-TC-Region: ap-guangzhou", 0), 1);
	CHECK_EQ_INT(header_count(&u, "X-TC-Timestamp: 1551113065", 0), 1);
	CHECK_EQ_INT(header_count(&u, "Authorization: TC3-HMAC-SHA256 Credential=AKIDtest/2019-02-25/hunyuan/tc3_request, "
				      "SignedHeaders=content-type;host, Signature=", 1), 1);
	up_free(&u);
	CHECK_EQ_INT(up_build(&r, "/v1/chat/completions", req, "no-colon", 0, &u, &e), -1);
	CHECK_EQ_INT(e.status, 503);
	json_decref(req);
}

int main(void)
{
	RUN(tc3_published_example);
	RUN(hunyuan_request_and_answer);
	RUN(hunyuan_stream_and_signing);
	TEST_END();
}
