/*
 * fixtures: small helpers shared by the unit tests and the fuzz targets.
 */
#ifndef JR_TEST_FIXTURES_H
#define JR_TEST_FIXTURES_H

#include "auth/apikey.h"
#include "spop/spop.h"
#include "state/state.h"

#include <stdio.h>
#include <string.h>

/* A model that serves every service type (bits of policy_service_bit()). */
#define FX_SERVICES_ALL 0xffffffffu

/* Publishes a catalogue of one active tenant "acme" (id 1), one active model
 * "demo-model" on backend be_mock, and one active key `key` (id 1), and marks the
 * database online. */
static inline void fx_load_one_of_each(const char *key)
{
	struct state *s = state_new();
	struct st_tenant t = { 1, "acme", ST_ACTIVE, "" };
	struct st_model m = { .id = 1, .name = "demo-model", .backend = "be_mock" };
	struct st_key k;

	m.services = FX_SERVICES_ALL;
	m.caps = ST_CAP_STREAMING;

	memset(&k, 0, sizeof(k));
	k.id = 1;
	k.tenant_id = 1;
	auth_key_hash(key, strlen(key), k.hash);
	snprintf(k.prefix, sizeof(k.prefix), "%.11s", key);
	state_put_tenant(s, &t);
	state_put_model(s, &m);
	state_put_key(s, &k);
	store_replace(s);
	store_set_db_online(1);
}

/* True when the NUL-terminated s occurs in p[0..n). */
static inline int fx_contains(const uint8_t *p, size_t n, const char *s)
{
	size_t l = strlen(s);

	for (size_t i = 0; i + l <= n; i++)
		if (memcmp(p + i, s, l) == 0)
			return 1;
	return 0;
}

/* One argument of a NOTIFY message. */
struct fx_arg {
	const char *name;
	struct spop_data value;
};

static inline void fx_put_raw(struct spop_writer *w, const void *p, size_t n)
{
	if (w->len + n > w->cap) {
		w->overflow = 1;
		return;
	}
	memcpy(w->buf + w->len, p, n);
	w->len += n;
}

/* Builds a LIST-OF-MESSAGES with one message `msg` into buf. Returns its size, or 0
 * when it does not fit cap. */
static inline size_t fx_build_payload(uint8_t *buf, size_t cap, const char *msg,
				      const struct fx_arg *args, int n)
{
	struct spop_writer w;
	uint8_t v[10], nargs = (uint8_t)n;
	int vl = spop_varint_encode(strlen(msg), v, sizeof(v));

	spop_writer_init(&w, buf, cap);
	fx_put_raw(&w, v, (size_t)vl);
	fx_put_raw(&w, msg, strlen(msg));
	fx_put_raw(&w, &nargs, 1);
	for (int i = 0; i < n; i++)
		spop_put_kv(&w, args[i].name, &args[i].value);
	return w.overflow ? 0 : w.len;
}

#endif /* JR_TEST_FIXTURES_H */
