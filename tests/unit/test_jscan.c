#include "json/jscan.h"

#include "testlib.h"

#include <stdlib.h>

static int scan(const char *doc, struct jscan_top *t)
{
	return jscan_top(doc, strlen(doc), 0, t);
}

static void test_valid_documents(void)
{
	static const char *const ok[] = {
		"{}", " { } ", "[]", "0", "-0.5e+3", "\"x\"", "true", "null",
		"{\"a\":[1,2,{\"b\":null}],\"c\":\"\\u00e9\\ud83d\\ude00\\n\"}",
		"{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi \\\"there\\\"\"}]}",
		"{\"x\":\"caf\xc3\xa9\"}",
	};
	struct jscan_top t;

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		CHECK_EQ_INT(scan(ok[i], &t), JSCAN_OK);
}

static void test_invalid_documents(void)
{
	static const char *const bad[] = {
		"", " ", "{", "{\"a\"}", "{\"a\":}", "{\"a\":1,}", "[1,]", "{'a':1}", "01", "1.",
		"-", "1e", "\"\\x\"", "\"\\u12\"", "\"\\udc00\"", "\"\\ud800x\"", "\"a\nb\"", "tru",
		"{\"model\":\"m\"} x", "{\"model\":\"m\",\"messages\":[", "nul", "{\"a\" 1}",
	};
	struct jscan_top t;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = scan(bad[i], &t);
		if (rc != JSCAN_SYNTAX)
			fprintf(stderr, "  accepted: %s\n", bad[i]);
		CHECK_EQ_INT(rc, JSCAN_SYNTAX);
	}
}

static void test_depth_limit(void)
{
	char doc[300];
	struct jscan_top t;

	memset(doc, '[', 100);
	memset(doc + 100, ']', 100);
	doc[200] = '\0';
	CHECK_EQ_INT(jscan_top(doc, 200, 64, &t), JSCAN_TOO_DEEP);
	CHECK_EQ_INT(jscan_top(doc, 200, 100, &t), JSCAN_OK);
}

static void test_fields(void)
{
	struct jscan_top t;

	CHECK_EQ_INT(scan("{\"stream\":true,\"model\":\"gpt-4o\",\"max_tokens\":256,"
			  "\"nested\":{\"model\":\"other\"}}", &t), JSCAN_OK);
	CHECK_EQ_INT(t.root, JSCAN_OBJECT);
	CHECK_EQ_INT(t.model_count, 1); /* nested "model" keys do not count */
	CHECK_EQ_INT(t.model_type, JSCAN_STRING);
	CHECK_EQ_STR(t.model, "gpt-4o");
	CHECK_EQ_INT(t.model_len, 6);
	CHECK_EQ_INT(t.stream_type, JSCAN_BOOL);
	CHECK_EQ_INT(t.stream, 1);
	CHECK_EQ_INT(t.max_tokens_type, JSCAN_NUMBER);
	CHECK_EQ_INT(t.max_tokens, 256);
	CHECK_EQ_INT(scan("{\"stream\":false,\"max_tokens\":1.5}", &t), JSCAN_OK);
	CHECK_EQ_INT(t.model_count, 0);
	CHECK_EQ_INT(t.stream, 0);
	CHECK_EQ_INT(t.max_tokens, -1);
}

static void test_duplicates_and_escapes(void)
{
	struct jscan_top t;

	CHECK_EQ_INT(scan("{\"model\":\"a\",\"model\":\"b\"}", &t), JSCAN_OK);
	CHECK_EQ_INT(t.model_count, 2);
	CHECK_EQ_STR(t.model, "a");
	/* An escaped key is the same key to every JSON parser. */
	CHECK_EQ_INT(scan("{\"model\":\"a\",\"mod\\u0065l\":\"b\"}", &t), JSCAN_OK);
	CHECK_EQ_INT(t.model_count, 2);
	CHECK_EQ_INT(scan("{\"model\":\"caf\\u00e9\\/x\"}", &t), JSCAN_OK);
	CHECK_EQ_STR(t.model, "caf\xc3\xa9/x");
	CHECK_EQ_INT(scan("{\"model\":\"a\\u0000b\"}", &t), JSCAN_OK);
	CHECK(t.model_has_nul);
	CHECK_EQ_INT(scan("{\"model\":42}", &t), JSCAN_OK);
	CHECK_EQ_INT(t.model_type, JSCAN_NUMBER);
}

