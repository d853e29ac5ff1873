/*
 * form/multipart: boundaries from Content-Type, fields from complete parts only, and
 * refusal of every form another parser could read differently.
 */
#include "form/multipart.h"

#include "testlib.h"

#include <stdio.h>
#include <string.h>

#define B "XyZ123"

static int parse(const char *body, struct mp_form *f)
{
	return mp_parse(body, strlen(body), B, strlen(B), f);
}

static const char *field(const char *body, const struct mp_field *fl, char *out, size_t cap)
{
	snprintf(out, cap, "%.*s", (int)fl->len, body + fl->offset);
	return out;
}

static void test_boundary(void)
{
	char b[MP_BOUNDARY_MAX + 1];
	const char *ct;

	ct = "multipart/form-data; boundary=" B;
	CHECK_EQ_INT(mp_boundary(ct, strlen(ct), b), 6);
	CHECK_EQ_STR(b, B);
	ct = "Multipart/Form-Data ;charset=utf-8; BOUNDARY=\"a b'c\"";
	CHECK_EQ_INT(mp_boundary(ct, strlen(ct), b), 5);
	CHECK_EQ_STR(b, "a b'c");
	CHECK(mp_is_form(ct, strlen(ct)));
	ct = "multipart/form-data";
	CHECK_EQ_INT(mp_boundary(ct, strlen(ct), b), -1);
	CHECK(mp_is_form(ct, strlen(ct)));
	ct = "application/json; boundary=x";
	CHECK_EQ_INT(mp_boundary(ct, strlen(ct), b), -1);
	CHECK(!mp_is_form(ct, strlen(ct)));
	ct = "multipart/form-dataX; boundary=x";
	CHECK(!mp_is_form(ct, strlen(ct)));
	ct = "multipart/form-data; boundary=x; boundary=y"; /* two: ambiguous */
	CHECK_EQ_INT(mp_boundary(ct, strlen(ct), b), -1);
	ct = "multipart/form-data; boundary=\"a\\\"b\""; /* escapes refused */
	CHECK_EQ_INT(mp_boundary(ct, strlen(ct), b), -1);
	ct = "multipart/form-data; boundary=\"ends with space \"";
	CHECK_EQ_INT(mp_boundary(ct, strlen(ct), b), -1);
	ct = "multipart/form-data; boundary="
	     "12345678901234567890123456789012345678901234567890123456789012345678901"; /* 71 */
	CHECK_EQ_INT(mp_boundary(ct, strlen(ct), b), -1);
	ct = "multipart/form-data; boundary=";
	CHECK_EQ_INT(mp_boundary(ct, strlen(ct), b), -1);
	CHECK(!mp_is_form(NULL, 0));
}

#define PART(name, value) "--" B "\r\nContent-Disposition: form-data; name=\"" name "\"\r\n\r\n" value "\r\n"
#define FILEPART(name, value)                                                              \
	"--" B "\r\nContent-Disposition: form-data; name=\"" name "\"; filename=\"a.wav\"\r\n" \
	"Content-Type: audio/wav\r\n\r\n" value "\r\n"
#define END "--" B "--\r\n"

