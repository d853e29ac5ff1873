/* mask: see mask.h. The built-in detectors are hand-written scanners (exact rules such
 * as Luhn and the resident-ID checksum cannot be regular expressions); custom rules use
 * POSIX extended regular expressions (regcomp/regexec). */
#include "mask.h"

#include "util/xalloc.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const det_names[MD__COUNT] = { "email", "phone", "cn_mobile", "cn_id", "card",
						  "ipv4", "ipv6", "secret", "regex" };
static const char *const det_labels[MD__COUNT] = { "EMAIL", "PHONE", "PHONE", "ID_NUMBER", "CARD",
						   "IP", "IP", "SECRET", "REDACTED" };

const char *mask_detector_name(enum mask_detector d)
{
	return (unsigned)d < MD__COUNT ? det_names[d] : "unknown";
}

/* ---- policy ------------------------------------------------------------------------- */

void mask_policy_free(struct mask_policy *p)
{
	for (size_t i = 0; i < p->n; i++)
		if (p->rules[i].has_re)
			regfree(&p->rules[i].re);
	p->n = 0;
}

static const char *const act_names[] = { "mask", "label", "hash", "reject" };

/* The detector and action names of a rule (no action: "mask"). */
static int parse_names(struct mask_rule *r, const char *det, const char *act, size_t i, char *err, size_t cap)
{
	int d, a;

	for (d = 0; d < MD__COUNT && !(det && strcmp(det, det_names[d]) == 0); d++)
		;
	if (d == MD__COUNT) {
		snprintf(err, cap, "rule %zu: unknown detector", i);
		return -1;
	}
	for (a = 0; act && a < 4 && strcmp(act, act_names[a]) != 0; a++)
		;
	if (a == 4) {
		snprintf(err, cap, "rule %zu: unknown action", i);
		return -1;
	}
	r->det = (enum mask_detector)d;
	r->act = act ? (enum mask_action)a : MA_MASK;
	return 0;
}

/* The label: the rule's own (1 to MASK_LABEL_MAX - 1 of [A-Za-z0-9_-]) or the detector's. */
static int parse_label(struct mask_rule *r, const char *label, size_t i, char *err, size_t cap)
{
	size_t n = label ? strlen(label) : 0;

	if (!label) {
		snprintf(r->label, sizeof(r->label), "%s", det_labels[r->det]);
		return 0;
	}
	if (n == 0 || n >= MASK_LABEL_MAX) {
		snprintf(err, cap, "rule %zu: label must have 1 to %d bytes", i, MASK_LABEL_MAX - 1);
		return -1;
	}
	for (size_t k = 0; k < n; k++) {
		if (!isalnum((unsigned char)label[k]) && label[k] != '_' && label[k] != '-') {
			snprintf(err, cap, "rule %zu: label may hold letters, digits, '_' and '-'", i);
			return -1;
		}
	}
	memcpy(r->label, label, n + 1);
	return 0;
}

static int parse_pattern(struct mask_rule *r, const char *pat, size_t i, char *err, size_t cap)
{
	if (!pat || !*pat || strlen(pat) > MASK_PATTERN_MAX) {
		snprintf(err, cap, "rule %zu: a regex rule needs a pattern of 1 to %d bytes", i, MASK_PATTERN_MAX);
		return -1;
	}
	if (regcomp(&r->re, pat, REG_EXTENDED) != 0) {
		snprintf(err, cap, "rule %zu: the pattern is not a POSIX extended regex", i);
		return -1;
	}
	r->has_re = 1;
	return 0;
}

static int parse_rule(struct mask_rule *r, const json_t *j, size_t i, char *err, size_t cap)
{
	memset(r, 0, sizeof(*r));
	if (parse_names(r, json_string_value(json_object_get(j, "detector")),
			json_string_value(json_object_get(j, "action")), i, err, cap) < 0 ||
	    parse_label(r, json_string_value(json_object_get(j, "label")), i, err, cap) < 0)
		return -1;
	if (r->det == MD_REGEX)
		return parse_pattern(r, json_string_value(json_object_get(j, "pattern")), i, err, cap);
	return 0;
}

