/* Data masking: each built-in detector (with its checksums), custom regexes, the four
 * actions, requests and answers, and streams cut anywhere. */
#include "testlib.h"

#include "mask.h"
#include "test_adapter_helpers.h"

static char got[1024];

/* Masks with a policy given as JSON; returns the masked text (or "REJECT"). */
static const char *run(const char *policy, const char *text, struct mask_counts *c)
{
	struct mask_policy p;
	char err[128];
	char *out;
	size_t n;
	int rc;

	if (mask_policy_parse(&p, policy, strlen(policy), err, sizeof(err)) < 0) {
		snprintf(got, sizeof(got), "POLICY: %s", err);
		return got;
	}
	rc = mask_text(&p, text, strlen(text), &out, &n, c);
	if (rc == 1)
		snprintf(got, sizeof(got), "REJECT");
	else if (rc < 0)
		snprintf(got, sizeof(got), "FAIL");
	else {
		snprintf(got, sizeof(got), "%s", out);
		free(out);
	}
	mask_policy_free(&p);
	return got;
}

#define LABEL_ALL "{\"rules\":[{\"detector\":\"email\",\"action\":\"label\"},{\"detector\":\"phone\",\"action\":\"label\"}," \
	"{\"detector\":\"cn_mobile\",\"action\":\"label\"},{\"detector\":\"cn_id\",\"action\":\"label\"}," \
	"{\"detector\":\"card\",\"action\":\"label\"},{\"detector\":\"ipv4\",\"action\":\"label\"}," \
	"{\"detector\":\"ipv6\",\"action\":\"label\"},{\"detector\":\"secret\",\"action\":\"label\"}]}"

static void detectors(void)
{
	struct mask_counts c;

	memset(&c, 0, sizeof(c));
	CHECK_EQ_STR(run(LABEL_ALL, "Mail john.doe+x@example.co.uk, then.", &c), "Mail [EMAIL], then.");
	CHECK_EQ_STR(run(LABEL_ALL, "not@mail and a@b.c stay", &c), "not@mail and a@b.c stay");
	/* Chinese mobile numbers, with and without +86 and separators */
	CHECK_EQ_STR(run(LABEL_ALL, "call 13800138000 or +86 139-1234-5678.", &c), "call [PHONE] or [PHONE].");
	CHECK_EQ_STR(run(LABEL_ALL, "order 12800138000 x", &c), "order 12800138000 x"); /* 12x is no mobile */
	/* international and US style */
	CHECK_EQ_STR(run(LABEL_ALL, "+44 20 7946 0958 / (555) 123-4567 / 555-123-4567", &c),
		     "[PHONE] / [PHONE] / [PHONE]");
	/* resident ID: the published sample 11010519491231002X has a valid checksum */
	CHECK_EQ_STR(run(LABEL_ALL, "ID 11010519491231002X ok", &c), "ID [ID_NUMBER] ok");
	CHECK_EQ_STR(run(LABEL_ALL, "ID 110105194912310021 bad checksum", &c), "ID 110105194912310021 bad checksum");
	/* cards: Luhn-valid test numbers with separators; a Luhn failure stays */
	CHECK_EQ_STR(run(LABEL_ALL, "card 4111 1111 1111 1111 and 5500-0000-0000-0004", &c), "card [CARD] and [CARD]");
	CHECK_EQ_STR(run(LABEL_ALL, "card 4111 1111 1111 1112", &c), "card 4111 1111 1111 1112");
	CHECK_EQ_STR(run(LABEL_ALL, "from 192.168.1.20, not 999.1.1.1 or 1.2.3", &c), "from [IP], not 999.1.1.1 or 1.2.3");
	CHECK_EQ_STR(run(LABEL_ALL, "v6 2001:db8::8a2e:370:7334 and ::1.", &c), "v6 [IP] and [IP].");
	CHECK_EQ_STR(run(LABEL_ALL, "time 12:30:45 is not an address", &c), "time 12:30:45 is not an address");
	CHECK_EQ_STR(run(LABEL_ALL, "key sk-proj-abcdefghijklmnopqrstuvwx and AKIAIOSFODNN7EXAMPLE", &c),
		     "key [SECRET] and [SECRET]");
	CHECK_EQ_STR(run(LABEL_ALL, "sk-short ghp_ tokens", &c), "sk-short ghp_ tokens");
	CHECK(c.found[MD_EMAIL] == 1 && c.found[MD_CN_MOBILE] == 2 && c.found[MD_CARD] == 2 && c.found[MD_SECRET] == 2);
}

