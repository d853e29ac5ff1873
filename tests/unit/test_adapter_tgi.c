/* Hugging Face Text Generation Inference's native API (POST /generate, /generate_stream):
 * the chat templates, the request parameters, answers with their counts, streams and
 * errors on the shapes of TGI's OpenAPI document. */
#include "testlib.h"

#include "provider.h"
#include "route.h"
#include "test_adapter_helpers.h"
#include "xlate.h"

#include <stdlib.h>

static const struct xl_meta META = { "req-1", "public-model", 1700000000 };

/* xl_tgi_prompt's prompt as a JSON string, for check_refused. */
static json_t *prompt_json(const json_t *msgs, const char *api_version, struct xl_error *e)
{
	char *p = xl_tgi_prompt(msgs, api_version, e);
	json_t *s = p ? json_string(p) : NULL;

	free(p);
	return s;
}

static void templates(void)
{
	json_t *msgs = J("[{\"role\":\"system\",\"content\":\"Be brief.\"},{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Hi\"}]},"
			 "{\"role\":\"assistant\",\"content\":\"Hello.\"},{\"role\":\"user\",\"content\":\"Bye\"}]");
	struct xl_error e;
	char *p;

	p = xl_tgi_prompt(msgs, "native", &e);
	CHECK_EQ_STR(p, "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
			"<|im_start|>assistant\nHello.<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\n");
	free(p);
	p = xl_tgi_prompt(msgs, "native-llama3", &e);
	CHECK_EQ_STR(p, "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
			"<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
			"Hello.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nBye<|eot_id|>"
			"<|start_header_id|>assistant<|end_header_id|>\n\n");
	free(p);
	p = xl_tgi_prompt(msgs, "native-zephyr", &e);
	CHECK_EQ_STR(p, "<|system|>\nBe brief.</s>\n<|user|>\nHi</s>\n<|assistant|>\nHello.</s>\n<|user|>\nBye</s>\n<|assistant|>\n");
	free(p);
	p = xl_tgi_prompt(msgs, "native-chatml", &e);
	CHECK(p != NULL && strncmp(p, "<|im_start|>system\n", 19) == 0);
	free(p);
	/* An unknown template is the operator's mistake, not the client's. */
	CHECK(xl_tgi_prompt(msgs, "native-alpaca", &e) == NULL);
	CHECK_EQ_INT(e.status, 500);
	CHECK_EQ_STR(e.code, "adapter_misconfigured");
	json_decref(msgs);
	/* Images, tools and tool results are refused. */
	check_refused(prompt_json, "native",
		      "[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64,AA==\"}}]}]", 400, "unsupported_by_provider");
	check_refused(prompt_json, "native",
		      "[{\"role\":\"tool\",\"tool_call_id\":\"c\",\"content\":\"x\"}]", 400, NULL);
	check_refused(prompt_json, "native", "[]", 0, "invalid_value");
}

