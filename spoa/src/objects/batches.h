/*
 * batches: bills a batch once, when it is seen completed (docs/api.md, "Billing a
 * batch"). A batch's answer (create, retrieve, cancel) reaches the agent on the report
 * line (objects/objects.c); when its status is `completed`, a bill is queued: its
 * `usage` (input and output tokens), or, without one, an estimate (the input file's
 * bytes / limits_bytes_per_token, and limits_default_max_tokens per completed request).
 * jairouter.bill_batches (sql/016) adds a batch only the first time any agent sends it,
 * so repeated sightings bill nothing. jairouter.bill_batches_charged (sql/020) returns
 * the batches it added: only the agent whose statement added a batch hands it to the
 * charge callback (batches_set_charge), which charges its tokens and cost to the
 * tenant's quota and budget counters (pipeline/limits.h, limits_charge_batch). A
 * statement whose answer is lost is sent again and its batches then charge nothing.
 *
 * Control thread only. Bound: BATCH_BILLS_MAX bills wait for PostgreSQL; beyond, the
 * bill is dropped and counted (the batch is billed at its next sighting instead).
 */
#ifndef JR_OBJECTS_BATCHES_H
#define JR_OBJECTS_BATCHES_H

#include <stddef.h>
#include <stdint.h>

#include "util/dbwriter.h"

#define BATCH_BILLS_MAX 4096
#define BATCH_BILLS_PER_STATEMENT 500

struct evbuffer;
struct st_object;

/* A batch billed for the first time, by this agent. */
struct batch_charge {
	int64_t tenant_id, key_id, model_id;
	int64_t tokens;     /* input + output */
	int64_t cost_micro; /* micro-units of the catalogue's currency */
};
typedef void (*batches_charge_fn)(const struct batch_charge *c);

/* Who charges a batch billed first here (main.c: the limits stage); NULL: nobody. */
void batches_set_charge(batches_charge_fn fn);

/* The estimate's parameters (limits_bytes_per_token, limits_default_max_tokens). */
void batches_configure(unsigned bytes_per_token, unsigned default_max_tokens);

/* A batch's latest JSON seen (obj->json set), on a request by key_id. */
void batches_sighting(const struct st_object *obj, int64_t key_id);

/* The files a batch's JSON names as its results (output_file_id, error_file_id): they
 * belong to the batch's tenant and live on its backend. Fills out[0..2) (json set to a
 * minimal file object the caller frees) and returns how many. */
int batches_outputs(const struct st_object *batch, struct st_object *out);

/* The writer's turn (objects/objects.c): 1 with *q set when bills wait; then
 * batches_done with the outcome. */
int batches_next(struct dbw_query *q);
void batches_done(enum dbw_status status, const char *err);
/* One row of the bill's result (a batch added now): charged at batches_done(DBW_OK). */
void batches_row(int ncols, const char *const *vals);
size_t batches_waiting(void);

void batches_init(void);
void batches_free(void);
void batches_render_metrics(struct evbuffer *out);

#endif /* JR_OBJECTS_BATCHES_H */
