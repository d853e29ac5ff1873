#include "json/jscan.h"

#include <string.h>

struct scan {
	const char *p, *end;
	unsigned depth, max_depth;
	int err;
	const char *start; /* of the document, for offsets */
	void *user;        /* jscan_members: its request */
};

static void skip_ws(struct scan *s)
{
	while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
		s->p++;
}

static int fail(struct scan *s, int err)
{
	if (!s->err)
		s->err = err;
	return -1;
}

static int hex4(const char *p, unsigned *out)
{
	unsigned v = 0;

	for (int i = 0; i < 4; i++) {
		char c = p[i];
		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (unsigned)(c - 'A' + 10);
		else
			return -1;
	}
	*out = v;
	return 0;
}

/* Appends code point cp as UTF-8 to out (when out is not NULL), bounded by cap. */
static void put_utf8(char *out, size_t cap, size_t *n, unsigned cp, int *overflow)
{
	char b[4];
	size_t k;

	if (cp < 0x80)
		b[0] = (char)cp, k = 1;
	else if (cp < 0x800)
		b[0] = (char)(0xc0 | cp >> 6), b[1] = (char)(0x80 | (cp & 0x3f)), k = 2;
	else if (cp < 0x10000)
		b[0] = (char)(0xe0 | cp >> 12), b[1] = (char)(0x80 | ((cp >> 6) & 0x3f)),
		b[2] = (char)(0x80 | (cp & 0x3f)), k = 3;
	else
		b[0] = (char)(0xf0 | cp >> 18), b[1] = (char)(0x80 | ((cp >> 12) & 0x3f)),
		b[2] = (char)(0x80 | ((cp >> 6) & 0x3f)), b[3] = (char)(0x80 | (cp & 0x3f)), k = 4;
	if (!out)
		return;
	if (*n + k >= cap) {
		*overflow = 1;
		return;
	}
	memcpy(out + *n, b, k);
	*n += k;
}

static void put_raw(char *out, size_t cap, size_t *n, char c, int *overflow)
{
	if (!out)
		return;
	if (*n + 1 >= cap) {
		*overflow = 1;
		return;
	}
	out[(*n)++] = c;
}

/* One \uXXXX escape (the 'u' is at s->p), a surrogate pair as one code point. */
static int unicode_escape(struct scan *s, unsigned *cp)
{
	unsigned lo;

	if (s->end - s->p < 5 || hex4(s->p + 1, cp) < 0)
		return fail(s, JSCAN_SYNTAX);
	s->p += 5;
	if (*cp >= 0xdc00 && *cp <= 0xdfff)
		return fail(s, JSCAN_SYNTAX); /* lone low surrogate */
	if (*cp < 0xd800 || *cp > 0xdbff)
		return 0;
	if (s->end - s->p < 6 || s->p[0] != '\\' || s->p[1] != 'u' || hex4(s->p + 2, &lo) < 0 ||
	    lo < 0xdc00 || lo > 0xdfff)
		return fail(s, JSCAN_SYNTAX);
	s->p += 6;
	*cp = 0x10000 + ((*cp - 0xd800) << 10) + (lo - 0xdc00);
	return 0;
}

static int simple_escape(char c, char *out)
{
	static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
	const char *f = memchr(from, c, sizeof(from) - 1);

	if (!f)
		return -1;
	*out = to[f - from];
	return 0;
}

/* Scans a string (s->p at the opening quote). Decodes into out[0..cap) when out is set;
 * *n is the decoded length, *overflow set when it did not fit. */
static int scan_string(struct scan *s, char *out, size_t cap, size_t *n, int *overflow)
{
	*n = 0;
	s->p++;
	while (s->p < s->end) {
		unsigned char c = (unsigned char)*s->p;
		unsigned cp;
		char e;

		if (c == '"') {
			s->p++;
			if (out)
				out[*n < cap ? *n : cap - 1] = '\0';
			return 0;
		}
		if (c < 0x20)
			return fail(s, JSCAN_SYNTAX);
		if (c != '\\') {
			put_raw(out, cap, n, (char)c, overflow); /* raw bytes are copied as they are */
			s->p++;
			continue;
		}
		if (++s->p >= s->end)
			return fail(s, JSCAN_SYNTAX);
		if (*s->p == 'u') {
			if (unicode_escape(s, &cp) < 0)
				return -1;
			put_utf8(out, cap, n, cp, overflow);
			continue;
		}
		if (simple_escape(*s->p, &e) < 0)
			return fail(s, JSCAN_SYNTAX);
		put_utf8(out, cap, n, (unsigned char)e, overflow);
		s->p++;
	}
	return fail(s, JSCAN_SYNTAX);
}