static void actions_and_regex(void)
{
	struct mask_counts c;
	const char *hashed;

	memset(&c, 0, sizeof(c));
	/* the default policy: every built-in detector, "mask" */
	CHECK_EQ_STR(run("{}", "me: a.b@ex.com", &c), "me: *.*@**.***");
	CHECK_EQ_STR(run("{\"rules\":[{\"detector\":\"card\",\"action\":\"reject\"}]}", "pay 4111111111111111", &c), "REJECT");
	CHECK(c.rejected && c.rejected_by == MD_CARD);
	hashed = run("{\"rules\":[{\"detector\":\"email\",\"action\":\"hash\"}]}", "x a@ex.com y", &c);
	CHECK(strncmp(hashed, "x [EMAIL:", 9) == 0 && strlen(hashed) == strlen("x [EMAIL:0123456789ab] y"));
	{
		char first[64];
		snprintf(first, sizeof(first), "%s", hashed);
		/* the same value hashes the same (correlation without the value) */
		CHECK_EQ_STR(run("{\"rules\":[{\"detector\":\"email\",\"action\":\"hash\"}]}", "x a@ex.com y", &c), first);
	}
	CHECK_EQ_STR(run("{\"rules\":[{\"detector\":\"regex\",\"pattern\":\"ACME-[0-9]{4}\",\"action\":\"label\",\"label\":\"PROJECT\"}]}",
			 "ACME-1234 and ACME-99 and ACME-5678", &c), "[PROJECT] and ACME-99 and [PROJECT]");
	CHECK_EQ_STR(run("{\"rules\":[{\"detector\":\"regex\",\"pattern\":\"x*\"}]}", "abc", &c), "abc"); /* empty matches */
	/* mask keeps punctuation and masks each UTF-8 character once */
	CHECK_EQ_STR(run("{\"rules\":[{\"detector\":\"regex\",\"pattern\":\"名字:[^ ]+\"}]}", "名字:张三 ok", &c), "**:** ok");
	CHECK(strncmp(run("{\"rules\":[{\"detector\":\"nope\"}]}", "", &c), "POLICY:", 7) == 0);
	CHECK(strncmp(run("{\"rules\":[{\"detector\":\"regex\",\"pattern\":\"(\"}]}", "", &c), "POLICY:", 7) == 0);
	CHECK(strncmp(run("{\"rules\":[{\"detector\":\"email\",\"action\":\"burn\"}]}", "", &c), "POLICY:", 7) == 0);
	CHECK(strncmp(run("{\"rules\":[{\"detector\":\"email\",\"label\":\"a b\"}]}", "", &c), "POLICY:", 7) == 0);
	CHECK(strncmp(run("[]", "", &c), "POLICY:", 7) == 0);
}

static void requests_and_answers(void)
{
	struct mask_policy p;
	struct mask_counts c;
	char err[64];
	const char *pol = "{\"responses\":true,\"rules\":[{\"detector\":\"email\",\"action\":\"label\"}]}";
	json_t *req = J("{\"messages\":[{\"role\":\"system\",\"content\":\"x@y.org\"},{\"role\":\"user\",\"content\":"
			"[{\"type\":\"text\",\"text\":\"mail a@b.com\"},{\"type\":\"image_url\",\"image_url\":{\"url\":\"u@v.com\"}}]}]}");
	json_t *resp = J("{\"choices\":[{\"message\":{\"content\":\"write to z@q.net\"}}]}");

	memset(&c, 0, sizeof(c));
	CHECK_EQ_INT(mask_policy_parse(&p, pol, strlen(pol), err, sizeof(err)), 0);
	CHECK_EQ_INT(p.responses, 1);
	CHECK_EQ_INT(mask_request(&p, req, &c), 0);
	CHECK_EQ_STR(PS(req, "messages.0.content"), "[EMAIL]");
	CHECK_EQ_STR(PS(req, "messages.1.content.0.text"), "mail [EMAIL]");
	CHECK_EQ_STR(PS(req, "messages.1.content.1.image_url.url"), "u@v.com"); /* not text */
	CHECK_EQ_INT(mask_response(&p, resp, &c), 0);
	CHECK_EQ_STR(PS(resp, "choices.0.message.content"), "write to [EMAIL]");
	CHECK_EQ_INT(c.found[MD_EMAIL], 3);
	mask_policy_free(&p);
	json_decref(req);
	json_decref(resp);
}

