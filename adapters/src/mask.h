/*
 * mask: a tenant's data-masking policy applied to text before it leaves the gateway
 * (request messages) and, when the policy says so, to the model's answers (streamed
 * ones across chunk boundaries, see struct mask_stream).
 *
 * Policy JSON (the tenant's masking_policy, sql/008_adapter.sql):
 *   {"responses": false,
 *    "rules": [{"detector": "email", "action": "mask"},
 *              {"detector": "regex", "pattern": "ACME-[0-9]{4}", "action": "label",
 *               "label": "PROJECT"}]}
 * Detectors: email, phone (international "+..." numbers and US-style numbers),
 * cn_mobile (Chinese mobile numbers, optional +86), cn_id (Chinese resident ID numbers
 * with a valid checksum and birth date), card (13-19 digit payment card numbers that
 * pass Luhn), ipv4, ipv6, secret (API keys and secrets by known prefixes), regex (POSIX
 * extended regular expression). Actions: mask (letters and digits become '*'), label
 * ("[EMAIL]" or "[<label>]"), hash ("[EMAIL:<12 hex of SHA-256>]"), reject (the request
 * is refused with 400). No "rules": every built-in detector with "mask".
 */
#ifndef JR_AD_MASK_H
#define JR_AD_MASK_H

#include <jansson.h>
#include <regex.h>
#include <stddef.h>
#include <stdint.h>

#define MASK_RULES_MAX 32
#define MASK_LABEL_MAX 32
#define MASK_PATTERN_MAX 512
#define MASK_SPANS_MAX 4096   /* matches handled per text; beyond, the text is refused */
#define MASK_HOLD 96          /* bytes a masked stream holds back with a custom regex */
#define MASK_PENDING_MAX 4096 /* held back at most; beyond, text goes out as it is masked */

enum mask_detector {
	MD_EMAIL, MD_PHONE, MD_CN_MOBILE, MD_CN_ID, MD_CARD, MD_IPV4, MD_IPV6, MD_SECRET,
	MD_REGEX, MD__COUNT
};
enum mask_action { MA_MASK, MA_LABEL, MA_HASH, MA_REJECT };

const char *mask_detector_name(enum mask_detector d);

struct mask_rule {
	enum mask_detector det;
	enum mask_action act;
	char label[MASK_LABEL_MAX];
	int has_re;
	regex_t re;
};

struct mask_policy {
	struct mask_rule rules[MASK_RULES_MAX];
	size_t n;
	int responses;
};

/* Counts of what was found, by detector (metrics; never the values). */
struct mask_counts {
	uint64_t found[MD__COUNT];
	int rejected;                     /* a reject rule matched */
	enum mask_detector rejected_by;
};

/* Parses a policy; 0, or -1 with err set (the policy is then empty and freed). */
int mask_policy_parse(struct mask_policy *p, const char *json, size_t len, char *err, size_t cap);
void mask_policy_free(struct mask_policy *p);

struct mask_span {
	size_t start, end;
	int rule;
};

/* Finds the items in s, sorted and non-overlapping. Returns the count, or -1 when more
 * than cap were found. */
long mask_find(const struct mask_policy *p, const char *s, size_t n, struct mask_span *spans,
	       size_t cap);

/* Masks s: a new string in *out (NUL-terminated, *outlen). Returns 0, 1 when a reject
 * rule matched (nothing is written), -1 on failure. */
int mask_text(const struct mask_policy *p, const char *s, size_t n, char **out, size_t *outlen,
	      struct mask_counts *c);

/* Masks every text of an OpenAI request in place: messages[].content (strings and text
 * parts), prompt, input. Returns 0, 1 for a reject, -1 on failure. */
int mask_request(const struct mask_policy *p, json_t *req, struct mask_counts *c);
/* Masks choices[].message.content of a chat completion in place. */
int mask_response(const struct mask_policy *p, json_t *resp, struct mask_counts *c);

/* A stream of text pieces: each call returns what may go out now (masked), holding
 * back what may still be part of an item (the last word, digit groups before it, a match
 * that reaches the end; with a custom regex at least MASK_HOLD bytes) until more text
 * or the end shows where it stops. */
struct mask_stream {
	const struct mask_policy *p;
	char *pending;
	size_t len, cap;
};

void mask_stream_init(struct mask_stream *m, const struct mask_policy *p);
void mask_stream_free(struct mask_stream *m);
/* Appends text; *out (new string, maybe empty) is what goes out now. final flushes.
 * Returns 0 or -1. A reject rule in a response masks like "label" (the answer cannot
 * be refused any more). */
int mask_stream_feed(struct mask_stream *m, const char *text, size_t n, int final, char **out,
		     size_t *outlen, struct mask_counts *c);

#endif