static int is_digit(const struct scan *s)
{
	return s->p < s->end && *s->p >= '0' && *s->p <= '9';
}

static void skip_digits(struct scan *s)
{
	while (is_digit(s))
		s->p++;
}

/* Number grammar; *integer and *value report a plain integer that fits int64. */
static int scan_number(struct scan *s, int *integer, int64_t *value)
{
	int neg = 0, overflow = 0;
	int64_t v = 0;

	if (*s->p == '-')
		neg = 1, s->p++;
	if (!is_digit(s))
		return fail(s, JSCAN_SYNTAX);
	if (*s->p == '0')
		s->p++;
	else
		for (; is_digit(s); s->p++) {
			int d = *s->p - '0';
			if (v > (INT64_MAX - d) / 10)
				overflow = 1;
			else
				v = v * 10 + d;
		}
	*integer = !overflow;
	if (s->p < s->end && *s->p == '.') {
		s->p++;
		if (!is_digit(s))
			return fail(s, JSCAN_SYNTAX);
		skip_digits(s);
		*integer = 0;
	}
	if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
		s->p++;
		if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
			s->p++;
		if (!is_digit(s))
			return fail(s, JSCAN_SYNTAX);
		skip_digits(s);
		*integer = 0;
	}
	*value = neg ? -v : v;
	return 0;
}

static int scan_literal(struct scan *s, const char *lit)
{
	size_t n = strlen(lit);

	if ((size_t)(s->end - s->p) < n || memcmp(s->p, lit, n) != 0)
		return fail(s, JSCAN_SYNTAX);
	s->p += n;
	return 0;
}

static int scan_value(struct scan *s, enum jscan_type *type);

static int scan_array(struct scan *s)
{
	enum jscan_type t;

	s->p++;
	skip_ws(s);
	if (s->p < s->end && *s->p == ']')
		return s->p++, 0;
	for (;;) {
		if (scan_value(s, &t) < 0)
			return -1;
		skip_ws(s);
		if (s->p >= s->end)
			return fail(s, JSCAN_SYNTAX);
		if (*s->p == ']')
			return s->p++, 0;
		if (*s->p++ != ',')
			return fail(s, JSCAN_SYNTAX);
		skip_ws(s);
	}
}

/* Reads the value of the member KEY (s->p at the value) into what top collects. */
typedef int (*member_fn)(struct scan *s, struct jscan_top *top, const char *key, size_t klen,
			 int koverflow);

/* The members of an object. With fn, keys are decoded and fn reads each value (the root
 * object, stream_options); without, the values are skipped. *close (when non-NULL) gets
 * the offset of the closing brace. */
static int scan_members(struct scan *s, struct jscan_top *top, member_fn fn, size_t *close);

static int scan_value(struct scan *s, enum jscan_type *type)
{
	int integer, overflow = 0;
	int64_t v;
	size_t n;

	skip_ws(s);
	if (s->p >= s->end)
		return fail(s, JSCAN_SYNTAX);
	switch (*s->p) {
	case '{':
	case '[':
		if (++s->depth > s->max_depth)
			return fail(s, JSCAN_TOO_DEEP);
		*type = *s->p == '{' ? JSCAN_OBJECT : JSCAN_ARRAY;
		if ((*type == JSCAN_OBJECT ? scan_members(s, NULL, NULL, NULL) : scan_array(s)) < 0)
			return -1;
		s->depth--;
		return 0;
	case '"':
		*type = JSCAN_STRING;
		return scan_string(s, NULL, 0, &n, &overflow);
	case 't':
		*type = JSCAN_BOOL;
		return scan_literal(s, "true");
	case 'f':
		*type = JSCAN_BOOL;
		return scan_literal(s, "false");
	case 'n':
		*type = JSCAN_NULL;
		return scan_literal(s, "null");
	default:
		*type = JSCAN_NUMBER;
		return scan_number(s, &integer, &v);
	}
}

/* A member kept only for its first string value: counts it and, unless it is the first one
 * and a string, scans the value past (recording the first one's type). Returns 1 when the
 * caller is to scan the string at s->p (its type is set), 0 when done, -1 on error. */
