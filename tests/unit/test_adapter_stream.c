/* Stream translators: each provider's documented stream (Anthropic's event sequence,
 * Gemini's SSE, Bedrock's ConverseStream events, OpenAI-compatible chunks) becomes
 * OpenAI chunks; OpenAI chunks become Anthropic events for /v1/messages clients. */
#include "testlib.h"

#include "eventstream.h"
#include "sse.h"
#include "provider.h"
#include "test_adapter_helpers.h"
#include "xlate.h"

#define MAXC 64

struct sink {
	int n;
	json_t *c[MAXC];
};

static void keep(void *arg, json_t *chunk)
{
	struct sink *s = arg;

	if (s->n < MAXC)
		s->c[s->n++] = json_deep_copy(chunk);
}

static void sink_free(struct sink *s)
{
	for (int i = 0; i < s->n; i++)
		json_decref(s->c[i]);
	s->n = 0;
}

/* All content deltas joined. */
static void text_of(const struct sink *s, char *out, size_t cap)
{
	out[0] = '\0';
	for (int i = 0; i < s->n; i++) {
		const char *t = json_string_value(P(s->c[i], "choices.0.delta.content"));
		if (t)
			strncat(out, t, cap - strlen(out) - 1);
	}
}

static const struct xl_meta META = { "chatcmpl-x", "pub", 1700000000 };

static int on_ev(void *arg, const char *event, const char *data, size_t len)
{
	return xl_stream_sse(arg, event, data, len) < 0;
}

static void run_sse(struct xl_stream *xs, const char *text)
{
	struct sse_parser p;

	sse_init(&p, on_ev, xs);
	sse_feed(&p, text, strlen(text));
	sse_finish(&p);
	sse_free(&p);
}

/* Anthropic's documented streaming example: text, then a tool_use block with
 * input_json_delta pieces, message_delta with the output usage, message_stop. */
static const char *ANTHROPIC_STREAM =
	"event: message_start\n"
	"data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY\",\"type\":\"message\","
	"\"role\":\"assistant\",\"content\":[],\"model\":\"claude-sonnet-4-5\",\"stop_reason\":null,\"stop_sequence\":null,"
	"\"usage\":{\"input_tokens\":472,\"output_tokens\":2}}}\n\n"
	"event: content_block_start\n"
	"data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"
	"event: ping\ndata: {\"type\": \"ping\"}\n\n"
	"event: content_block_delta\n"
	"data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Okay, let's check\"}}\n\n"
	"event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
	"event: content_block_start\n"
	"data: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_01T1x1fJ34qAmk2tNTrN7Up6\","
	"\"name\":\"get_weather\",\"input\":{}}}\n\n"
	"event: content_block_delta\n"
	"data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"\"}}\n\n"
	"event: content_block_delta\n"
	"data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"location\\\":\"}}\n\n"
	"event: content_block_delta\n"
	"data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\" \\\"SF\\\"}\"}}\n\n"
	"event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":1}\n\n"
	"event: message_delta\n"
	"data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":89}}\n\n"
	"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";

