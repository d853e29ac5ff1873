/*
 * fixtures: small helpers shared by the unit tests and the fuzz targets.
 */
#ifndef JR_TEST_FIXTURES_H
#define JR_TEST_FIXTURES_H

#include "auth/apikey.h"
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
	struct st_tenant t = { 1, "acme", ST_ACTIVE };
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

#endif /* JR_TEST_FIXTURES_H */