static int scan_first_string(struct scan *s, unsigned *count, enum jscan_type *type)
{
	enum jscan_type t;

	skip_ws(s);
	(*count)++;
	if (*count > 1 || s->p >= s->end || *s->p != '"') {
		if (scan_value(s, &t) < 0)
			return -1;
		if (*count == 1)
			*type = t;
		return 0;
	}
	*type = JSCAN_STRING;
	return 1;
}

/* A top-level member value we care about: scanned with its details kept. */
static int scan_model(struct scan *s, struct jscan_top *top)
{
	int r = scan_first_string(s, &top->model_count, &top->model_type);

	if (r <= 0)
		return r;
	top->model_offset = (size_t)(s->p - s->start);
	if (scan_string(s, top->model, sizeof(top->model), &top->model_len, &top->model_too_long) < 0)
		return -1;
	top->model_raw_len = (size_t)(s->p - s->start) - top->model_offset;
	top->model_has_nul = memchr(top->model, 0, top->model_len) != NULL;
	return 0;
}

/* previous_response_id: the first string value kept, decoded. */
static int scan_prev(struct scan *s, struct jscan_top *top)
{
	int r = scan_first_string(s, &top->prev_count, &top->prev_type);

	if (r <= 0)
		return r;
	return scan_string(s, top->prev, sizeof(top->prev), &top->prev_len, &top->prev_too_long);
}

static int scan_stream(struct scan *s, struct jscan_top *top)
{
	skip_ws(s);
	if (s->p < s->end && *s->p == 't')
		top->stream = 1;
	return scan_value(s, &top->stream_type);
}

/* A member of stream_options: include_usage is true when its last occurrence is the
 * literal true (what upstream parsers, which keep the last duplicate, will read). */
static int stream_options_member(struct scan *s, struct jscan_top *top, const char *key, size_t klen,
				 int koverflow)
{
	enum jscan_type t;

	skip_ws(s);
	if (!koverflow && klen == 13 && memcmp(key, "include_usage", 13) == 0)
		top->include_usage = s->p < s->end && *s->p == 't';
	return scan_value(s, &t);
}

static int scan_stream_options(struct scan *s, struct jscan_top *top)
{
	enum jscan_type t;
	size_t start;
	int rc;

	skip_ws(s);
	start = (size_t)(s->p - s->start);
	if (++top->stream_options_count > 1 || s->p >= s->end || *s->p != '{') {
		rc = scan_value(s, &t);
		if (top->stream_options_count == 1)
			top->stream_options_type = t;
	} else {
		top->stream_options_type = JSCAN_OBJECT;
		if (++s->depth > s->max_depth)
			return fail(s, JSCAN_TOO_DEEP);
		rc = scan_members(s, top, stream_options_member, NULL);
		s->depth--;
	}
	if (rc == 0 && top->stream_options_count == 1) {
		top->stream_options_offset = start;
		top->stream_options_raw_len = (size_t)(s->p - s->start) - start;
	}
	return rc;
}

static int scan_max_tokens(struct scan *s, struct jscan_top *top)
{
	int integer = 0;

	skip_ws(s);
	if (s->p < s->end && (*s->p == '-' || (*s->p >= '0' && *s->p <= '9'))) {
		top->max_tokens_type = JSCAN_NUMBER;
		if (scan_number(s, &integer, &top->max_tokens) < 0)
			return -1;
		if (!integer)
			top->max_tokens = -1;
		return 0;
	}
	return scan_value(s, &top->max_tokens_type);
}

static int member_value(struct scan *s, struct jscan_top *top, const char *key, size_t klen, int koverflow)
{
	enum jscan_type t;

	if (!koverflow) {
		if (klen == 5 && memcmp(key, "model", 5) == 0)
			return scan_model(s, top);
		if (klen == 6 && memcmp(key, "stream", 6) == 0)
			return scan_stream(s, top);
		if ((klen == 10 && memcmp(key, "max_tokens", 10) == 0) ||
		    (klen == 17 && memcmp(key, "max_output_tokens", 17) == 0))
			return scan_max_tokens(s, top);
		if (klen == 20 && memcmp(key, "previous_response_id", 20) == 0)
			return scan_prev(s, top);
		if (klen == 14 && memcmp(key, "stream_options", 14) == 0)
			return scan_stream_options(s, top);
	}
	return scan_value(s, &t);
}