static void anthropic_stream(void)
{
	struct sink s = { 0 };
	struct xl_stream xs;
	char text[256];
	int last;

	xl_stream_init(&xs, XL_ANTHROPIC, &META, 1, keep, &s);
	run_sse(&xs, ANTHROPIC_STREAM);
	CHECK(!xs.failed);
	CHECK(s.n >= 7);
	CHECK_EQ_STR(PS(s.c[0], "choices.0.delta.role"), "assistant");
	CHECK_EQ_STR(PS(s.c[0], "id"), "msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY");
	CHECK_EQ_STR(PS(s.c[0], "object"), "chat.completion.chunk");
	CHECK_EQ_STR(PS(s.c[0], "model"), "pub");
	text_of(&s, text, sizeof(text));
	CHECK_EQ_STR(text, "Okay, let's check");
	/* the tool call: start (id, name, "") then the argument pieces, index 0 */
	CHECK_EQ_STR(PS(s.c[2], "choices.0.delta.tool_calls.0.id"), "toolu_01T1x1fJ34qAmk2tNTrN7Up6");
	CHECK_EQ_STR(PS(s.c[2], "choices.0.delta.tool_calls.0.function.name"), "get_weather");
	CHECK_EQ_INT(PI(s.c[2], "choices.0.delta.tool_calls.0.index"), 0);
	CHECK_EQ_STR(PS(s.c[3], "choices.0.delta.tool_calls.0.function.arguments"), "{\"location\":");
	CHECK_EQ_STR(PS(s.c[4], "choices.0.delta.tool_calls.0.function.arguments"), " \"SF\"}");
	last = s.n - 1;
	CHECK_EQ_STR(PS(s.c[last - 1], "choices.0.finish_reason"), "tool_calls");
	/* usage merged: input from message_start, output from message_delta */
	CHECK(PEQ(s.c[last], "usage", "{\"prompt_tokens\":472,\"completion_tokens\":89,\"total_tokens\":561}"));
	CHECK(PEQ(s.c[last], "choices", "[]"));
	CHECK(xs.usage.have && xs.usage.prompt == 472 && xs.usage.completion == 89);
	sink_free(&s);

	/* Without include_usage no usage chunk; an error event fails the stream. */
	xl_stream_init(&xs, XL_ANTHROPIC, &META, 0, keep, &s);
	run_sse(&xs, "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"usage\":{\"input_tokens\":1}}}\n\n"
		     "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n");
	CHECK(xs.failed);
	CHECK_EQ_INT(xs.err.status, 503);
	sink_free(&s);
	xl_stream_init(&xs, XL_ANTHROPIC, &META, 0, keep, &s);
	run_sse(&xs, ANTHROPIC_STREAM);
	CHECK(P(s.c[s.n - 1], "usage") == NULL);
	CHECK_EQ_STR(PS(s.c[s.n - 1], "choices.0.finish_reason"), "tool_calls");
	sink_free(&s);
}

static void gemini_stream(void)
{
	struct sink s = { 0 };
	struct xl_stream xs;
	char text[256];

	xl_stream_init(&xs, XL_GEMINI, &META, 1, keep, &s);
	run_sse(&xs, "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"The \"}],\"role\":\"model\"},\"index\":0}],"
		     "\"usageMetadata\":{\"promptTokenCount\":8,\"candidatesTokenCount\":1}}\r\n\r\n"
		     "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"sky is blue.\"}],\"role\":\"model\"},"
		     "\"finishReason\":\"MAX_TOKENS\",\"index\":0}],\"usageMetadata\":{\"promptTokenCount\":8,"
		     "\"candidatesTokenCount\":5,\"totalTokenCount\":13}}\r\n\r\n");
	xl_stream_end(&xs); /* Gemini ends a stream by closing it */
	text_of(&s, text, sizeof(text));
	CHECK_EQ_STR(text, "The sky is blue.");
	CHECK_EQ_STR(PS(s.c[s.n - 2], "choices.0.finish_reason"), "length");
	CHECK(PEQ(s.c[s.n - 1], "usage", "{\"prompt_tokens\":8,\"completion_tokens\":5,\"total_tokens\":13}"));
	sink_free(&s);
	xl_stream_init(&xs, XL_GEMINI, &META, 0, keep, &s);
	run_sse(&xs, "data: {\"candidates\":[{\"content\":{\"parts\":[{\"functionCall\":{\"name\":\"f\",\"args\":{\"q\":1}}}]},"
		     "\"finishReason\":\"STOP\"}]}\n\n");
	xl_stream_end(&xs);
	CHECK_EQ_STR(PS(s.c[1], "choices.0.delta.tool_calls.0.function.arguments"), "{\"q\":1}");
	CHECK_EQ_STR(PS(s.c[s.n - 1], "choices.0.finish_reason"), "tool_calls");
	sink_free(&s);
	xl_stream_init(&xs, XL_GEMINI, &META, 0, keep, &s);
	run_sse(&xs, "data: not json\n\n");
	CHECK(xs.failed);
	CHECK_EQ_INT(xs.err.status, 502);
	sink_free(&s);
}

