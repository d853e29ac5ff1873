/*
 * Fuzz target: the masking engine. Byte 0 is the length of a policy (JSON) that
 * follows; the rest is text. An invalid policy falls back to the built-in one (every
 * detector, action "mask"). Properties besides memory safety: mask_text answers 0, 1
 * (reject) or -1 and its output is as long as it says; a masked stream fed in two
 * pieces (cut where the byte after the policy says) fails only when the stream fed
 * whole fails; with a policy whose actions are all "mask" (built-in detectors), both
 * streams give out exactly as many bytes as came in. The two outputs are not compared
 * byte for byte: a cut inside a run of digit groups, or right after a word, may make
 * the pieces read as other items than the whole text does.
 */
#include "mask.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The stream's output for text fed in two pieces (cut) and flushed; NULL on failure. */
static char *stream(const struct mask_policy *p, const char *text, size_t n, size_t cut, size_t *len)
{
	struct mask_stream m;
	struct mask_counts c = { 0 };
	char *parts[3] = { 0 }, *all;
	size_t lens[3] = { 0 };
	int rc;

	mask_stream_init(&m, p);
	rc = mask_stream_feed(&m, text, cut, 0, &parts[0], &lens[0], &c) |
	     mask_stream_feed(&m, text + cut, n - cut, 0, &parts[1], &lens[1], &c) |
	     mask_stream_feed(&m, "", 0, 1, &parts[2], &lens[2], &c);
	mask_stream_free(&m);
	*len = lens[0] + lens[1] + lens[2];
	all = rc ? NULL : malloc(*len + 1);
	for (size_t i = 0, o = 0; i < 3; i++) {
		if (all && lens[i])
			memcpy(all + o, parts[i], lens[i]), o += lens[i];
		free(parts[i]);
	}
	return all;
}

static void check_text(const struct mask_policy *p, const char *text, size_t n)
{
	struct mask_counts c = { 0 };
	char *out = NULL;
	size_t len = 0;
	int rc = mask_text(p, text, n, &out, &len, &c);

	if (rc < -1 || rc > 1 || (rc == 0 && (!out || strlen(out) > len)))
		__builtin_trap();
	free(out);
}

static int mask_only(const struct mask_policy *p)
{
	for (size_t i = 0; i < p->n; i++)
		if (p->rules[i].act != MA_MASK || p->rules[i].det == MD_REGEX)
			return 0;
	return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mask_policy p;
	char err[160], *text, *whole, *split;
	size_t plen, n, cut, wl = 0, sl = 0;

	if (size < 2)
		return 0;
	plen = data[0] < size - 2 ? data[0] : size - 2;
	if (mask_policy_parse(&p, (const char *)data + 2, plen, err, sizeof(err)) < 0 &&
	    mask_policy_parse(&p, "{}", 2, err, sizeof(err)) < 0)
		__builtin_trap();
	n = size - 2 - plen;
	if (!(text = malloc(n + 1)))
		abort();
	memcpy(text, data + 2 + plen, n);
	text[n] = '\0';
	check_text(&p, text, n);
	cut = n ? data[1] % (n + 1) : 0;
	whole = stream(&p, text, n, n, &wl);
	split = stream(&p, text, n, cut, &sl);
	if ((whole == NULL) != (split == NULL))
		__builtin_trap();
	if (whole && mask_only(&p) && (wl != n || sl != n))
		__builtin_trap();
	free(whole);
	free(split);
	free(text);
	mask_policy_free(&p);
	return 0;
}
