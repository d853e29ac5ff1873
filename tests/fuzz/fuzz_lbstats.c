/*
 * Fuzz target: the `show stat` CSV parser of lb/table.c on arbitrary answers, then a
 * choice with every strategy in every backend it produced and a carry-over onto a second
 * parse. Besides memory safety it checks the table's promises: only be_* backends, names
 * shorter than LB_NAME_MAX, at most LB_SERVERS_MAX servers per backend, and a chosen
 * server that exists in its backend.
 */
#include "lb/table.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_choice(struct lb_table *t, const struct lb_backend *b, enum lb_strategy s)
{
	struct lb_rng rng;
	struct lb_choose_in in = { s, 42, 1, 1.25, 1000, 500, &rng };
	struct lb_choice c;
	int found = 0;

	lb_rng_seed(&rng, 7);
	if (lb_table_choose(t, b->name, &in, &c) != 1)
		return;
	for (size_t i = 0; i < b->n; i++)
		found |= strcmp(b->srv[i].name, c.server) == 0;
	if (!found)
		__builtin_trap();
	lb_table_release(t, b->name, c.server);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[160];
	struct lb_table *t = lb_table_parse((const char *)data, size, 0, NULL, err, sizeof(err));
	struct lb_table *u;

	if (!t)
		return 0;
	for (size_t i = 0; i < t->nbe; i++) {
		const struct lb_backend *b = &t->be[i];
		if (strncmp(b->name, "be_", 3) != 0 || strlen(b->name) >= LB_NAME_MAX ||
		    b->n > LB_SERVERS_MAX)
			__builtin_trap();
		for (size_t j = 0; j < b->n; j++)
			if (!b->srv[j].name[0] || strlen(b->srv[j].name) >= LB_NAME_MAX)
				__builtin_trap();
		for (int s = LB_S_RANDOM; s < LB_S__COUNT; s++)
			check_choice(t, b, (enum lb_strategy)s);
		lb_table_report(t, b->name, b->n ? b->srv[0].name : "x", LB_O_FAILURE, 1, 2, 0, 10);
	}
	u = lb_table_parse((const char *)data, size, 1000, NULL, err, sizeof(err));
	lb_table_carry(u, t, 1000);
	lb_table_tick(u, 7000, NULL, NULL);
	lb_table_free(t);
	lb_table_free(u);
	return 0;
}