static int on_es(void *arg, const struct es_message *m)
{
	return xl_stream_bedrock(arg, m->message_type, m->event_type, m->exception_type,
				 (const char *)m->payload, m->payload_len) < 0;
}

static size_t put_event(uint8_t *buf, size_t cap, const char *event, const char *payload)
{
	const char *names[] = { ":event-type", ":content-type", ":message-type" };
	const char *values[] = { event, "application/json", "event" };

	return es_encode(buf, cap, names, values, 3, (const uint8_t *)payload, strlen(payload));
}

static void bedrock_stream(void)
{
	static const char *const ev[][2] = {
		{ "messageStart", "{\"role\":\"assistant\",\"p\":\"abc\"}" },
		{ "contentBlockDelta", "{\"contentBlockIndex\":0,\"delta\":{\"text\":\"Let me \"}}" },
		{ "contentBlockDelta", "{\"contentBlockIndex\":0,\"delta\":{\"text\":\"look.\"}}" },
		{ "contentBlockStop", "{\"contentBlockIndex\":0}" },
		{ "contentBlockStart", "{\"contentBlockIndex\":1,\"start\":{\"toolUse\":{\"toolUseId\":\"tooluse_1\",\"name\":\"search\"}}}" },
		{ "contentBlockDelta", "{\"contentBlockIndex\":1,\"delta\":{\"toolUse\":{\"input\":\"{\\\"q\\\":\"}}}" },
		{ "contentBlockDelta", "{\"contentBlockIndex\":1,\"delta\":{\"toolUse\":{\"input\":\"\\\"x\\\"}\"}}}" },
		{ "contentBlockStop", "{\"contentBlockIndex\":1}" },
		{ "messageStop", "{\"stopReason\":\"tool_use\"}" },
		{ "metadata", "{\"usage\":{\"inputTokens\":30,\"outputTokens\":12,\"totalTokens\":42},\"metrics\":{\"latencyMs\":80}}" },
	};
	uint8_t buf[4096];
	size_t n = 0;
	struct es_decoder d;
	struct sink s = { 0 };
	struct xl_stream xs;
	char text[128];

	for (size_t i = 0; i < sizeof(ev) / sizeof(ev[0]); i++)
		n += put_event(buf + n, sizeof(buf) - n, ev[i][0], ev[i][1]);
	xl_stream_init(&xs, XL_BEDROCK, &META, 1, keep, &s);
	es_init(&d, on_es, &xs);
	/* in 7-byte pieces, as a network would cut it */
	for (size_t off = 0; off < n; off += 7)
		CHECK_EQ_INT(es_feed(&d, buf + off, n - off < 7 ? n - off : 7), ES_OK);
	CHECK_EQ_INT(es_finish(&d), ES_OK);
	xl_stream_end(&xs);
	text_of(&s, text, sizeof(text));
	CHECK_EQ_STR(text, "Let me look.");
	CHECK_EQ_STR(PS(s.c[3], "choices.0.delta.tool_calls.0.id"), "tooluse_1");
	CHECK_EQ_STR(PS(s.c[4], "choices.0.delta.tool_calls.0.function.arguments"), "{\"q\":");
	CHECK_EQ_STR(PS(s.c[s.n - 2], "choices.0.finish_reason"), "tool_calls");
	CHECK(PEQ(s.c[s.n - 1], "usage", "{\"prompt_tokens\":30,\"completion_tokens\":12,\"total_tokens\":42}"));
	es_free(&d);
	sink_free(&s);

	/* An exception in the stream. */
	xl_stream_init(&xs, XL_BEDROCK, &META, 0, keep, &s);
	CHECK_EQ_INT(xl_stream_bedrock(&xs, "exception", "", "throttlingException", "{\"message\":\"Too many\"}", 22), -1);
	CHECK_EQ_INT(xs.err.status, 429);
	CHECK(strstr(xs.err.message, "Too many") != NULL);
	sink_free(&s);
}