static int scan_members(struct scan *s, struct jscan_top *top, member_fn fn, size_t *close)
{
	char key[24];
	size_t klen;
	int koverflow;

	s->p++;
	skip_ws(s);
	if (s->p < s->end && *s->p == '}')
		return s->p++, 0;
	for (;;) {
		if (s->p >= s->end || *s->p != '"')
			return fail(s, JSCAN_SYNTAX);
		koverflow = 0;
		/* Only short keys can be one we want: decode into a small buffer. */
		if (scan_string(s, fn ? key : NULL, sizeof(key), &klen, &koverflow) < 0)
			return -1;
		skip_ws(s);
		if (s->p >= s->end || *s->p++ != ':')
			return fail(s, JSCAN_SYNTAX);
		if (fn) {
			if (fn(s, top, key, klen, koverflow) < 0)
				return -1;
		} else {
			enum jscan_type t;

			if (scan_value(s, &t) < 0)
				return -1;
		}
		skip_ws(s);
		if (s->p >= s->end)
			return fail(s, JSCAN_SYNTAX);
		if (*s->p == '}') {
			if (close)
				*close = (size_t)(s->p - s->start);
			return s->p++, 0;
		}
		if (*s->p++ != ',')
			return fail(s, JSCAN_SYNTAX);
		skip_ws(s);
	}
}

int jscan_top(const char *p, size_t len, unsigned max_depth, struct jscan_top *out)
{
	struct scan s = { p, p + len, 0, max_depth ? max_depth : JSCAN_DEFAULT_DEPTH, 0, p, NULL };
	int rc;

	memset(out, 0, sizeof(*out));
	skip_ws(&s);
	if (s.p < s.end && *s.p == '{') {
		out->root = JSCAN_OBJECT;
		s.depth = 1;
		rc = scan_members(&s, out, member_value, &out->root_close_offset);
	} else {
		rc = scan_value(&s, &out->root);
	}
	if (rc == 0) {
		skip_ws(&s);
		if (s.p != s.end)
			rc = fail(&s, JSCAN_SYNTAX); /* trailing garbage */
	}
	if (rc < 0) {
		out->error_offset = (size_t)(s.p - p);
		return s.err ? s.err : JSCAN_SYNTAX;
	}
	return JSCAN_OK;
}

/* ---- any top-level members (jscan_members) ------------------------------------------- */

struct members_req {
	const char *const *keys;
	size_t n;
	struct jscan_member *out;
};

static int any_member(struct scan *s, struct jscan_top *top, const char *key, size_t klen, int koverflow)
{
	const struct members_req *q = s->user;
	struct jscan_member *m = NULL;
	const char *start;

	(void)top;
	for (size_t i = 0; !koverflow && i < q->n; i++)
		if (strlen(q->keys[i]) == klen && memcmp(q->keys[i], key, klen) == 0)
			m = &q->out[i];
	skip_ws(s);
	start = s->p;
	if (!m) {
		enum jscan_type t;

		return scan_value(s, &t);
	}
	m->count++;
	m->is_integer = 0;
	if (s->p < s->end && (*s->p == '-' || (*s->p >= '0' && *s->p <= '9'))) {
		m->type = JSCAN_NUMBER;
		if (scan_number(s, &m->is_integer, &m->integer) < 0)
			return -1;
	} else if (scan_value(s, &m->type) < 0) {
		return -1;
	}
	m->offset = (size_t)(start - s->start);
	m->len = (size_t)(s->p - start);
	return 0;
}

int jscan_members(const char *p, size_t len, unsigned max_depth, const char *const *keys, size_t n,
		  struct jscan_member *out)
{
	struct members_req q = { keys, n, out };
	struct scan s = { p, p + len, 1, max_depth ? max_depth : JSCAN_DEFAULT_DEPTH, 0, p, &q };
	int rc;

	memset(out, 0, n * sizeof(*out));
	skip_ws(&s);
	if (s.p >= s.end || *s.p != '{')
		return JSCAN_SYNTAX;
	rc = scan_members(&s, NULL, any_member, NULL);
	if (rc == 0) {
		skip_ws(&s);
		if (s.p != s.end)
			rc = fail(&s, JSCAN_SYNTAX);
	}
	return rc < 0 ? (s.err ? s.err : JSCAN_SYNTAX) : JSCAN_OK;
}

int jscan_string(const char *p, size_t len, char *out, size_t cap, size_t *n)
{
	struct scan s = { p, p + len, 0, 1, 0, p, NULL };
	int overflow = 0;

	*n = 0;
	if (len < 2 || *p != '"' || scan_string(&s, out, cap, n, &overflow) < 0 || s.p != s.end || overflow)
		return -1;
	return 0;
}
