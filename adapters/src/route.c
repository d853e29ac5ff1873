/* route: see route.h. */
#include "route.h"

#include "family.h"
#include "util/pct.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

/* The header's text fields: key and where its decoded value goes. */
static const struct {
	const char *key;
	size_t off, cap;
} fields[] = {
#define F(k, m) { k, offsetof(struct ad_route, m), sizeof(((struct ad_route *)0)->m) }
	F("p", provider), F("u", base_url), F("m", model), F("pm", public_model),
	F("r", region), F("av", api_version), F("t", tenant), F("mask", mask), F("cs", cache_scope),
#undef F
};

/* A positive decimal number of at most 9 digits. */
static int parse_long(const char *p, const char *stop, long *out, char *err, size_t cap)
{
	long n = 0;

	if (p == stop || stop - p > 9) {
		snprintf(err, cap, "cache field is malformed");
		return -1;
	}
	for (; p < stop; p++) {
		if (*p < '0' || *p > '9') {
			snprintf(err, cap, "cache field is malformed");
			return -1;
		}
		n = n * 10 + (*p - '0');
	}
	*out = n;
	return 0;
}

/* One "k=v" field into r. 0, or -1 with err. */
static int parse_field(const char *p, const char *stop, struct ad_route *r, char *err, size_t cap)
{
	const char *eq = memchr(p, '=', (size_t)(stop - p));
	size_t kl;

	if (!eq) {
		snprintf(err, cap, "malformed field");
		return -1;
	}
	kl = (size_t)(eq - p);
	if (kl == 2 && memcmp(p, "mt", 2) == 0) {
		r->meter = stop - eq == 2 && eq[1] == '1';
		return 0;
	}
	if ((kl == 1 && p[0] == 'c') || (kl == 4 && memcmp(p, "cmax", 4) == 0))
		return parse_long(eq + 1, stop, kl == 1 ? &r->cache_ttl_s : &r->cache_max, err, cap);
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		if (strlen(fields[i].key) != kl || memcmp(p, fields[i].key, kl) != 0)
			continue;
		if (pct_decode(eq + 1, (size_t)(stop - eq - 1), (char *)r + fields[i].off, fields[i].cap) < 0) {
			snprintf(err, cap, "field '%.*s' is malformed or too long", (int)kl, p);
			return -1;
		}
		return 0;
	}
	return 0; /* unknown keys are skipped: a newer agent may send more */
}

int route_parse(const char *v, size_t n, struct ad_route *r, char *err, size_t cap)
{
	const char *p = v, *end = v + n;

	memset(r, 0, sizeof(*r));
	r->family = -1;
	while (p < end) {
		const char *amp = memchr(p, '&', (size_t)(end - p));
		if (parse_field(p, amp ? amp : end, r, err, cap) < 0)
			return -1;
		p = amp ? amp + 1 : end;
	}
	r->family = fam_of_kind(r->provider, r->api_version);
	if (r->family < 0) {
		snprintf(err, cap, "unknown provider kind");
		return -1;
	}
	if (!r->model[0]) {
		snprintf(err, cap, "no upstream model");
		return -1;
	}
	if (!r->public_model[0])
		snprintf(r->public_model, sizeof(r->public_model), "%s", r->model);
	return 0;
}