static void openai_stream_strips_added_usage(void)
{
	const char *in = "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"model\":\"up\",\"choices\":[{\"index\":0,"
			 "\"delta\":{\"content\":\"Hi\"},\"finish_reason\":null}]}\n\n"
			 "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"model\":\"up\",\"choices\":[{\"index\":0,"
			 "\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n"
			 "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"model\":\"up\",\"choices\":[],"
			 "\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":1,\"total_tokens\":6}}\n\n"
			 "data: [DONE]\n\n";
	struct sink s = { 0 };
	struct xl_stream xs;

	xl_stream_init(&xs, XL_OPENAI, &META, 0, keep, &s);
	xs.strip_usage = 1;
	run_sse(&xs, in);
	CHECK_EQ_INT(s.n, 2); /* the usage-only chunk is gone */
	CHECK_EQ_STR(PS(s.c[0], "model"), "pub");
	CHECK(xs.usage.have && xs.usage.prompt == 5 && xs.usage.completion == 1);
	sink_free(&s);
	xl_stream_init(&xs, XL_OPENAI, &META, 1, keep, &s);
	run_sse(&xs, in);
	CHECK_EQ_INT(s.n, 3); /* the client asked for it: kept */
	sink_free(&s);
}

struct bytes {
	char buf[8192];
	size_t len;
};

static void append(void *arg, const char *p, size_t n)
{
	struct bytes *b = arg;

	if (b->len + n < sizeof(b->buf)) {
		memcpy(b->buf + b->len, p, n);
		b->len += n;
		b->buf[b->len] = '\0';
	}
}

static void messages_stream_output(void)
{
	struct bytes b = { { 0 }, 0 };
	struct xl_msg_stream m;
	const char *chunks[] = {
		"{\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}",
		"{\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"}}]}",
		"{\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo\"}}]}",
		"{\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"t\",\"type\":\"function\","
		"\"function\":{\"name\":\"f\",\"arguments\":\"\"}}]}}]}",
		"{\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{}\"}}]}}]}",
		"{\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}",
		"{\"id\":\"c1\",\"choices\":[],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":3}}",
	};

	xl_msg_stream_init(&m, "pub", append, &b);
	for (size_t i = 0; i < sizeof(chunks) / sizeof(chunks[0]); i++) {
		json_t *c = J(chunks[i]);
		xl_msg_stream_chunk(&m, c);
		json_decref(c);
	}
	xl_msg_stream_end(&m);
	CHECK(strncmp(b.buf, "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_c1\"", 75) == 0);
	CHECK(strstr(b.buf, "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,"
			    "\"content_block\":{\"type\":\"text\",\"text\":\"\"}}") != NULL);
	CHECK(strstr(b.buf, "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hel\"}}") != NULL);
	CHECK(strstr(b.buf, "{\"type\":\"content_block_stop\",\"index\":0}") != NULL);
	CHECK(strstr(b.buf, "\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"t\",\"name\":\"f\",\"input\":{}}") != NULL);
	CHECK(strstr(b.buf, "{\"type\":\"input_json_delta\",\"partial_json\":\"{}\"}") != NULL);
	CHECK(strstr(b.buf, "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\","
			    "\"stop_sequence\":null},\"usage\":{\"input_tokens\":7,\"output_tokens\":3}}") != NULL);
	{
		const char *tail = "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
		CHECK(strlen(b.buf) > strlen(tail) && strcmp(b.buf + strlen(b.buf) - strlen(tail), tail) == 0);
	}
}

static int on_line(void *arg, const char *line, size_t len)
{
	return xl_stream_ollama(arg, line, len) < 0;
}