static void test_long_model(void)
{
	char doc[400];
	struct jscan_top t;

	snprintf(doc, sizeof(doc), "{\"model\":\"%0200d\"}", 7);
	CHECK_EQ_INT(scan(doc, &t), JSCAN_OK);
	CHECK(t.model_too_long);
	CHECK(strlen(t.model) < JSCAN_MODEL_MAX);
}

static void test_stream_options(void)
{
	struct jscan_top t;
	const char *d1 = "{\"model\":\"m\",\"stream_options\": {\"x\":[1],\"include_usage\":true} }";

	CHECK_EQ_INT(scan(d1, &t), JSCAN_OK);
	CHECK_EQ_INT(t.stream_options_count, 1);
	CHECK_EQ_INT(t.stream_options_type, JSCAN_OBJECT);
	CHECK_EQ_INT(t.include_usage, 1);
	CHECK_EQ_INT(t.stream_options_offset, strchr(d1 + 20, '{') - d1);
	CHECK_EQ_INT(t.stream_options_raw_len, strlen("{\"x\":[1],\"include_usage\":true}"));
	CHECK_EQ_INT(t.root_close_offset, strlen(d1) - 1);
	/* the last occurrence wins, as in upstream parsers; nested keys do not count */
	CHECK_EQ_INT(scan("{\"stream_options\":{\"include_usage\":true,\"include_usage\":false}}", &t), JSCAN_OK);
	CHECK_EQ_INT(t.include_usage, 0);
	CHECK_EQ_INT(scan("{\"stream_options\":{\"a\":{\"include_usage\":true}}}", &t), JSCAN_OK);
	CHECK_EQ_INT(t.include_usage, 0);
	CHECK_EQ_INT(scan("{\"a\":{\"stream_options\":{\"include_usage\":true}}}", &t), JSCAN_OK);
	CHECK_EQ_INT(t.stream_options_count, 0);
	CHECK_EQ_INT(t.include_usage, 0);
	/* not an object, or twice */
	CHECK_EQ_INT(scan("{\"stream_options\":null}", &t), JSCAN_OK);
	CHECK_EQ_INT(t.stream_options_type, JSCAN_NULL);
	CHECK_EQ_INT(t.stream_options_raw_len, 4);
	CHECK_EQ_INT(scan("{\"stream_options\":{},\"stream_options\":{\"include_usage\":true}}", &t), JSCAN_OK);
	CHECK_EQ_INT(t.stream_options_count, 2);
	CHECK_EQ_INT(scan("{\"stream_options\":{\"include_usage\":tru}}", &t), JSCAN_SYNTAX);
}

static void test_no_overread(void)
{
	/* Every prefix of a valid document is scanned without reading past its end
	 * (ASan checks the heap copy). */
	const char *doc = "{\"model\":\"m\\u00e9\",\"a\":[1.5e3,true,null,{\"b\":\"\\ud83d\\ude00\"}],"
			  "\"stream_options\":{\"include_usage\":true}}";
	size_t n = strlen(doc);
	struct jscan_top t;

	for (size_t i = 0; i < n; i++) {
		char *copy = malloc(i ? i : 1);
		memcpy(copy, doc, i);
		CHECK(jscan_top(copy, i, 0, &t) != JSCAN_OK);
		free(copy);
	}
}

/* The Responses API's fields: previous_response_id (decoded, counted, typed) and
 * max_output_tokens, read as max_tokens. */
