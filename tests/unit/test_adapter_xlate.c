/* Request and answer translators, checked against the providers' documented examples
 * (Anthropic Messages, Gemini generateContent, Bedrock Converse, Cohere chat v2) and
 * the reverse direction for Anthropic-style clients. */
#include "testlib.h"

#include "provider.h"
#include "route.h"
#include "test_adapter_helpers.h"
#include "upstream.h"
#include "xlate.h"

static const struct xl_meta META = { "req-1", "public-model", 1700000000 };

static const char *CHAT_WITH_TOOLS =
	"{\"model\":\"m\",\"max_tokens\":256,\"temperature\":0.2,\"stop\":\"END\",\"user\":\"u1\","
	"\"messages\":["
	"{\"role\":\"system\",\"content\":\"Be brief.\"},"
	"{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"What is here?\"},"
	" {\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64,iVBORw0KGgo=\"}}]},"
	"{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"call_1\",\"type\":\"function\","
	" \"function\":{\"name\":\"get_weather\",\"arguments\":\"{\\\"city\\\":\\\"Paris\\\"}\"}}]},"
	"{\"role\":\"tool\",\"tool_call_id\":\"call_1\",\"content\":\"{\\\"temp\\\":21}\"},"
	"{\"role\":\"user\",\"content\":\"Thanks\"}],"
	"\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"description\":\"Weather\","
	" \"parameters\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}}}}}],"
	"\"tool_choice\":\"required\",\"parallel_tool_calls\":false}";