/* Ollama's native NDJSON stream, cut at every byte. */
static void ollama_stream(void)
{
	const char *in =
		"{\"model\":\"llama3.2\",\"created_at\":\"2024-07-22T20:33:28Z\",\"message\":{\"role\":\"assistant\",\"content\":\"The\"},\"done\":false}\n"
		"{\"model\":\"llama3.2\",\"message\":{\"role\":\"assistant\",\"content\":\" sky\"},\"done\":false}\r\n"
		"{\"model\":\"llama3.2\",\"message\":{\"role\":\"assistant\",\"content\":\"\",\"tool_calls\":[{\"function\":"
		"{\"name\":\"f\",\"arguments\":{\"x\":1}}}]},\"done\":false}\n"
		"{\"model\":\"llama3.2\",\"message\":{\"role\":\"assistant\",\"content\":\"\"},\"done\":true,"
		"\"done_reason\":\"stop\",\"prompt_eval_count\":26,\"eval_count\":290}";
	size_t n = strlen(in);

	for (size_t cut = 0; cut <= n; cut += 7) {
		struct sink s = { 0 };
		struct xl_stream xs;
		struct nd_parser p;
		char text[64];
		xl_stream_init(&xs, XL_OLLAMA, &META, 1, keep, &s);
		nd_init(&p, on_line, &xs);
		CHECK_EQ_INT(nd_feed(&p, in, cut), SSE_OK);
		CHECK_EQ_INT(nd_feed(&p, in + cut, n - cut), SSE_OK);
		CHECK_EQ_INT(nd_finish(&p), SSE_OK); /* the last line has no newline */
		text_of(&s, text, sizeof(text));
		CHECK_EQ_STR(text, "The sky");
		CHECK_EQ_STR(PS(s.c[3], "choices.0.delta.tool_calls.0.function.arguments"), "{\"x\":1}");
		CHECK_EQ_STR(PS(s.c[s.n - 2], "choices.0.finish_reason"), "tool_calls");
		CHECK(PEQ(s.c[s.n - 1], "usage", "{\"prompt_tokens\":26,\"completion_tokens\":290,\"total_tokens\":316}"));
		nd_free(&p);
		sink_free(&s);
	}
	{
		struct sink s = { 0 };
		struct xl_stream xs;
		const char *err = "{\"error\":\"model runner has unexpectedly stopped\"}";
		xl_stream_init(&xs, XL_OLLAMA, &META, 0, keep, &s);
		CHECK_EQ_INT(xl_stream_ollama(&xs, err, strlen(err)), -1);
		CHECK(strstr(xs.err.message, "unexpectedly stopped") != NULL);
		sink_free(&s);
	}
}

/* The Responses API passed through: every typed event goes out as it came (the model
 * renamed), the id comes from response.created and the usage from response.completed. */