/* A masked stream gives the same text, whatever the chunk boundaries. */
static void stream_across_chunks(void)
{
	const char *pol = "{\"responses\":true,\"rules\":[{\"detector\":\"email\",\"action\":\"label\"},"
			  "{\"detector\":\"card\",\"action\":\"label\"}]}";
	const char *text = "Contact jane.smith@corp.example.com today; the card 4111 1111 1111 1111 was used. "
			   "An unrelated long sentence follows so that the hold-back window moves on a few times.";
	const char *want = "Contact [EMAIL] today; the card [CARD] was used. "
			   "An unrelated long sentence follows so that the hold-back window moves on a few times.";
	struct mask_policy p;
	char err[64];
	size_t n = strlen(text);

	CHECK_EQ_INT(mask_policy_parse(&p, pol, strlen(pol), err, sizeof(err)), 0);
	for (size_t step = 1; step <= 13; step += 3) {
		struct mask_stream m;
		struct mask_counts c;
		char all[512] = "";
		memset(&c, 0, sizeof(c));
		mask_stream_init(&m, &p);
		for (size_t off = 0; off < n; off += step) {
			char *out;
			size_t ol;
			size_t k = n - off < step ? n - off : step;
			CHECK_EQ_INT(mask_stream_feed(&m, text + off, k, 0, &out, &ol, &c), 0);
			strncat(all, out, sizeof(all) - strlen(all) - 1);
			free(out);
		}
		{
			char *out;
			size_t ol;
			CHECK_EQ_INT(mask_stream_feed(&m, "", 0, 1, &out, &ol, &c), 0);
			strncat(all, out, sizeof(all) - strlen(all) - 1);
			free(out);
		}
		CHECK_EQ_STR(all, want);
		CHECK_EQ_INT(c.found[MD_EMAIL], 1);
		CHECK_EQ_INT(c.found[MD_CARD], 1);
		mask_stream_free(&m);
	}
	mask_policy_free(&p);
}

/* A masked stream holds back only what may still be part of an item. */
static void stream_holds_little(void)
{
	const char *pol = "{\"rules\":[{\"detector\":\"email\",\"action\":\"label\"},{\"detector\":\"card\",\"action\":\"label\"}]}";
	struct mask_policy p;
	struct mask_stream m;
	struct mask_counts c;
	char err[64], *out;
	size_t n;

	memset(&c, 0, sizeof(c));
	CHECK_EQ_INT(mask_policy_parse(&p, pol, strlen(pol), err, sizeof(err)), 0);
	mask_stream_init(&m, &p);
	CHECK_EQ_INT(mask_stream_feed(&m, "Hello there, write to bo", 24, 0, &out, &n, &c), 0);
	CHECK_EQ_STR(out, "Hello there, write to "); /* only the last word waits */
	free(out);
	CHECK_EQ_INT(mask_stream_feed(&m, "b@example.com now. Pay 4111 1111", 32, 0, &out, &n, &c), 0);
	CHECK_EQ_STR(out, "[EMAIL] now. Pay "); /* digit groups wait together */
	free(out);
	CHECK_EQ_INT(mask_stream_feed(&m, " 1111 1111 ok", 13, 1, &out, &n, &c), 0);
	CHECK_EQ_STR(out, "[CARD] ok");
	free(out);
	mask_stream_free(&m);
	mask_policy_free(&p);
}

int main(void)
{
	RUN(stream_holds_little);
	RUN(detectors);
	RUN(actions_and_regex);
	RUN(requests_and_answers);
	RUN(stream_across_chunks);
	TEST_END();
}