static void test_fields(void)
{
	const char *body = FILEPART("file", "RIFF\r\n--XyZ12 not a delimiter") PART("model", "whisper-1")
		PART("stream", "true") END;
	struct mp_form f;
	char v[64];

	CHECK_EQ_INT(parse(body, &f), MP_OK);
	CHECK(f.complete);
	CHECK_EQ_INT(f.parts, 3);
	CHECK_EQ_INT(f.model.count, 1);
	CHECK_EQ_INT(f.model.is_file, 0);
	CHECK_EQ_STR(field(body, &f.model, v, sizeof(v)), "whisper-1");
	CHECK_EQ_STR(field(body, &f.stream, v, sizeof(v)), "true");
	CHECK_EQ_INT(f.consumed, strlen(body) - 2);
	/* Model first, empty values, a transport-padded delimiter, an epilogue. */
	body = "--" B "  \r\nContent-Disposition: form-data; name=model\r\n\r\nm\r\n"
	       PART("prompt", "") END "epilogue";
	CHECK_EQ_INT(parse(body, &f), MP_OK);
	CHECK(f.complete);
	CHECK_EQ_STR(field(body, &f.model, v, sizeof(v)), "m");
	/* A field with a file name is not a plain value. */
	body = FILEPART("model", "x") END;
	CHECK_EQ_INT(parse(body, &f), MP_OK);
	CHECK_EQ_INT(f.model.is_file, 1);
	/* Two model parts are counted (the caller refuses them). */
	body = PART("model", "a") PART("model", "b") END;
	CHECK_EQ_INT(parse(body, &f), MP_OK);
	CHECK_EQ_INT(f.model.count, 2);
	CHECK_EQ_STR(field(body, &f.model, v, sizeof(v)), "a");
	/* Field names are case-sensitive. */
	body = PART("Model", "a") END;
	CHECK_EQ_INT(parse(body, &f), MP_OK);
	CHECK_EQ_INT(f.model.count, 0);
}

static void test_truncated(void)
{
	const char *full = PART("model", "whisper-1") FILEPART("file", "0123456789") END;
	struct mp_form f;
	/* The model part, then "--" B "\r\n": its closing delimiter and what follows. */
	size_t cut_after_model = strlen(PART("model", "whisper-1")) + 2 + strlen(B) + 2;

	for (size_t n = 0; n < strlen(full); n++) {
		int rc = mp_parse(full, n, B, strlen(B), &f);
		CHECK_EQ_INT(rc, MP_OK);
		CHECK(f.complete == (n >= strlen(full) - 2));
		/* The model is trusted only once its closing delimiter and what follows
		 * it are inside the prefix. */
		CHECK(!!f.model.count == (n >= cut_after_model));
	}
	CHECK_EQ_INT(mp_parse(full, cut_after_model, B, strlen(B), &f), MP_OK);
	CHECK_EQ_INT(f.model.count, 1);
	/* Model after the file: not in a prefix that cuts the file. */
	full = FILEPART("file", "0123456789") PART("model", "whisper-1") END;
	CHECK_EQ_INT(mp_parse(full, 60, B, strlen(B), &f), MP_OK);
	CHECK_EQ_INT(f.model.count, 0);
	CHECK(!f.complete);
}

static void test_malformed(void)
{
	static const char *const bad[] = {
		"preamble\r\n" PART("model", "m") END,
		"--other\r\n",
		"--" B "--\r\n",                                     /* no parts */
		"--" B "x\r\n",                                      /* junk after the delimiter */
		"--" B "\r\n\r\nvalue\r\n" END,                      /* no headers, no name */
		"--" B "\r\nContent-Type: text/plain\r\n\r\nv\r\n" END, /* no disposition */
		"--" B "\r\nContent-Disposition: attachment; name=\"model\"\r\n\r\nv\r\n" END,
		"--" B "\r\nContent-Disposition: form-data; name*=utf-8''model\r\n\r\nv\r\n" END,
		"--" B "\r\nContent-Disposition: form-data; name=\"mo\\\"del\"\r\n\r\nv\r\n" END,
		"--" B "\r\nContent-Disposition: form-data; name=\"a\"; name=\"b\"\r\n\r\nv\r\n" END,
		"--" B "\r\nContent-Disposition: form-data; name=\"model\"\r\n"
		"Content-Disposition: form-data; name=\"x\"\r\n\r\nv\r\n" END,
		"--" B "\r\nContent-Disposition: form-data;\r\n name=\"model\"\r\n\r\nv\r\n" END,
		"--" B "\r\nContent-Disposition: form-data; name=\"model\"\r\n"
		"Content-Transfer-Encoding: base64\r\n\r\nbQ==\r\n" END,
		"--" B "\r\nContent-Disposition: form-data; name=\"model\r\n\r\nv\r\n" END,
		"--" B "\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nv\r\n--" B "junk",
		"--" B "\r\nNoColonHere\r\n\r\nv\r\n" END,
	};
	struct mp_form f;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = parse(bad[i], &f);
		if (rc != MP_MALFORMED)
			fprintf(stderr, "  case %zu parsed\n", i);
		CHECK_EQ_INT(rc, MP_MALFORMED);
	}
	CHECK_EQ_INT(mp_parse("--" B, 8, "bad\x01", 4, &f), MP_MALFORMED);
}