static void test_responses_passthrough(void)
{
	static const char stream[] =
		"event: response.created\n"
		"data: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":{\"id\":\"resp_9\","
		"\"model\":\"up\",\"status\":\"in_progress\",\"usage\":null}}\n\n"
		"event: response.output_text.delta\n"
		"data: {\"type\":\"response.output_text.delta\",\"sequence_number\":1,\"delta\":\"Hello\"}\n\n"
		"event: response.completed\n"
		"data: {\"type\":\"response.completed\",\"sequence_number\":2,\"response\":{\"id\":\"resp_9\","
		"\"model\":\"up\",\"status\":\"completed\",\"usage\":{\"input_tokens\":11,\"output_tokens\":5}}}\n\n";
	struct sink s = { 0 };
	struct xl_stream xs;

	xl_stream_init(&xs, XL_OPENAI, &META, 0, keep, &s);
	xs.responses = 1;
	run_sse(&xs, stream);
	CHECK(!xs.failed);
	CHECK_EQ_INT(s.n, 3);
	CHECK_EQ_STR(json_string_value(P(s.c[0], "response.model")), "pub");
	CHECK_EQ_STR(json_string_value(P(s.c[1], "delta")), "Hello");
	CHECK_EQ_STR(json_string_value(P(s.c[2], "type")), "response.completed");
	CHECK_EQ_STR(xs.object_id, "resp_9");
	CHECK(xs.usage.have && xs.usage.prompt == 11 && xs.usage.completion == 5);
	CHECK_EQ_INT(xs.completion_chars, 5);
	sink_free(&s);
	/* An event without a type is not the Responses API: the stream fails. */
	xl_stream_init(&xs, XL_OPENAI, &META, 0, keep, &s);
	xs.responses = 1;
	run_sse(&xs, "data: {\"delta\":\"x\"}\n\n");
	CHECK(xs.failed);
	sink_free(&s);
}

static void collect(void *arg, const char *p, size_t n)
{
	strncat(arg, p, n);
}

/* Chat chunks (text, then a tool call, then usage) become the Responses API's events:
 * each item opened, filled and closed in order, numbered, and response.completed with
 * the whole output and the usage. */
static void test_responses_translated_stream(void)
{
	static char out[16384];
	json_t *req = J("{\"model\":\"pub\",\"input\":\"x\"}");
	struct xl_resp_meta m = { "resp_r1", "pub", 1700000000, req };
	static struct xl_resp_stream rs;
	static const char *const chunks[] = {
		"{\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}",
		"{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"}}]}",
		"{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo\"}}]}",
		"{\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"call_1\",\"type\":\"function\","
		"\"function\":{\"name\":\"f\",\"arguments\":\"\"}}]}}]}",
		"{\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{}\"}}]}}]}",
		"{\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}",
		"{\"choices\":[],\"usage\":{\"prompt_tokens\":4,\"completion_tokens\":6}}",
	};
	static const char *const want[] = {
		"response.created", "response.in_progress", "response.output_item.added",
		"response.content_part.added", "response.output_text.delta", "response.output_text.delta",
		"response.output_text.done", "response.content_part.done", "response.output_item.done",
		"response.output_item.added", "response.function_call_arguments.delta",
		"response.function_call_arguments.done", "response.output_item.done", "response.completed",
	};
	const char *p = out;
	json_t *last = NULL;
	int n = 0;

	out[0] = '\0';
	xl_resp_stream_init(&rs, &m, collect, out);
	for (size_t i = 0; i < sizeof(chunks) / sizeof(chunks[0]); i++) {
		json_t *c = J(chunks[i]);
		xl_resp_stream_chunk(&rs, c);
		json_decref(c);
	}
	xl_resp_stream_end(&rs);
	while ((p = strstr(p, "event: "))) {
		const char *nl = strchr(p, '\n'), *data = nl + 7, *end = strstr(data, "\n\n");
		json_t *ev = json_loadb(data, (size_t)(end - data), 0, NULL);

		CHECK(n < (int)(sizeof(want) / sizeof(want[0])) && strncmp(p + 7, want[n], (size_t)(nl - p - 7)) == 0);
		CHECK_EQ_INT(json_integer_value(P(ev, "sequence_number")), n);
		json_decref(last);
		last = ev;
		n++;
		p = end;
	}
	CHECK_EQ_INT(n, (int)(sizeof(want) / sizeof(want[0])));
	CHECK_EQ_STR(json_string_value(P(last, "response.output.0.content.0.text")), "Hello");
	CHECK_EQ_STR(json_string_value(P(last, "response.output.1.call_id")), "call_1");
	CHECK_EQ_STR(json_string_value(P(last, "response.output.1.arguments")), "{}");
	CHECK_EQ_INT(json_integer_value(P(last, "response.usage.input_tokens")), 4);
	CHECK_EQ_INT(json_integer_value(P(last, "response.usage.output_tokens")), 6);
	CHECK_EQ_STR(json_string_value(P(last, "response.status")), "completed");
	json_decref(last);
	xl_resp_stream_free(&rs);
	json_decref(req);
}

int main(void)
{
	RUN(ollama_stream);
	RUN(anthropic_stream);
	RUN(gemini_stream);
	RUN(bedrock_stream);
	RUN(openai_stream_strips_added_usage);
	RUN(messages_stream_output);
	RUN(test_responses_passthrough);
	RUN(test_responses_translated_stream);
	TEST_END();
}