int mask_policy_parse(struct mask_policy *p, const char *json, size_t len, char *err, size_t cap)
{
	json_t *j = json_loadb(json, len, 0, NULL), *rules, *r;
	size_t i;

	memset(p, 0, sizeof(*p));
	if (!json_is_object(j)) {
		snprintf(err, cap, "the masking policy is not a JSON object");
		json_decref(j);
		return -1;
	}
	p->responses = json_is_true(json_object_get(j, "responses"));
	rules = json_object_get(j, "rules");
	if (!rules) {
		for (int d = 0; d < MD_REGEX; d++) {
			p->rules[p->n].det = (enum mask_detector)d;
			p->rules[p->n].act = MA_MASK;
			snprintf(p->rules[p->n].label, MASK_LABEL_MAX, "%s", det_labels[d]);
			p->n++;
		}
		json_decref(j);
		return 0;
	}
	if (!json_is_array(rules) || json_array_size(rules) > MASK_RULES_MAX) {
		snprintf(err, cap, "rules must be an array of at most %d rules", MASK_RULES_MAX);
		json_decref(j);
		return -1;
	}
	json_array_foreach(rules, i, r) {
		if (parse_rule(&p->rules[p->n], r, i, err, cap) < 0) {
			mask_policy_free(p);
			json_decref(j);
			return -1;
		}
		p->n++;
	}
	json_decref(j);
	return 0;
}

/* ---- the built-in detectors --------------------------------------------------------- */
/* Each returns the length of the item starting at s[i] (0: none). i is a boundary the
 * caller checked for the detector's character class. */

