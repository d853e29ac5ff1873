/* route: see route.h. */
#include "route.h"

#include "xlate.h"

#include <stdio.h>
#include <string.h>

static int hexv(int c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
	       : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Percent-decodes v[0..n) into out (cap with NUL). -1 when malformed or too long. */
static int decode(const char *v, size_t n, char *out, size_t cap)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		int c = (unsigned char)v[i];
		if (c == '%') {
			if (n - i < 3 || hexv(v[i + 1]) < 0 || hexv(v[i + 2]) < 0)
				return -1;
			c = hexv(v[i + 1]) << 4 | hexv(v[i + 2]);
			i += 2;
		}
		if (c == 0 || o + 1 >= cap)
			return -1;
		out[o++] = (char)c;
	}
	out[o] = '\0';
	return (int)o;
}

int route_parse(const char *v, size_t n, struct ad_route *r, char *err, size_t cap)
{
	const char *p = v, *end = v + n;

	memset(r, 0, sizeof(*r));
	r->family = -1;
	while (p < end) {
		const char *amp = memchr(p, '&', (size_t)(end - p)), *eq;
		const char *stop = amp ? amp : end;
		size_t kl;
		char *dst = NULL;
		size_t dcap = 0;
		eq = memchr(p, '=', (size_t)(stop - p));
		if (!eq) {
			snprintf(err, cap, "malformed field");
			return -1;
		}
		kl = (size_t)(eq - p);
#define KEY(s) (kl == sizeof(s) - 1 && memcmp(p, s, kl) == 0)
		if (KEY("p"))
			dst = r->provider, dcap = sizeof(r->provider);
		else if (KEY("u"))
			dst = r->base_url, dcap = sizeof(r->base_url);
		else if (KEY("m"))
			dst = r->model, dcap = sizeof(r->model);
		else if (KEY("pm"))
			dst = r->public_model, dcap = sizeof(r->public_model);
		else if (KEY("r"))
			dst = r->region, dcap = sizeof(r->region);
		else if (KEY("av"))
			dst = r->api_version, dcap = sizeof(r->api_version);
		else if (KEY("t"))
			dst = r->tenant, dcap = sizeof(r->tenant);
		else if (KEY("mask"))
			dst = r->mask, dcap = sizeof(r->mask);
		else if (KEY("mt"))
			r->meter = stop - eq == 2 && eq[1] == '1';
#undef KEY
		if (dst && decode(eq + 1, (size_t)(stop - eq - 1), dst, dcap) < 0) {
			snprintf(err, cap, "field '%.*s' is malformed or too long", (int)kl, p);
			return -1;
		}
		p = amp ? amp + 1 : end;
	}
	r->family = xl_provider_of(r->provider);
	if (r->family == XL_OPENAI && strcmp(r->provider, "ollama") == 0 && strcmp(r->api_version, "native") == 0)
		r->family = XL_OLLAMA;
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

int route_encode(const char *s, size_t n, char *out, size_t cap)
{
	static const char digits[] = "0123456789ABCDEF";
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		int plain = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
			    c == '-' || c == '_' || c == '.' || c == '~';
		if (o + (plain ? 1 : 3) + 1 > cap)
			return -1;
		if (plain) {
			out[o++] = (char)c;
		} else {
			out[o++] = '%';
			out[o++] = digits[c >> 4];
			out[o++] = digits[c & 15];
		}
	}
	out[o] = '\0';
	return (int)o;
}