static void test_responses_fields(void)
{
	struct jscan_top t;

	CHECK_EQ_INT(scan("{\"model\":\"m\",\"previous_\\u0072esponse_id\":\"resp_1\",\"max_output_tokens\":77}", &t),
		     JSCAN_OK);
	CHECK_EQ_INT(t.prev_count, 1);
	CHECK_EQ_INT(t.prev_type, JSCAN_STRING);
	CHECK_EQ_STR(t.prev, "resp_1");
	CHECK_EQ_INT(t.prev_len, 6);
	CHECK_EQ_INT(t.max_tokens_type, JSCAN_NUMBER);
	CHECK_EQ_INT(t.max_tokens, 77);
	CHECK_EQ_INT(scan("{\"previous_response_id\":\"a\",\"previous_response_id\":\"b\"}", &t), JSCAN_OK);
	CHECK_EQ_INT(t.prev_count, 2);
	CHECK_EQ_STR(t.prev, "a");
	CHECK_EQ_INT(scan("{\"previous_response_id\":null}", &t), JSCAN_OK);
	CHECK_EQ_INT(t.prev_type, JSCAN_NULL);
	CHECK_EQ_INT(scan("{\"previous_response_id\":[1]}", &t), JSCAN_OK);
	CHECK_EQ_INT(t.prev_type, JSCAN_ARRAY);
	CHECK_EQ_INT(scan("{\"x\":{\"previous_response_id\":\"nested\"}}", &t), JSCAN_OK);
	CHECK_EQ_INT(t.prev_count, 0);
}

/* jscan_members: any top-level members, keys compared after unescaping, the last
 * duplicate's value kept and every duplicate counted; jscan_string decodes a token. */
static void test_members(void)
{
	static const char *const keys[] = { "body", "url", "created_at" };
	const char *doc = "{\"url\":\"/a\",\"b\\u006fdy\":{\"model\":\"x\"},\"nested\":{\"url\":1},"
			  "\"created_at\":1700000000,\"url\":\"/v1/\\u0065mbeddings\"}";
	struct jscan_member m[3];
	char out[32];
	size_t n;

	CHECK_EQ_INT(jscan_members(doc, strlen(doc), 0, keys, 3, m), JSCAN_OK);
	CHECK_EQ_INT(m[0].count, 1);
	CHECK_EQ_INT(m[0].type, JSCAN_OBJECT);
	CHECK_EQ_INT(m[0].len, strlen("{\"model\":\"x\"}"));
	CHECK(memcmp(doc + m[0].offset, "{\"model\":\"x\"}", m[0].len) == 0);
	CHECK_EQ_INT(m[1].count, 2);
	CHECK_EQ_INT(m[1].type, JSCAN_STRING);
	CHECK_EQ_INT(jscan_string(doc + m[1].offset, m[1].len, out, sizeof(out), &n), 0);
	CHECK_EQ_STR(out, "/v1/embeddings");
	CHECK_EQ_INT(m[2].count, 1);
	CHECK_EQ_INT(m[2].is_integer, 1);
	CHECK(m[2].integer == 1700000000);
	/* Not an object, trailing bytes, invalid JSON. */
	CHECK(jscan_members("[1]", 3, 0, keys, 3, m) != JSCAN_OK);
	CHECK(jscan_members("{} x", 4, 0, keys, 3, m) != JSCAN_OK);
	CHECK(jscan_members("{\"url\":}", 8, 0, keys, 3, m) != JSCAN_OK);
	CHECK_EQ_INT(jscan_members("{}", 2, 0, keys, 3, m), JSCAN_OK);
	CHECK_EQ_INT(m[1].count, 0);
	/* jscan_string: one token only, and it must fit. */
	CHECK_EQ_INT(jscan_string("\"abc\"", 5, out, 4, &n), 0);
	CHECK_EQ_STR(out, "abc");
	CHECK_EQ_INT(jscan_string("\"abcd\"", 6, out, 4, &n), -1);
	CHECK_EQ_INT(jscan_string("\"a\" ", 4, out, sizeof(out), &n), -1);
	CHECK_EQ_INT(jscan_string("12", 2, out, sizeof(out), &n), -1);
}

int main(void)
{
	RUN(test_members);
	RUN(test_valid_documents);
	RUN(test_invalid_documents);
	RUN(test_depth_limit);
	RUN(test_fields);
	RUN(test_duplicates_and_escapes);
	RUN(test_long_model);
	RUN(test_stream_options);
	RUN(test_no_overread);
	RUN(test_responses_fields);
	TEST_END();
}
