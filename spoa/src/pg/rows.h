/*
 * pg/rows: what pgsync (pg/pgsync.c) reads from PostgreSQL, one entry per reader: the
 * table its notifications name, the SELECTs for a full load and for changed ids, and the
 * functions that apply a row (a struct row of text columns, util/row.h) to a state or
 * delete an id from it. Internal to pg/.
 */
#ifndef JR_PG_ROWS_H
#define JR_PG_ROWS_H

#include <stddef.h>
#include <stdint.h>

#include "state/state.h"
#include "util/row.h"

struct ps_table {
	const char *name;       /* as in notification payloads */
	const char *select_all; /* full load */
	const char *select_ids; /* the rows whose id = ANY($1::bigint[]) */
	int ncols;
	/* Applies one row to s; stores its id in *id. 0, or -1 for a row left out. */
	int (*put)(struct state *s, const struct row *r, int64_t *id);
	void (*del)(struct state *s, int64_t id);
};

/* In load order: the catalogue first, then what refers to it. */
extern const struct ps_table ps_tables[];
extern const size_t ps_ntables;

#endif /* JR_PG_ROWS_H */