static void test_header_limits(void)
{
	static char body[MP_HEADERS_MAX * 2];
	struct mp_form f;
	size_t n = (size_t)snprintf(body, sizeof(body), "--" B "\r\n");

	/* More header lines than allowed. */
	for (int i = 0; i < MP_HEADER_LINES_MAX; i++)
		n += (size_t)snprintf(body + n, sizeof(body) - n, "X-H%d: v\r\n", i);
	n += (size_t)snprintf(body + n, sizeof(body) - n,
			      "Content-Disposition: form-data; name=\"model\"\r\n\r\nm\r\n" END);
	CHECK_EQ_INT(mp_parse(body, n, B, strlen(B), &f), MP_MALFORMED);
	/* A header block that never ends within the limit. */
	n = (size_t)snprintf(body, sizeof(body), "--" B "\r\nX: ");
	memset(body + n, 'a', sizeof(body) - n);
	CHECK_EQ_INT(mp_parse(body, sizeof(body), B, strlen(B), &f), MP_MALFORMED);
	/* ... but a short unfinished one is just incomplete. */
	CHECK_EQ_INT(mp_parse(body, 100, B, strlen(B), &f), MP_OK);
	CHECK(!f.complete);
}

/* The Files API's upload: purpose and file are picked out like model; a
 * Content-Transfer-Encoding on either is refused. */
static void test_files_fields(void)
{
	const char *body = PART("purpose", "batch") FILEPART("file", "{\"a\":1}\n{\"b\":2}\n") END;
	struct mp_form f;
	char v[64];

	CHECK_EQ_INT(parse(body, &f), MP_OK);
	CHECK(f.complete);
	CHECK_EQ_INT(f.purpose.count, 1);
	CHECK_EQ_INT(f.purpose.is_file, 0);
	CHECK_EQ_STR(field(body, &f.purpose, v, sizeof(v)), "batch");
	CHECK_EQ_INT(f.file.count, 1);
	CHECK_EQ_INT(f.file.is_file, 1);
	CHECK_EQ_STR(field(body, &f.file, v, sizeof(v)), "{\"a\":1}\n{\"b\":2}\n");
	CHECK_EQ_INT(f.model.count, 0);
	body = PART("purpose", "a") PART("purpose", "b") END;
	CHECK_EQ_INT(parse(body, &f), MP_OK);
	CHECK_EQ_INT(f.purpose.count, 2);
	body = "--" B "\r\nContent-Disposition: form-data; name=\"purpose\"\r\n"
	       "Content-Transfer-Encoding: base64\r\n\r\nYmF0Y2g=\r\n" END;
	CHECK_EQ_INT(parse(body, &f), MP_MALFORMED);
	/* Cut inside the file part: purpose is known, the file is not. */
	body = PART("purpose", "batch") FILEPART("file", "0123456789") END;
	CHECK_EQ_INT(mp_parse(body, strlen(body) - 20, B, strlen(B), &f), MP_OK);
	CHECK(!f.complete);
	CHECK_EQ_INT(f.purpose.count, 1);
	CHECK_EQ_INT(f.file.count, 0);
}

int main(void)
{
	RUN(test_boundary);
	RUN(test_files_fields);
	RUN(test_fields);
	RUN(test_truncated);
	RUN(test_malformed);
	RUN(test_header_limits);
	TEST_END();
}