static void request(void)
{
	json_t *req = J("{\"model\":\"pub\",\"max_tokens\":64,\"stop\":\"END\",\"temperature\":0.3,\"top_p\":0.9,\"seed\":7,"
			"\"response_format\":{\"type\":\"json_object\"},\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]}");
	struct xl_error e;
	json_t *out;

	out = xl_tgi_request(req, "native", &e);
	CHECK_EQ_STR(PS(out, "inputs"), "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
	CHECK(PEQ(out, "parameters", "{\"details\":true,\"temperature\":0.3,\"do_sample\":true,\"top_p\":0.9,\"seed\":7,"
				     "\"max_new_tokens\":64,\"stop\":[\"END\"],\"grammar\":{\"type\":\"json\",\"value\":{\"type\":\"object\"}}}"));
	json_decref(out);
	json_decref(req);
	/* TGI wants temperature and top_p strictly inside (0, 1): temperature 0 is greedy. */
	req = J("{\"temperature\":0,\"top_p\":1,\"top_k\":5,\"repetition_penalty\":1.1,\"max_completion_tokens\":8,"
		"\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]}");
	out = xl_tgi_request(req, "native", &e);
	CHECK(PEQ(out, "parameters", "{\"details\":true,\"do_sample\":false,\"top_k\":5,\"repetition_penalty\":1.1,\"max_new_tokens\":8}"));
	json_decref(out);
	json_decref(req);
	check_refused(xl_tgi_request, "native",
		      "{\"n\":2,\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]}", 400, NULL);
	check_refused(xl_tgi_request, "native",
		      "{\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}],\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]}", 0, "unsupported_by_provider");
}

static void answer(void)
{
	/* /generate's documented answer with details (prefill empty: decoder_input_details
	 * was not asked for), the prompt counted by the x-prompt-tokens header. */
	json_t *resp = J("{\"generated_text\":\"Hello there\",\"details\":{\"finish_reason\":\"eos_token\",\"generated_tokens\":3,"
			 "\"seed\":null,\"prefill\":[],\"tokens\":[{\"id\":1,\"text\":\"Hello\",\"logprob\":-0.1,\"special\":false},"
			 "{\"id\":2,\"text\":\" there\",\"logprob\":-0.2,\"special\":false},{\"id\":3,\"text\":\"<|im_end|>\",\"logprob\":0,\"special\":true}]}}");
	struct xl_tgi_headers h = { "17", "3" }, none = { NULL, NULL };
	struct xl_usage u = { 0 };
	struct xl_error e;
	const char *body;
	json_t *out;

	out = xl_tgi_response(resp, &META, &h, &u, &e);
	CHECK_EQ_STR(PS(out, "object"), "chat.completion");
	CHECK_EQ_STR(PS(out, "model"), "public-model");
	CHECK_EQ_STR(PS(out, "choices.0.message.content"), "Hello there");
	CHECK_EQ_STR(PS(out, "choices.0.finish_reason"), "stop");
	CHECK(PEQ(out, "usage", "{\"prompt_tokens\":17,\"completion_tokens\":3,\"total_tokens\":20}"));
	CHECK_EQ_INT(u.have, 1);
	json_decref(out);
	/* Without the header the usage is not known (the job estimates it). */
	u = (struct xl_usage){ 0 };
	out = xl_tgi_response(resp, &META, &none, &u, &e);
	CHECK_EQ_INT(u.have, 0);
	json_decref(out);
	json_decref(resp);
	/* prefill filled (decoder_input_details): its length is the prompt. */
	resp = J("{\"generated_text\":\"a b\",\"details\":{\"finish_reason\":\"length\",\"generated_tokens\":2,"
		 "\"prefill\":[{\"id\":0,\"text\":\"x\",\"logprob\":null},{\"id\":1,\"text\":\"y\",\"logprob\":-1}],\"tokens\":[]}}");
	u = (struct xl_usage){ 0 };
	out = xl_tgi_response(resp, &META, &none, &u, &e);
	CHECK_EQ_STR(PS(out, "choices.0.finish_reason"), "length");
	CHECK(PEQ(out, "usage", "{\"prompt_tokens\":2,\"completion_tokens\":2,\"total_tokens\":4}"));
	json_decref(out);
	json_decref(resp);
	resp = J("{\"details\":{}}");
	CHECK(xl_tgi_response(resp, &META, &h, &u, &e) == NULL);
	CHECK_EQ_INT(e.status, 502);
	json_decref(resp);
	/* TGI's error bodies: validation (422) is the client's, overloaded (429) a rate limit,
	 * generation (424) the provider's. */
	body = "{\"error\":\"`inputs` must have less than 4096 tokens\",\"error_type\":\"validation\"}";
	xl_upstream_error(XL_TGI, 422, body, strlen(body), &e);
	CHECK_EQ_INT(e.status, 400);
	CHECK_EQ_STR(e.type, "invalid_request_error");
	CHECK(strstr(e.message, "less than 4096 tokens") != NULL);
	body = "{\"error\":\"Model is overloaded\",\"error_type\":\"overloaded\"}";
	xl_upstream_error(XL_TGI, 429, body, strlen(body), &e);
	CHECK_EQ_INT(e.status, 429);
	CHECK_EQ_STR(e.code, "rate_limit_exceeded");
	body = "{\"error\":\"Request failed during generation\",\"error_type\":\"generation\"}";
	xl_upstream_error(XL_TGI, 424, body, strlen(body), &e);
	CHECK_EQ_INT(e.status, 502);
	CHECK(strstr(e.message, "(tgi) answered 424") != NULL);
}

static void stream(void)
{
	const char *ev1 = "{\"index\":1,\"token\":{\"id\":1,\"text\":\"Hel\",\"logprob\":-0.1,\"special\":false},\"generated_text\":null,\"details\":null}";
	const char *ev2 = "{\"index\":2,\"token\":{\"id\":2,\"text\":\"lo\",\"logprob\":-0.2,\"special\":false},\"generated_text\":null,\"details\":null}";
	const char *ev3 = "{\"index\":3,\"token\":{\"id\":3,\"text\":\"</s>\",\"logprob\":0,\"special\":true},\"generated_text\":\"Hello\","
			  "\"details\":{\"finish_reason\":\"eos_token\",\"generated_tokens\":3,\"seed\":null,\"input_length\":9}}";
	const char *err = "{\"error\":\"Request failed during generation: Server error: CUDA out of memory\",\"error_type\":\"generation\"}";
	const char *rt = "p=huggingface&av=native&m=tgi&u=http%3A%2F%2F127.0.0.1%3A8080";
	json_t *chunks = json_array(), *req = J("{\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]}");
	struct xl_stream s;
	struct ad_route r;
	struct up_request u;
	struct xl_error e;
	char rerr[64];

	xl_stream_init(&s, XL_TGI, &META, 1, collect_chunk, chunks);
	CHECK_EQ_INT(xl_stream_sse(&s, NULL, ev1, strlen(ev1)), 0);
	CHECK_EQ_INT(xl_stream_sse(&s, NULL, ev2, strlen(ev2)), 0);
	CHECK_EQ_INT(xl_stream_sse(&s, NULL, ev3, strlen(ev3)), 0);
	xl_stream_end(&s); /* idempotent: the last event ended it */
	/* role, "Hel", "lo" (the special token is no text), finish, usage */
	CHECK_EQ_INT((long long)json_array_size(chunks), 5);
	CHECK_EQ_STR(PS(chunks, "1.choices.0.delta.content"), "Hel");
	CHECK_EQ_STR(PS(chunks, "2.choices.0.delta.content"), "lo");
	CHECK_EQ_STR(PS(chunks, "3.choices.0.finish_reason"), "stop");
	CHECK(PEQ(chunks, "4.usage", "{\"prompt_tokens\":9,\"completion_tokens\":3,\"total_tokens\":12}"));
	json_decref(chunks);
	chunks = json_array();
	xl_stream_init(&s, XL_TGI, &META, 0, collect_chunk, chunks);
	CHECK_EQ_INT(xl_stream_sse(&s, NULL, ev1, strlen(ev1)), 0);
	CHECK_EQ_INT(xl_stream_sse(&s, NULL, err, strlen(err)), -1);
	CHECK(strstr(s.err.message, "generation: Request failed during generation") != NULL);
	json_decref(chunks);

	/* The family, the URL by stream or not, the credential. */
	CHECK_EQ_INT(fam_of_kind("huggingface", "native"), XL_TGI);
	CHECK_EQ_INT(fam_of_kind("huggingface", "native-llama3"), XL_TGI);
	CHECK_EQ_INT(fam_of_kind("huggingface", NULL), XL_OPENAI);
	CHECK_EQ_INT(fam_of_kind("huggingface", "nativex"), XL_OPENAI);
	CHECK_EQ_STR(xl_provider_name(XL_TGI), "tgi");
	CHECK_EQ_INT(route_parse(rt, strlen(rt), &r, rerr, sizeof(rerr)), 0);
	r.family = XL_TGI;
	CHECK_EQ_INT(up_build(&r, "/v1/chat/completions", req, "hf_tok", 0, &u, &e), 0);
	CHECK_EQ_STR(u.url, "http://127.0.0.1:8080/generate_stream");
	CHECK_EQ_INT(header_count(&u, "Authorization: Bearer hf_tok", 0), 1);
	CHECK_EQ_INT(header_count(&u, "Accept: text/event-stream", 0), 1);
	up_free(&u);
	json_object_set_new(req, "stream", json_false());
	CHECK_EQ_INT(up_build(&r, "/v1/chat/completions", req, NULL, 0, &u, &e), 0);
	CHECK_EQ_STR(u.url, "http://127.0.0.1:8080/generate");
	up_free(&u);
	/* No base URL: TGI has no public one. */
	r.base_url[0] = '\0';
	CHECK_EQ_INT(up_build(&r, "/v1/chat/completions", req, NULL, 0, &u, &e), -1);
	CHECK_EQ_STR(e.code, "adapter_misconfigured");
	CHECK_EQ_INT(up_build(&r, "/v1/embeddings", req, NULL, 0, &u, &e), -1);
	CHECK_EQ_STR(e.code, "unsupported_by_provider");
	json_decref(req);
}

int main(void)
{
	RUN(templates);
	RUN(request);
	RUN(answer);
	RUN(stream);
	TEST_END();
}
