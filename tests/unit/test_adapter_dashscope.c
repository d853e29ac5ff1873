/* Alibaba DashScope's native API (Model Studio / Bailian text generation): requests,
 * answers and streams on the API reference's documented shapes. */
#include "testlib.h"

#include "provider.h"
#include "route.h"
#include "test_adapter_helpers.h"
#include "xlate.h"

static const struct xl_meta META = { "req-1", "public-model", 1700000000 };

static void dashscope_request_and_answer(void)
{
	json_t *req = J("{\"model\":\"pub\",\"stream\":true,\"max_tokens\":64,\"stop\":\"END\",\"temperature\":0.3,"
			"\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},{\"role\":\"user\",\"content\":\"Hi\"}],"
			"\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":{}}}]}");
	json_t *out, *resp;
	struct xl_usage u = { 0 };
	struct xl_error e;

	out = xl_dashscope_request(req, "qwen-plus", &e);
	CHECK_EQ_STR(PS(out, "model"), "qwen-plus");
	CHECK(PEQ(out, "input.messages", "[{\"role\":\"system\",\"content\":\"Be brief.\"},{\"role\":\"user\",\"content\":\"Hi\"}]"));
	CHECK(PEQ(out, "parameters", "{\"result_format\":\"message\",\"temperature\":0.3,\"max_tokens\":64,\"stop\":[\"END\"],"
				     "\"incremental_output\":true,\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":{}}}]}"));
	json_decref(out);
	json_decref(req);
	check_refused(xl_dashscope_request, "m", "{\"messages\":[]}", 400, NULL);

	/* The reference's answer, with a tool call. */
	resp = J("{\"output\":{\"choices\":[{\"finish_reason\":\"tool_calls\",\"message\":{\"role\":\"assistant\",\"content\":\"\","
		 "\"tool_calls\":[{\"function\":{\"name\":\"get_weather\",\"arguments\":\"{\\\"city\\\":\\\"Paris\\\"}\"},\"index\":0,"
		 "\"id\":\"call_1\",\"type\":\"function\"}]}}]},\"usage\":{\"total_tokens\":20,\"output_tokens\":5,\"input_tokens\":15},"
		 "\"request_id\":\"b2f6d1f3\"}");
	out = xl_dashscope_response(resp, &META, &u, &e);
	CHECK_EQ_STR(PS(out, "id"), "b2f6d1f3");
	CHECK_EQ_STR(PS(out, "choices.0.finish_reason"), "tool_calls");
	CHECK_EQ_STR(PS(out, "choices.0.message.tool_calls.0.function.name"), "get_weather");
	CHECK(PEQ(out, "usage", "{\"prompt_tokens\":15,\"completion_tokens\":5,\"total_tokens\":20}"));
	json_decref(out);
	json_decref(resp);
	resp = J("{\"output\":{}}");
	CHECK(xl_dashscope_response(resp, &META, &u, &e) == NULL);
	CHECK_EQ_INT(e.status, 502);
	json_decref(resp);
}

static void dashscope_stream(void)
{
	json_t *chunks, *req = J("{\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]}");
	const char *ev1 = "{\"output\":{\"choices\":[{\"message\":{\"content\":\"Hel\",\"role\":\"assistant\"},\"finish_reason\":\"null\"}]},"
			  "\"usage\":{\"total_tokens\":11,\"input_tokens\":10,\"output_tokens\":1},\"request_id\":\"r\"}";
	const char *ev2 = "{\"output\":{\"choices\":[{\"message\":{\"content\":\"lo\",\"role\":\"assistant\"},\"finish_reason\":\"stop\"}]},"
			  "\"usage\":{\"total_tokens\":12,\"input_tokens\":10,\"output_tokens\":2},\"request_id\":\"r\"}";
	const char *err = "{\"code\":\"DataInspectionFailed\",\"message\":\"Input data may contain inappropriate content.\",\"request_id\":\"r\"}";
	struct xl_stream s;
	struct ad_route r;
	struct up_request u;
	struct xl_error e;
	char rerr[64];

	chunks = stream_of_two(XL_DASHSCOPE, &META, "result", ev1, ev2);
	check_hello_chunks(chunks);
	json_decref(chunks);
	chunks = json_array();
	xl_stream_init(&s, XL_DASHSCOPE, &META, 0, collect_chunk, chunks);
	CHECK_EQ_INT(xl_stream_sse(&s, "error", err, strlen(err)), -1);
	CHECK(strstr(s.err.message, "DataInspectionFailed") != NULL);
	json_decref(chunks);

	CHECK_EQ_INT(fam_of_kind("dashscope", "native"), XL_DASHSCOPE);
	CHECK_EQ_INT(fam_of_kind("dashscope", NULL), XL_OPENAI);
	CHECK_EQ_INT(route_parse("p=dashscope&av=native&m=qwen-plus", 32, &r, rerr, sizeof(rerr)), 0);
	CHECK_EQ_INT(up_build(&r, "/v1/chat/completions", req, "sk-ds", 0, &u, &e), 0);
	CHECK_EQ_STR(u.url, "https://dashscope.aliyuncs.com/api/v1/services/aigc/text-generation/generation");
	CHECK_EQ_INT(header_count(&u, "X-DashScope-SSE: enable", 0), 1);
	CHECK_EQ_INT(header_count(&u, "Authorization: Bearer sk-ds", 0), 1);
	up_free(&u);
	json_decref(req);
}

int main(void)
{
	RUN(dashscope_request_and_answer);
	RUN(dashscope_stream);
	TEST_END();
}