static int is_digit(int c) { return c >= '0' && c <= '9'; }
static int is_word(int c) { return isalnum(c) || c == '_'; }
static int is_local(int c) { return isalnum(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-'; }

static size_t m_email(const char *s, size_t n, size_t i)
{
	size_t j = i, at, dot = 0, end;

	if (i > 0 && is_local((unsigned char)s[i - 1]))
		return 0;
	while (j < n && is_local((unsigned char)s[j]))
		j++;
	if (j == i || j >= n || s[j] != '@')
		return 0;
	at = j++;
	while (j < n && (isalnum((unsigned char)s[j]) || s[j] == '-' || s[j] == '.')) {
		if (s[j] == '.')
			dot = j;
		j++;
	}
	end = j;
	while (end > at + 1 && (s[end - 1] == '.' || s[end - 1] == '-'))
		end--; /* a sentence's full stop is not part of the domain */
	if (dot <= at + 1 || dot >= end)
		return 0;
	/* the top-level domain: at least two letters */
	for (j = dot + 1; j < end; j++)
		if (!isalpha((unsigned char)s[j]))
			return 0;
	return end - dot - 1 >= 2 ? end - i : 0;
}

/* Digits from s[i] with single separators (space or '-') between groups: the count of
 * digits, the end in *end. */
static int digit_run(const char *s, size_t n, size_t i, size_t *end, int max)
{
	int d = 0;
	size_t j = i;

	while (j < n && d < max) {
		if (is_digit((unsigned char)s[j])) {
			d++;
			j++;
		} else if ((s[j] == ' ' || s[j] == '-') && j + 1 < n && is_digit((unsigned char)s[j + 1]) && d > 0) {
			j++;
		} else {
			break;
		}
	}
	*end = j;
	return d;
}

static int luhn(const char *s, size_t start, size_t end)
{
	int sum = 0, dbl = 0;

	for (size_t j = end; j-- > start;) {
		int v;
		if (!is_digit((unsigned char)s[j]))
			continue;
		v = s[j] - '0';
		if (dbl && (v *= 2) > 9)
			v -= 9;
		sum += v;
		dbl = !dbl;
	}
	return sum % 10 == 0;
}

static size_t m_card(const char *s, size_t n, size_t i)
{
	size_t end;
	int d;

	if ((i > 0 && is_word((unsigned char)s[i - 1])) || s[i] < '2' || s[i] > '6')
		return 0;
	d = digit_run(s, n, i, &end, 19);
	if (d < 13 || d > 19 || (end < n && is_digit((unsigned char)s[end])))
		return 0;
	return luhn(s, i, end) ? end - i : 0;
}

static size_t m_cn_id(const char *s, size_t n, size_t i)
{
	static const int w[17] = { 7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2 };
	static const char check[] = "10X98765432";
	int sum = 0, year, month, day;

	if (n - i < 18 || (i > 0 && is_word((unsigned char)s[i - 1])))
		return 0;
	for (int k = 0; k < 17; k++) {
		if (!is_digit((unsigned char)s[i + k]))
			return 0;
		sum += (s[i + k] - '0') * w[k];
	}
	if (toupper((unsigned char)s[i + 17]) != check[sum % 11] ||
	    (n - i > 18 && is_word((unsigned char)s[i + 18])))
		return 0;
	year = (s[i + 6] - '0') * 1000 + (s[i + 7] - '0') * 100 + (s[i + 8] - '0') * 10 + (s[i + 9] - '0');
	month = (s[i + 10] - '0') * 10 + (s[i + 11] - '0');
	day = (s[i + 12] - '0') * 10 + (s[i + 13] - '0');
	if (year < 1900 || year > 2100 || month < 1 || month > 12 || day < 1 || day > 31)
		return 0;
	return 18;
}

/* 1[3-9]xxxxxxxxx, optionally "+86" / "86" before, and "138 0013 8000" / "138-0013-8000". */
static size_t m_cn_mobile(const char *s, size_t n, size_t i)
{
	size_t j = i, end;
	int d;

	if (i > 0 && (is_word((unsigned char)s[i - 1]) || s[i - 1] == '+'))
		return 0;
	if (s[j] == '+')
		j++;
	if (n - j > 2 && s[j] == '8' && s[j + 1] == '6') {
		size_t k = j + 2;
		if (k < n && (s[k] == ' ' || s[k] == '-'))
			k++;
		if (k + 1 < n && s[k] == '1' && s[k + 1] >= '3' && s[k + 1] <= '9')
			j = k;
		else if (s[i] == '+')
			return 0;
	} else if (s[i] == '+') {
		return 0;
	}
	if (n - j < 11 || s[j] != '1' || s[j + 1] < '3' || s[j + 1] > '9')
		return 0;
	d = digit_run(s, n, j, &end, 11);
	if (d != 11 || (end < n && is_word((unsigned char)s[end])))
		return 0;
	return end - i;
}

/* "+<country> ..." with 8 to 15 digits, or US style "(555) 123-4567" / "555-123-4567". */
/* "+" and 8 to 15 digits with single separators between them. */
static size_t m_phone_intl(const char *s, size_t n, size_t i)
{
	size_t j = i + 1;
	int d = 0;

	while (j < n && d < 15) {
		if (is_digit((unsigned char)s[j]))
			d++, j++;
		else if ((s[j] == ' ' || s[j] == '-' || s[j] == '.' || s[j] == '(' || s[j] == ')') && j + 1 < n &&
			 (is_digit((unsigned char)s[j + 1]) || s[j + 1] == '('))
			j++;
		else
			break;
	}
	while (j > i && !is_digit((unsigned char)s[j - 1]))
		j--;
	if (d < 8 || (j < n && is_digit((unsigned char)s[j])))
		return 0;
	return j - i;
}

static int digits_at(const char *s, size_t j, int count)
{
	for (int k = 0; k < count; k++)
		if (!is_digit((unsigned char)s[j + k]))
			return 0;
	return 1;
}

/* US style: "(415) 555-0100", "415-555-0100", "415.555.0100". */
static size_t m_phone_us(const char *s, size_t n, size_t i)
{
	size_t j = i, end;

	if (s[j] == '(') {
		if (n - j < 14 || !digits_at(s, j + 1, 3) || s[j + 4] != ')')
			return 0;
		j += 5;
		if (j < n && s[j] == ' ')
			j++;
	} else {
		if (n - j < 12 || !digits_at(s, j, 3) || (s[j + 3] != '-' && s[j + 3] != '.'))
			return 0;
		j += 4;
	}
	if (n - j < 8 || !digits_at(s, j, 3) || (s[j + 3] != '-' && s[j + 3] != '.') || !digits_at(s, j + 4, 4))
		return 0;
	end = j + 8;
	return end < n && is_word((unsigned char)s[end]) ? 0 : end - i;
}

static size_t m_phone(const char *s, size_t n, size_t i)
{
	if (i > 0 && (is_word((unsigned char)s[i - 1]) || s[i - 1] == '+'))
		return 0;
	return s[i] == '+' ? m_phone_intl(s, n, i) : m_phone_us(s, n, i);
}

static size_t m_ipv4(const char *s, size_t n, size_t i)
{
	size_t j = i;

	if (i > 0 && (is_word((unsigned char)s[i - 1]) || s[i - 1] == '.'))
		return 0;
	for (int part = 0; part < 4; part++) {
		int v = 0, d = 0;
		while (j < n && is_digit((unsigned char)s[j]) && d < 3)
			v = v * 10 + (s[j++] - '0'), d++;
		if (d == 0 || v > 255 || (j < n && is_digit((unsigned char)s[j])))
			return 0;
		if (part < 3) {
			if (j >= n || s[j] != '.')
				return 0;
			j++;
		}
	}
	if (j < n && (is_word((unsigned char)s[j]) || (s[j] == '.' && j + 1 < n && is_digit((unsigned char)s[j + 1]))))
		return 0;
	return j - i;
}

static int hexch(int c) { return isxdigit(c) || c == ':' || c == '.'; }

static size_t m_ipv6(const char *s, size_t n, size_t i)
{
	char buf[64];
	unsigned char addr[16];
	size_t j = i, colons = 0;

	if (i > 0 && (hexch((unsigned char)s[i - 1]) || isalnum((unsigned char)s[i - 1])))
		return 0;
	while (j < n && hexch((unsigned char)s[j]) && j - i < 45)
		colons += s[j++] == ':';
	if (colons < 2)
		return 0;
	/* The longest prefix that parses (a trailing ':' or '.' belongs to the sentence). */
	for (; j > i + 1; j--) {
		if (j < n && isalnum((unsigned char)s[j]))
			continue;
		memcpy(buf, s + i, j - i);
		buf[j - i] = '\0';
		if (inet_pton(AF_INET6, buf, addr) == 1)
			return j - i;
	}
	return 0;
}

/* Known secret prefixes and the least number of token characters after them. */
static const struct {
	const char *prefix;
	size_t min;
} secret_prefixes[] = {
	{ "sk-", 20 },  { "sk_live_", 16 }, { "sk_test_", 16 }, { "rk_live_", 16 }, { "AKIA", 16 },
	{ "ASIA", 16 }, { "ghp_", 30 },     { "gho_", 30 },     { "ghu_", 30 },     { "ghs_", 30 },
	{ "github_pat_", 30 }, { "glpat-", 20 }, { "xoxb-", 20 }, { "xoxp-", 20 }, { "AIza", 30 },
	{ "hf_", 30 },  { "jr-", 64 },
};

static int is_tok(int c) { return isalnum(c) || c == '_' || c == '-'; }

static size_t m_secret(const char *s, size_t n, size_t i)
{
	if (i > 0 && is_tok((unsigned char)s[i - 1]))
		return 0;
	for (size_t k = 0; k < sizeof(secret_prefixes) / sizeof(secret_prefixes[0]); k++) {
		size_t pl = strlen(secret_prefixes[k].prefix), j;
		if (n - i < pl || memcmp(s + i, secret_prefixes[k].prefix, pl) != 0)
			continue;
		j = i + pl;
		while (j < n && is_tok((unsigned char)s[j]))
			j++;
		if (j - i - pl >= secret_prefixes[k].min)
			return j - i;
	}
	return 0;
}

typedef size_t (*matcher)(const char *, size_t, size_t);
static const matcher matchers[MD_REGEX] = { m_email, m_phone, m_cn_mobile, m_cn_id, m_card,
					    m_ipv4, m_ipv6, m_secret };
/* When two detectors match at one place, the more specific one wins. */
static const enum mask_detector priority[MD_REGEX] = { MD_SECRET, MD_EMAIL, MD_CN_ID, MD_CARD,
						       MD_CN_MOBILE, MD_IPV6, MD_IPV4, MD_PHONE };

static int add_span(struct mask_span *sp, size_t *k, size_t cap, size_t a, size_t b, int rule)
{
	if (*k >= cap)
		return -1;
	sp[*k].start = a;
	sp[*k].end = b;
	sp[*k].rule = rule;
	(*k)++;
	return 0;
}

static int cmp_span(const void *a, const void *b)
{
	const struct mask_span *x = a, *y = b;

	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	return x->end > y->end ? -1 : x->end < y->end;
}

/* The built-in detectors, left to right, the first by priority at each position. */
static int find_builtin(const struct mask_policy *p, const char *s, size_t n, struct mask_span *sp, size_t *k,
			size_t cap)
{
	int rule_of[MD_REGEX], any = 0;
	size_t i, len;

	for (int d = 0; d < MD_REGEX; d++)
		rule_of[d] = -1;
	for (i = p->n; i-- > 0;)
		if (p->rules[i].det != MD_REGEX)
			rule_of[p->rules[i].det] = (int)i, any = 1;
	for (i = 0; any && i < n; i += len ? len : 1) {
		int r = -1;
		len = 0;
		for (int q = 0; q < MD_REGEX && !len; q++)
			if (rule_of[priority[q]] >= 0 && (len = matchers[priority[q]](s, n, i)))
				r = rule_of[priority[q]];
		if (len && add_span(sp, k, cap, i, i + len, r) < 0)
			return -1;
	}
	return 0;
}

/* Every match of regex rule i. */
static int find_regex(const struct mask_policy *p, size_t i, const char *s, size_t n, struct mask_span *sp,
		      size_t *k, size_t cap)
{
	char *z = strndup(s, n);
	size_t off = 0;
	regmatch_t m;
	int rc = 0;

	if (!z)
		return -1;
	while (rc == 0 && off < n && regexec(&p->rules[i].re, z + off, 1, &m, off ? REG_NOTBOL : 0) == 0) {
		if (m.rm_eo <= m.rm_so) { /* an empty match: step on */
			off += (size_t)m.rm_so + 1;
			continue;
		}
		rc = add_span(sp, k, cap, off + (size_t)m.rm_so, off + (size_t)m.rm_eo, (int)i);
		off += (size_t)m.rm_eo;
	}
	free(z);
	return rc;
}

long mask_find(const struct mask_policy *p, const char *s, size_t n, struct mask_span *sp, size_t cap)
{
	size_t k = 0, i, out;

	if (find_builtin(p, s, n, sp, &k, cap) < 0)
		return -1;
	for (i = 0; i < p->n; i++)
		if (p->rules[i].has_re && find_regex(p, i, s, n, sp, &k, cap) < 0)
			return -1;
	qsort(sp, k, sizeof(sp[0]), cmp_span);
	for (i = 0, out = 0; i < k; i++) /* drop what overlaps an earlier item */
		if (!out || sp[i].start >= sp[out - 1].end)
			sp[out++] = sp[i];
	return (long)out;
}

/* ---- replacing ---------------------------------------------------------------------- */

struct sbuf {
	char *p;
	size_t len, cap;
	int bad;
};

static void sb_put(struct sbuf *b, const char *s, size_t n)
{
	if (b->bad)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t c = b->cap ? b->cap : 64;
		char *q;
		while (c < b->len + n + 1)
			c *= 2;
		if (!(q = realloc(b->p, c))) {
			b->bad = 1;
			return;
		}
		b->p = q;
		b->cap = c;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void replace(struct sbuf *b, const struct mask_rule *r, const char *v, size_t n, int in_response)
{
	char tmp[MASK_LABEL_MAX + 32];
	enum mask_action act = r->act == MA_REJECT && in_response ? MA_LABEL : r->act;

	if (act == MA_MASK) {
		for (size_t i = 0; i < n; i++) {
			unsigned char c = (unsigned char)v[i];
			if ((c & 0xC0) == 0x80)
				continue; /* one '*' per character, not per byte */
			sb_put(b, isalnum(c) || c >= 0x80 ? "*" : (const char *)&v[i], 1);
		}
	} else if (act == MA_LABEL) {
		int k = snprintf(tmp, sizeof(tmp), "[%s]", r->label);
		sb_put(b, tmp, (size_t)k);
	} else {
		unsigned char md[32];
		unsigned int ml = 0;
		int k;
		EVP_Digest(v, n, md, &ml, EVP_sha256(), NULL);
		k = snprintf(tmp, sizeof(tmp), "[%s:%02x%02x%02x%02x%02x%02x]", r->label, md[0], md[1],
			     md[2], md[3], md[4], md[5]);
		sb_put(b, tmp, (size_t)k);
	}
}

static int apply(const struct mask_policy *p, const char *s, size_t n, const struct mask_span *sp,
		 size_t k, int in_response, struct sbuf *b, struct mask_counts *c)
{
	size_t at = 0;

	for (size_t i = 0; i < k; i++) {
		const struct mask_rule *r = &p->rules[sp[i].rule];
		c->found[r->det]++;
		if (r->act == MA_REJECT && !in_response) {
			c->rejected = 1;
			c->rejected_by = r->det;
			return 1;
		}
		sb_put(b, s + at, sp[i].start - at);
		replace(b, r, s + sp[i].start, sp[i].end - sp[i].start, in_response);
		at = sp[i].end;
	}
	sb_put(b, s + at, n - at);
	return b->bad ? -1 : 0;
}

static int mask_text_mode(const struct mask_policy *p, const char *s, size_t n, char **out,
			  size_t *outlen, struct mask_counts *c, int in_response)
{
	struct mask_span *sp = malloc(MASK_SPANS_MAX * sizeof(*sp));
	struct sbuf b = { NULL, 0, 0, 0 };
	long k;
	int rc;

	if (!sp)
		return -1;
	k = mask_find(p, s, n, sp, MASK_SPANS_MAX);
	if (k < 0) {
		free(sp);
		return -1;
	}
	sb_put(&b, "", 0);
	rc = apply(p, s, n, sp, (size_t)k, in_response, &b, c);
	free(sp);
	if (rc) {
		free(b.p);
		return rc;
	}
	*out = b.p;
	*outlen = b.len;
	return 0;
}

int mask_text(const struct mask_policy *p, const char *s, size_t n, char **out, size_t *outlen,
	      struct mask_counts *c)
{
	return mask_text_mode(p, s, n, out, outlen, c, 0);
}

/* Masks the string value v in place (json_string_setn). */
static int mask_value(const struct mask_policy *p, json_t *v, struct mask_counts *c, int in_response)
{
	char *out;
	size_t len;
	int rc;

	if (!json_is_string(v))
		return 0;
	rc = mask_text_mode(p, json_string_value(v), json_string_length(v), &out, &len, c, in_response);
	if (rc)
		return rc;
	json_string_setn(v, out, len);
	free(out);
	return 0;
}

static int mask_content(const struct mask_policy *p, json_t *content, struct mask_counts *c, int resp)
{
	size_t i;
	json_t *part;
	int rc;

	if (json_is_string(content))
		return mask_value(p, content, c, resp);
	json_array_foreach(content, i, part) {
		if (json_is_string(part))
			rc = mask_value(p, part, c, resp);
		else
			rc = mask_value(p, json_object_get(part, "text"), c, resp);
		if (rc)
			return rc;
	}
	return 0;
}

int mask_request(const struct mask_policy *p, json_t *req, struct mask_counts *c)
{
	size_t i;
	json_t *m;
	int rc;

	json_array_foreach(json_object_get(req, "messages"), i, m)
		if ((rc = mask_content(p, json_object_get(m, "content"), c, 0)))
			return rc;
	if ((rc = mask_content(p, json_object_get(req, "prompt"), c, 0)))
		return rc;
	return mask_content(p, json_object_get(req, "input"), c, 0);
}

int mask_response(const struct mask_policy *p, json_t *resp, struct mask_counts *c)
{
	size_t i;
	json_t *ch;
	int rc;

	json_array_foreach(json_object_get(resp, "choices"), i, ch)
		if ((rc = mask_value(p, json_object_get(json_object_get(ch, "message"), "content"), c, 1)))
			return rc;
	return 0;
}

/* ---- streams ------------------------------------------------------------------------ */

static int grouping(int c)
{
	return is_digit(c) || c == '(' || c == ')' || c == '+' || c == '-' || c == '.';
}

/* Where the text that may still be part of an item starts: the last word (emails,
 * secrets, addresses have no spaces), and before it the digit groups a phone or card
 * number may be split into ("4111 1111 ..."). With a custom regex (which may match
 * spaces anywhere) at least the last MASK_HOLD bytes are held too. Never more than
 * MASK_PENDING_MAX bytes are held. */
static size_t hold_from(const struct mask_policy *p, const char *s, size_t n)
{
	size_t i = n;
	int regex = 0;

	while (i > 0 && !isspace((unsigned char)s[i - 1]))
		i--;
	while (i > 1 && s[i - 1] == ' ' && grouping((unsigned char)s[i - 2])) {
		size_t j = i - 1;
		while (j > 0 && grouping((unsigned char)s[j - 1]))
			j--;
		i = j;
	}
	for (size_t k = 0; k < p->n; k++)
		regex |= p->rules[k].has_re;
	if (regex && n > MASK_HOLD && i > n - MASK_HOLD)
		i = n - MASK_HOLD;
	else if (regex && n <= MASK_HOLD)
		i = 0;
	if (n - i > MASK_PENDING_MAX)
		i = n - MASK_PENDING_MAX;
	return i;
}

void mask_stream_init(struct mask_stream *m, const struct mask_policy *p)
{
	memset(m, 0, sizeof(*m));
	m->p = p;
}

void mask_stream_free(struct mask_stream *m)
{
	free(m->pending);
	m->pending = NULL;
	m->len = m->cap = 0;
}

static void stream_append(struct mask_stream *m, const char *text, size_t n)
{
	size_t cap = m->cap ? m->cap : 256;

	if (m->len + n + 1 > m->cap) {
		while (cap < m->len + n + 1)
			cap *= 2;
		m->pending = xrealloc(m->pending, cap);
		m->cap = cap;
	}
	memcpy(m->pending + m->len, text, n);
	m->len += n;
}

/* Where the text that may go out now ends. */
static size_t stream_cut(const struct mask_stream *m, const struct mask_span *sp, long found, int final)
{
	size_t cut = final ? m->len : hold_from(m->p, m->pending, m->len);

	/* An item that reaches into the held-back part may still grow: hold it whole
	 * (unless too much is pending already). */
	for (long i = 0; i < found; i++)
		if (!final && sp[i].start < cut && sp[i].end > cut && m->len < MASK_PENDING_MAX) {
			cut = sp[i].start;
			break;
		}
	while (cut > 0 && cut < m->len && ((unsigned char)m->pending[cut] & 0xC0) == 0x80)
		cut--; /* never split a UTF-8 character */
	return cut;
}

int mask_stream_feed(struct mask_stream *m, const char *text, size_t n, int final, char **out,
		     size_t *outlen, struct mask_counts *c)
{
	struct mask_span *sp = xmalloc(MASK_SPANS_MAX * sizeof(*sp));
	struct sbuf b = { NULL, 0, 0, 0 };
	size_t cut, k = 0;
	long found;
	int rc = -1;

	stream_append(m, text, n);
	found = mask_find(m->p, m->pending, m->len, sp, MASK_SPANS_MAX);
	if (found >= 0) {
		cut = stream_cut(m, sp, found, final);
		while (k < (size_t)found && sp[k].end <= cut)
			k++;
		sb_put(&b, "", 0);
		rc = apply(m->p, m->pending, cut, sp, k, 1, &b, c);
	}
	free(sp);
	if (rc < 0) {
		free(b.p);
		return -1;
	}
	memmove(m->pending, m->pending + cut, m->len - cut);
	m->len -= cut;
	*out = b.p;
	*outlen = b.len;
	return 0;
}