static void anthropic_request(void)
{
	json_t *req = J(CHAT_WITH_TOOLS), *out;
	struct xl_error e;

	out = xl_anthropic_request(req, "claude-sonnet-4-5", &e);
	CHECK(out != NULL);
	CHECK_EQ_STR(PS(out, "model"), "claude-sonnet-4-5");
	CHECK_EQ_INT(PI(out, "max_tokens"), 256);
	CHECK(PEQ(out, "system", "[{\"type\":\"text\",\"text\":\"Be brief.\"}]"));
	CHECK(PEQ(out, "stop_sequences", "[\"END\"]"));
	CHECK(PEQ(out, "metadata", "{\"user_id\":\"u1\"}"));
	/* user: text + base64 image; assistant: tool_use; user: tool_result + text (merged) */
	CHECK_EQ_INT(json_array_size(P(out, "messages")), 3);
	CHECK(PEQ(out, "messages.0.content.1",
		  "{\"type\":\"image\",\"source\":{\"type\":\"base64\",\"media_type\":\"image/png\",\"data\":\"iVBORw0KGgo=\"}}"));
	CHECK(PEQ(out, "messages.1", "{\"role\":\"assistant\",\"content\":[{\"type\":\"tool_use\",\"id\":\"call_1\","
				     "\"name\":\"get_weather\",\"input\":{\"city\":\"Paris\"}}]}"));
	CHECK(PEQ(out, "messages.2.content.0", "{\"type\":\"tool_result\",\"tool_use_id\":\"call_1\",\"content\":\"{\\\"temp\\\":21}\"}"));
	CHECK(PEQ(out, "messages.2.content.1", "{\"type\":\"text\",\"text\":\"Thanks\"}"));
	CHECK(PEQ(out, "tools.0", "{\"name\":\"get_weather\",\"description\":\"Weather\",\"input_schema\":"
				  "{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}}}}"));
	CHECK(PEQ(out, "tool_choice", "{\"type\":\"any\",\"disable_parallel_tool_use\":true}"));
	json_decref(out);
	json_decref(req);

	/* max_tokens defaults (Anthropic requires it); n > 1 and bad arguments are 400. */
	req = J("{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
	out = xl_anthropic_request(req, "c", &e);
	CHECK_EQ_INT(PI(out, "max_tokens"), 4096);
	json_decref(out);
	json_decref(req);
	req = J("{\"n\":2,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
	CHECK(xl_anthropic_request(req, "c", &e) == NULL && e.status == 400);
	json_decref(req);
	req = J("{\"messages\":[{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"x\",\"function\":{\"name\":\"f\",\"arguments\":\"[1\"}}]}]}");
	CHECK(xl_anthropic_request(req, "c", &e) == NULL && e.status == 400);
	json_decref(req);
	req = J("{\"messages\":[]}");
	CHECK(xl_anthropic_request(req, "c", &e) == NULL && e.status == 400);
	json_decref(req);
}

static void anthropic_response(void)
{
	/* The example answer of Anthropic's Messages documentation, with a tool call. */
	json_t *resp = J("{\"id\":\"msg_013Zva2CMHLNnXjNJJKqJ2EF\",\"type\":\"message\",\"role\":\"assistant\","
			 "\"model\":\"claude-sonnet-4-5\",\"content\":[{\"type\":\"text\",\"text\":\"Hi! My name is Claude.\"},"
			 "{\"type\":\"tool_use\",\"id\":\"toolu_01\",\"name\":\"get_weather\",\"input\":{\"city\":\"Paris\"}}],"
			 "\"stop_reason\":\"tool_use\",\"stop_sequence\":null,"
			 "\"usage\":{\"input_tokens\":2095,\"output_tokens\":503,\"cache_read_input_tokens\":5}}");
	struct xl_usage u = { 0 };
	struct xl_error e;
	json_t *out = xl_anthropic_response(resp, &META, &u, &e);

	CHECK(out != NULL);
	CHECK_EQ_STR(PS(out, "object"), "chat.completion");
	CHECK_EQ_STR(PS(out, "id"), "msg_013Zva2CMHLNnXjNJJKqJ2EF");
	CHECK_EQ_STR(PS(out, "model"), "public-model");
	CHECK_EQ_STR(PS(out, "choices.0.message.content"), "Hi! My name is Claude.");
	CHECK_EQ_STR(PS(out, "choices.0.message.tool_calls.0.function.arguments"), "{\"city\":\"Paris\"}");
	CHECK_EQ_STR(PS(out, "choices.0.message.tool_calls.0.id"), "toolu_01");
	CHECK_EQ_STR(PS(out, "choices.0.finish_reason"), "tool_calls");
	CHECK(PEQ(out, "usage", "{\"prompt_tokens\":2100,\"completion_tokens\":503,\"total_tokens\":2603}"));
	CHECK(u.have && u.prompt == 2100 && u.completion == 503);
	json_decref(out);
	json_decref(resp);
	CHECK_EQ_STR(xl_finish_from_anthropic("end_turn"), "stop");
	CHECK_EQ_STR(xl_finish_from_anthropic("max_tokens"), "length");
	CHECK_EQ_STR(xl_finish_from_anthropic("stop_sequence"), "stop");
	CHECK_EQ_STR(xl_finish_from_anthropic("refusal"), "content_filter");
}

static void gemini_request_and_response(void)
{
	json_t *req = J(CHAT_WITH_TOOLS), *out, *resp;
	struct xl_error e;
	struct xl_usage u = { 0 };

	out = xl_gemini_request(req, &e);
	CHECK(out != NULL);
	CHECK(PEQ(out, "systemInstruction", "{\"parts\":[{\"text\":\"Be brief.\"}]}"));
	CHECK(PEQ(out, "contents.0", "{\"role\":\"user\",\"parts\":[{\"text\":\"What is here?\"},"
				     "{\"inlineData\":{\"mimeType\":\"image/png\",\"data\":\"iVBORw0KGgo=\"}}]}"));
	CHECK(PEQ(out, "contents.1", "{\"role\":\"model\",\"parts\":[{\"functionCall\":{\"name\":\"get_weather\","
				     "\"args\":{\"city\":\"Paris\"}}}]}"));
	CHECK(PEQ(out, "contents.2.parts.0", "{\"functionResponse\":{\"name\":\"get_weather\",\"response\":{\"temp\":21}}}"));
	CHECK(PEQ(out, "generationConfig", "{\"temperature\":0.2,\"maxOutputTokens\":256,\"stopSequences\":[\"END\"]}"));
	CHECK(PEQ(out, "tools.0.functionDeclarations.0.name", "\"get_weather\""));
	CHECK(PEQ(out, "toolConfig", "{\"functionCallingConfig\":{\"mode\":\"ANY\"}}"));
	json_decref(out);
	json_decref(req);

	/* The generateContent answer format (candidates, usageMetadata). */
	resp = J("{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"Paris is \"},{\"text\":\"sunny.\"}],\"role\":\"model\"},"
		 "\"finishReason\":\"STOP\",\"index\":0}],\"usageMetadata\":{\"promptTokenCount\":10,"
		 "\"candidatesTokenCount\":4,\"totalTokenCount\":14},\"modelVersion\":\"gemini-2.0-flash\"}");
	out = xl_gemini_response(resp, &META, &u, &e);
	CHECK_EQ_STR(PS(out, "choices.0.message.content"), "Paris is sunny.");
	CHECK_EQ_STR(PS(out, "choices.0.finish_reason"), "stop");
	CHECK(PEQ(out, "usage", "{\"prompt_tokens\":10,\"completion_tokens\":4,\"total_tokens\":14}"));
	json_decref(out);
	json_decref(resp);
	resp = J("{\"candidates\":[{\"content\":{\"parts\":[{\"functionCall\":{\"name\":\"f\",\"args\":{\"a\":1}}}]},"
		 "\"finishReason\":\"STOP\"}]}");
	out = xl_gemini_response(resp, &META, &u, &e);
	CHECK_EQ_STR(PS(out, "choices.0.finish_reason"), "tool_calls");
	CHECK_EQ_STR(PS(out, "choices.0.message.tool_calls.0.function.arguments"), "{\"a\":1}");
	CHECK_EQ_STR(PS(out, "choices.0.message.tool_calls.0.id"), "call_0");
	json_decref(out);
	json_decref(resp);
	resp = J("{\"promptFeedback\":{\"blockReason\":\"SAFETY\"}}");
	CHECK(xl_gemini_response(resp, &META, &u, &e) == NULL && e.status == 400);
	json_decref(resp);
}

static void gemini_embeddings(void)
{
	json_t *req = J("{\"model\":\"m\",\"input\":[\"a\",\"b\"]}"), *out, *resp;
	struct xl_error e;
	int batch = -1;

	out = xl_gemini_embed_request(req, "text-embedding-004", &batch, &e);
	CHECK_EQ_INT(batch, 1);
	CHECK(PEQ(out, "requests.1", "{\"model\":\"models/text-embedding-004\",\"content\":{\"parts\":[{\"text\":\"b\"}]}}"));
	json_decref(out);
	json_decref(req);
	resp = J("{\"embeddings\":[{\"values\":[0.1,0.2]},{\"values\":[0.3]}]}");
	out = xl_gemini_embed_response(resp, "emb", 1, &e);
	CHECK(PEQ(out, "data.1", "{\"object\":\"embedding\",\"index\":1,\"embedding\":[0.3]}"));
	CHECK_EQ_STR(PS(out, "object"), "list");
	json_decref(out);
	json_decref(resp);
	req = J("{\"input\":\"one\"}");
	out = xl_gemini_embed_request(req, "e", &batch, &e);
	CHECK_EQ_INT(batch, 0);
	CHECK(PEQ(out, "content.parts.0.text", "\"one\""));
	json_decref(out);
	json_decref(req);
	resp = J("{\"embedding\":{\"values\":[1,2]}}");
	out = xl_gemini_embed_response(resp, "e", 0, &e);
	CHECK(PEQ(out, "data.0.embedding", "[1,2]"));
	json_decref(out);
	json_decref(resp);
	req = J("{\"input\":[[1,2]]}");
	CHECK(xl_gemini_embed_request(req, "e", &batch, &e) == NULL && e.status == 400);
	json_decref(req);
}

static void bedrock_request_and_response(void)
{
	json_t *req = J(CHAT_WITH_TOOLS), *out, *resp;
	struct xl_error e;
	struct xl_usage u = { 0 };

	out = xl_bedrock_request(req, &e);
	CHECK(out != NULL);
	CHECK(PEQ(out, "system", "[{\"text\":\"Be brief.\"}]"));
	CHECK(PEQ(out, "messages.0.content.1", "{\"image\":{\"format\":\"png\",\"source\":{\"bytes\":\"iVBORw0KGgo=\"}}}"));
	CHECK(PEQ(out, "messages.1.content.0", "{\"toolUse\":{\"toolUseId\":\"call_1\",\"name\":\"get_weather\",\"input\":{\"city\":\"Paris\"}}}"));
	CHECK(PEQ(out, "messages.2.content.0", "{\"toolResult\":{\"toolUseId\":\"call_1\",\"content\":[{\"text\":\"{\\\"temp\\\":21}\"}]}}"));
	CHECK(PEQ(out, "inferenceConfig", "{\"maxTokens\":256,\"temperature\":0.2,\"stopSequences\":[\"END\"]}"));
	CHECK(PEQ(out, "toolConfig.toolChoice", "{\"any\":{}}"));
	CHECK(PEQ(out, "toolConfig.tools.0.toolSpec.inputSchema.json.type", "\"object\""));
	json_decref(out);
	json_decref(req);
	/* Images must be data URLs for Bedrock. */
	req = J("{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":{\"url\":\"https://x/y.png\"}}]}]}");
	CHECK(xl_bedrock_request(req, &e) == NULL && e.status == 400);
	json_decref(req);

	/* The Converse answer format. */
	resp = J("{\"output\":{\"message\":{\"role\":\"assistant\",\"content\":[{\"text\":\"Hello.\"}]}},"
		 "\"stopReason\":\"max_tokens\",\"usage\":{\"inputTokens\":12,\"outputTokens\":3,\"totalTokens\":15},"
		 "\"metrics\":{\"latencyMs\":300}}");
	out = xl_bedrock_response(resp, &META, &u, &e);
	CHECK_EQ_STR(PS(out, "choices.0.message.content"), "Hello.");
	CHECK_EQ_STR(PS(out, "choices.0.finish_reason"), "length");
	CHECK(PEQ(out, "usage", "{\"prompt_tokens\":12,\"completion_tokens\":3,\"total_tokens\":15}"));
	json_decref(out);
	json_decref(resp);
}

static void cohere_request_and_response(void)
{
	json_t *req = J("{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"top_p\":0.5,\"max_tokens\":9,\"stop\":[\"x\"]}");
	json_t *out, *resp;
	struct xl_error e;
	struct xl_usage u = { 0 };

	out = xl_cohere_request(req, "command-r-plus", &e);
	CHECK(PEQ(out, "p", "0.5"));
	CHECK(PEQ(out, "stop_sequences", "[\"x\"]"));
	CHECK_EQ_STR(PS(out, "model"), "command-r-plus");
	json_decref(out);
	json_decref(req);
	resp = J("{\"id\":\"c1\",\"finish_reason\":\"COMPLETE\",\"message\":{\"role\":\"assistant\",\"content\":"
		 "[{\"type\":\"text\",\"text\":\"Hello\"}]},\"usage\":{\"billed_units\":{\"input_tokens\":5,\"output_tokens\":1},"
		 "\"tokens\":{\"input_tokens\":71,\"output_tokens\":1}}}");
	out = xl_cohere_response(resp, &META, &u, &e);
	CHECK_EQ_STR(PS(out, "choices.0.message.content"), "Hello");
	CHECK_EQ_INT(PI(out, "usage.prompt_tokens"), 71);
	json_decref(out);
	json_decref(resp);
}

static void openai_passthrough_and_usage(void)
{
	json_t *req = J("{\"model\":\"pub\",\"stream\":true,\"messages\":[],\"response_format\":{\"type\":\"json_object\"}}");
	json_t *out;
	struct xl_error e;
	int added = -1;

	out = xl_openai_request(req, "up", 1, &added, &e);
	CHECK_EQ_INT(added, 1);
	CHECK_EQ_STR(PS(out, "model"), "up");
	CHECK(PEQ(out, "stream_options", "{\"include_usage\":true}"));
	CHECK(PEQ(out, "response_format", "{\"type\":\"json_object\"}")); /* unknown fields kept */
	json_decref(out);
	json_decref(req);
	req = J("{\"stream\":true,\"stream_options\":{\"include_usage\":true}}");
	out = xl_openai_request(req, "up", 1, &added, &e);
	CHECK_EQ_INT(added, 0);
	json_decref(out);
	json_decref(req);
	req = J("{\"stream\":true}");
	out = xl_openai_request(req, "up", 0, &added, &e);
	CHECK_EQ_INT(added, 0);
	CHECK(P(out, "stream_options") == NULL);
	json_decref(out);
	json_decref(req);
}

static void upstream_errors(void)
{
	struct xl_error e;
	const char *ant = "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}";

	xl_upstream_error(XL_ANTHROPIC, 529, ant, strlen(ant), &e);
	CHECK_EQ_INT(e.status, 503);
	CHECK(strstr(e.message, "Overloaded") != NULL);
	xl_upstream_error(XL_GEMINI, 429, "{\"error\":{\"code\":429,\"message\":\"quota\",\"status\":\"RESOURCE_EXHAUSTED\"}}", 72, &e);
	CHECK_EQ_INT(e.status, 429);
	CHECK_EQ_STR(e.type, "rate_limit_error");
	xl_upstream_error(XL_BEDROCK, 400, "{\"message\":\"bad input\"}", 23, &e);
	CHECK_EQ_INT(e.status, 400);
	CHECK(strstr(e.message, "bad input") != NULL);
	/* A refused provider credential is the gateway's problem, not the client's key. */
	xl_upstream_error(XL_OPENAI, 401, "", 0, &e);
	CHECK_EQ_INT(e.status, 502);
	CHECK_EQ_STR(e.code, "upstream_authentication_failed");
	xl_upstream_error(XL_OPENAI, 500, "<html>", 6, &e);
	CHECK_EQ_INT(e.status, 502);
}

static void messages_client_request(void)
{
	/* Anthropic SDK style request -> OpenAI. */
	json_t *req = J("{\"model\":\"gpt\",\"max_tokens\":100,\"system\":[{\"type\":\"text\",\"text\":\"Sys\"}],"
			"\"stream\":true,\"stop_sequences\":[\"Z\"],\"messages\":["
			"{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Look\"},{\"type\":\"image\",\"source\":"
			" {\"type\":\"base64\",\"media_type\":\"image/jpeg\",\"data\":\"AAAA\"}}]},"
			"{\"role\":\"assistant\",\"content\":[{\"type\":\"text\",\"text\":\"Calling\"},{\"type\":\"tool_use\",\"id\":\"t1\","
			" \"name\":\"f\",\"input\":{\"x\":1}}]},"
			"{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":\"t1\",\"content\":\"42\"}]}],"
			"\"tools\":[{\"name\":\"f\",\"description\":\"d\",\"input_schema\":{\"type\":\"object\"}}],"
			"\"tool_choice\":{\"type\":\"tool\",\"name\":\"f\"}}");
	json_t *out;
	struct xl_error e;

	out = xl_msg_to_openai(req, &e);
	CHECK(out != NULL);
	CHECK(PEQ(out, "messages.0", "{\"role\":\"system\",\"content\":\"Sys\"}"));
	CHECK(PEQ(out, "messages.1.content.1", "{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/jpeg;base64,AAAA\"}}"));
	CHECK(PEQ(out, "messages.2", "{\"role\":\"assistant\",\"content\":\"Calling\",\"tool_calls\":[{\"id\":\"t1\","
				     "\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{\\\"x\\\":1}\"}}]}"));
	CHECK(PEQ(out, "messages.3", "{\"role\":\"tool\",\"tool_call_id\":\"t1\",\"content\":\"42\"}"));
	CHECK(PEQ(out, "stream_options", "{\"include_usage\":true}"));
	CHECK(PEQ(out, "stop", "[\"Z\"]"));
	CHECK(PEQ(out, "tools.0", "{\"type\":\"function\",\"function\":{\"name\":\"f\",\"description\":\"d\",\"parameters\":{\"type\":\"object\"}}}"));
	CHECK(PEQ(out, "tool_choice", "{\"type\":\"function\",\"function\":{\"name\":\"f\"}}"));
	json_decref(out);
	json_decref(req);
	req = J("{\"model\":\"gpt\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}");
	CHECK(xl_msg_to_openai(req, &e) == NULL && e.status == 400); /* max_tokens is required */
	json_decref(req);
}

static void messages_client_response(void)
{
	json_t *resp = J("{\"id\":\"chatcmpl-1\",\"model\":\"gpt\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
			 "\"content\":\"Hi\",\"tool_calls\":[{\"id\":\"c\",\"type\":\"function\",\"function\":{\"name\":\"f\","
			 "\"arguments\":\"{\\\"a\\\":2}\"}}]},\"finish_reason\":\"tool_calls\"}],"
			 "\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":4,\"total_tokens\":7}}");
	json_t *out = xl_openai_to_msg(resp);
	struct xl_error e;
	json_t *err;

	CHECK_EQ_STR(PS(out, "type"), "message");
	CHECK_EQ_STR(PS(out, "id"), "msg_chatcmpl-1");
	CHECK(PEQ(out, "content", "[{\"type\":\"text\",\"text\":\"Hi\"},{\"type\":\"tool_use\",\"id\":\"c\",\"name\":\"f\",\"input\":{\"a\":2}}]"));
	CHECK_EQ_STR(PS(out, "stop_reason"), "tool_use");
	CHECK(PEQ(out, "usage", "{\"input_tokens\":3,\"output_tokens\":4}"));
	json_decref(out);
	json_decref(resp);
	xl_fail(&e, 429, "rate_limit_error", "rate_limit_exceeded", "slow");
	err = xl_error_to_msg(&e);
	CHECK(PEQ(err, "", "{\"type\":\"error\",\"error\":{\"type\":\"rate_limit_error\",\"message\":\"slow\"}}"));
	json_decref(err);
}

static void upstream_requests(void)
{
	struct ad_route r;
	struct up_request u;
	struct xl_error e;
	json_t *req = J("{\"model\":\"pub\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
	char err[64];
	const char *h;

	h = "p=azure_openai&u=https%3A%2F%2Fres.openai.azure.com%2F&m=my-deploy&mt=1";
	CHECK_EQ_INT(route_parse(h, strlen(h), &r, err, sizeof(err)), 0);
	CHECK_EQ_INT(up_build(&r, "/v1/chat/completions", req, "azkey", 0, &u, &e), 0);
	CHECK_EQ_STR(u.url, "https://res.openai.azure.com/openai/deployments/my-deploy/chat/completions?api-version=2024-10-21");
	CHECK_EQ_STR(u.headers[0], "api-key: azkey");
	CHECK_EQ_INT(u.added_usage, 1);
	up_free(&u);

	h = "p=gemini&u=http%3A%2F%2F127.0.0.1%3A1&m=gemini-2.0-flash";
	route_parse(h, strlen(h), &r, err, sizeof(err));
	CHECK_EQ_INT(up_build(&r, "/v1/chat/completions", req, "gk", 0, &u, &e), 0);
	CHECK_EQ_STR(u.url, "http://127.0.0.1:1/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse");
	CHECK_EQ_STR(u.headers[0], "x-goog-api-key: gk");
	up_free(&u);

	h = "p=bedrock&r=eu-west-1&m=anthropic.claude-3-haiku-20240307-v1%3A0";
	route_parse(h, strlen(h), &r, err, sizeof(err));
	CHECK_EQ_INT(up_build(&r, "/v1/chat/completions", req, "AKIDEXAMPLE:secret", 1440938160, &u, &e), 0);
	CHECK_EQ_STR(u.url, "https://bedrock-runtime.eu-west-1.amazonaws.com/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse-stream");
	CHECK_EQ_INT(u.eventstream, 1);
	CHECK(strncmp(u.headers[2], "Authorization: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/eu-west-1/bedrock/aws4_request, "
				    "SignedHeaders=host;x-amz-date, Signature=", 120) == 0);
	up_free(&u);
	CHECK_EQ_INT(up_build(&r, "/v1/chat/completions", req, "no-colon", 0, &u, &e), -1);
	CHECK_EQ_INT(e.status, 503);
	CHECK_EQ_INT(up_build(&r, "/v1/embeddings", req, "a:b", 0, &u, &e), -1);
	CHECK_EQ_INT(e.status, 400);

	h = "p=vllm&u=http%3A%2F%2Fgpu%3A8000%2Fv1&m=qwen";
	route_parse(h, strlen(h), &r, err, sizeof(err));
	CHECK_EQ_INT(up_build(&r, "/v1/rerank", req, NULL, 0, &u, &e), 0);
	CHECK_EQ_STR(u.url, "http://gpu:8000/v1/rerank");
	up_free(&u);
	h = "p=ollama&u=http%3A%2F%2Fgpu%3A11434&m=llama3.2&av=native";
	route_parse(h, strlen(h), &r, err, sizeof(err));
	CHECK_EQ_INT(r.family, XL_OLLAMA);
	CHECK_EQ_INT(up_build(&r, "/v1/chat/completions", req, NULL, 0, &u, &e), 0);
	CHECK_EQ_STR(u.url, "http://gpu:11434/api/chat");
	CHECK_EQ_INT(u.ndjson, 1);
	up_free(&u);
	h = "p=ollama&u=http%3A%2F%2Fgpu%3A11434%2Fv1&m=llama3.2";
	route_parse(h, strlen(h), &r, err, sizeof(err));
	CHECK_EQ_INT(r.family, XL_OPENAI); /* without "native": Ollama's OpenAI-compatible API */
	h = "p=anthropic&m=claude";
	route_parse(h, strlen(h), &r, err, sizeof(err));
	CHECK_EQ_INT(up_build(&r, "/v1/chat/completions", req, "ak", 0, &u, &e), 0);
	CHECK_EQ_STR(u.url, "https://api.anthropic.com/v1/messages");
	CHECK_EQ_STR(u.headers[0], "anthropic-version: 2023-06-01");
	CHECK_EQ_STR(u.headers[1], "x-api-key: ak");
	up_free(&u);
	json_decref(req);
}

static void ollama_native(void)
{
	json_t *req = J(CHAT_WITH_TOOLS), *out, *resp;
	struct xl_error e;
	struct xl_usage u = { 0 };

	out = xl_ollama_request(req, "llama3.2", &e);
	CHECK(out != NULL);
	CHECK(PEQ(out, "stream", "false")); /* always explicit: Ollama streams by default */
	CHECK(PEQ(out, "options", "{\"temperature\":0.2,\"num_predict\":256,\"stop\":[\"END\"]}"));
	CHECK(PEQ(out, "messages.0", "{\"role\":\"system\",\"content\":\"Be brief.\"}"));
	CHECK(PEQ(out, "messages.1", "{\"role\":\"user\",\"content\":\"What is here?\",\"images\":[\"iVBORw0KGgo=\"]}"));
	CHECK(PEQ(out, "messages.2.tool_calls", "[{\"function\":{\"name\":\"get_weather\",\"arguments\":{\"city\":\"Paris\"}}}]"));
	CHECK(PEQ(out, "messages.3", "{\"role\":\"tool\",\"content\":\"{\\\"temp\\\":21}\"}"));
	CHECK_EQ_STR(PS(out, "tools.0.function.name"), "get_weather");
	json_decref(out);
	json_decref(req);
	/* the /api/chat answer of Ollama's API documentation */
	resp = J("{\"model\":\"llama3.2\",\"created_at\":\"2023-12-12T14:13:43.416799Z\",\"message\":{\"role\":\"assistant\","
		 "\"content\":\"Hello! How are you today?\"},\"done\":true,\"total_duration\":5191566416,\"load_duration\":2154458,"
		 "\"prompt_eval_count\":26,\"prompt_eval_duration\":383809000,\"eval_count\":298,\"eval_duration\":4799921000}");
	out = xl_ollama_response(resp, &META, &u, &e);
	CHECK_EQ_STR(PS(out, "choices.0.message.content"), "Hello! How are you today?");
	CHECK_EQ_STR(PS(out, "choices.0.finish_reason"), "stop");
	CHECK(PEQ(out, "usage", "{\"prompt_tokens\":26,\"completion_tokens\":298,\"total_tokens\":324}"));
	json_decref(out);
	json_decref(resp);
	resp = J("{\"model\":\"all-minilm\",\"embeddings\":[[0.01,-0.02],[0.03,0.04]],\"prompt_eval_count\":8}");
	out = xl_ollama_embed_response(resp, "emb", &e);
	CHECK(PEQ(out, "data.1", "{\"object\":\"embedding\",\"index\":1,\"embedding\":[0.03,0.04]}"));
	CHECK_EQ_INT(PI(out, "usage.prompt_tokens"), 8);
	json_decref(out);
	json_decref(resp);
}

/* The Responses API translated to chat: instructions, message and function items,
 * function tools, text.format and max_output_tokens; what cannot survive is refused. */
static void responses_request(void)
{
	json_t *req = J("{\"model\":\"m\",\"instructions\":\"Be brief.\",\"max_output_tokens\":50,"
			"\"temperature\":0.5,\"stream\":true,\"input\":["
			"{\"role\":\"developer\",\"content\":\"Rules.\"},"
			"{\"type\":\"message\",\"role\":\"user\",\"content\":[{\"type\":\"input_text\",\"text\":\"Hi\"},"
			" {\"type\":\"input_image\",\"image_url\":\"data:image/png;base64,AAAA\"}]},"
			"{\"type\":\"function_call\",\"call_id\":\"c1\",\"name\":\"f\",\"arguments\":\"{}\"},"
			"{\"type\":\"function_call_output\",\"call_id\":\"c1\",\"output\":\"42\"}],"
			"\"tools\":[{\"type\":\"function\",\"name\":\"f\",\"parameters\":{\"type\":\"object\"}}],"
			"\"tool_choice\":{\"type\":\"function\",\"name\":\"f\"},"
			"\"text\":{\"format\":{\"type\":\"json_schema\",\"name\":\"s\",\"schema\":{}}}}");
	struct xl_error e = { 0 };
	json_t *out = xl_resp_to_openai(req, &e);

	CHECK(out != NULL);
	CHECK_EQ_STR(PS(out, "messages.0.role"), "system");
	CHECK_EQ_STR(PS(out, "messages.0.content"), "Be brief.");
	CHECK_EQ_STR(PS(out, "messages.1.role"), "system");
	CHECK_EQ_STR(PS(out, "messages.2.content.0.text"), "Hi");
	CHECK_EQ_STR(PS(out, "messages.2.content.1.image_url.url"), "data:image/png;base64,AAAA");
	CHECK_EQ_STR(PS(out, "messages.3.role"), "assistant");
	CHECK_EQ_STR(PS(out, "messages.3.tool_calls.0.id"), "c1");
	CHECK_EQ_STR(PS(out, "messages.3.tool_calls.0.function.name"), "f");
	CHECK_EQ_STR(PS(out, "messages.4.role"), "tool");
	CHECK_EQ_STR(PS(out, "messages.4.content"), "42");
	CHECK_EQ_STR(PS(out, "tools.0.function.name"), "f");
	CHECK_EQ_STR(PS(out, "tool_choice.function.name"), "f");
	CHECK_EQ_STR(PS(out, "response_format.json_schema.name"), "s");
	CHECK_EQ_INT(json_integer_value(P(out, "max_tokens")), 50);
	CHECK(json_is_true(P(out, "stream_options.include_usage")));
	json_decref(out);
	json_decref(req);
	static const char *const refused[] = {
		"{\"model\":\"m\",\"input\":\"x\",\"tools\":[{\"type\":\"web_search\"}]}",
		"{\"model\":\"m\",\"input\":\"x\",\"previous_response_id\":\"resp_1\"}",
		"{\"model\":\"m\",\"input\":\"x\",\"background\":true}",
		"{\"model\":\"m\",\"input\":[{\"type\":\"reasoning\",\"summary\":[]}]}",
		"{\"model\":\"m\",\"input\":[]}",
		"{\"model\":\"m\",\"input\":[{\"type\":\"function_call\",\"name\":\"f\"}]}",
	};
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		req = J(refused[i]);
		out = xl_resp_to_openai(req, &e);
		CHECK(out == NULL);
		CHECK_EQ_INT(e.status, 400);
		json_decref(out);
		json_decref(req);
	}
}

/* A chat.completion with text and a tool call becomes a response object echoing the
 * request's settings; "length" makes it incomplete. */
static void responses_answer(void)
{
	json_t *req = J("{\"model\":\"pub\",\"input\":\"x\",\"instructions\":\"I\",\"metadata\":{\"k\":\"v\"}}");
	json_t *chat = J("{\"id\":\"c\",\"object\":\"chat.completion\",\"created\":1,\"model\":\"up\","
			 "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"Hello\","
			 "\"tool_calls\":[{\"id\":\"call_9\",\"type\":\"function\",\"function\":{\"name\":\"f\","
			 "\"arguments\":\"{\\\"a\\\":1}\"}}]},\"finish_reason\":\"length\"}],"
			 "\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":3,\"total_tokens\":10}}");
	struct xl_resp_meta m = { "resp_abc", "pub", 1700000000, req };
	json_t *r = xl_openai_to_resp(chat, &m);

	CHECK(r != NULL);
	CHECK_EQ_STR(PS(r, "id"), "resp_abc");
	CHECK_EQ_STR(PS(r, "object"), "response");
	CHECK_EQ_STR(PS(r, "status"), "incomplete");
	CHECK_EQ_STR(PS(r, "incomplete_details.reason"), "max_output_tokens");
	CHECK_EQ_STR(PS(r, "instructions"), "I");
	CHECK_EQ_STR(PS(r, "metadata.k"), "v");
	CHECK(json_is_false(P(r, "store")));
	CHECK_EQ_STR(PS(r, "output.0.type"), "message");
	CHECK_EQ_STR(PS(r, "output.0.content.0.text"), "Hello");
	CHECK_EQ_STR(PS(r, "output.1.type"), "function_call");
	CHECK_EQ_STR(PS(r, "output.1.call_id"), "call_9");
	CHECK_EQ_STR(PS(r, "output.1.arguments"), "{\"a\":1}");
	CHECK_EQ_INT(json_integer_value(P(r, "usage.input_tokens")), 7);
	CHECK_EQ_INT(json_integer_value(P(r, "usage.output_tokens")), 3);
	CHECK_EQ_INT(json_integer_value(P(r, "usage.total_tokens")), 10);
	json_decref(r);
	json_decref(chat);
	json_decref(req);
}

int main(void)
{
	RUN(ollama_native);
	RUN(anthropic_request);
	RUN(anthropic_response);
	RUN(gemini_request_and_response);
	RUN(gemini_embeddings);
	RUN(bedrock_request_and_response);
	RUN(cohere_request_and_response);
	RUN(openai_passthrough_and_usage);
	RUN(upstream_errors);
	RUN(messages_client_request);
	RUN(messages_client_response);
	RUN(upstream_requests);
	RUN(responses_request);
	RUN(responses_answer);
	TEST_END();
}
