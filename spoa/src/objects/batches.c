/* batches: see batches.h. */
#include "objects/batches.h"

#include "json/jscan.h"
#include "state/objects.h"
#include "state/state.h"
#include "util/log.h"

#include <event2/buffer.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BILL_SQL                                                                                  \
	"SELECT tenant, api_key, model, tokens, cost_micro FROM jairouter.bill_batches_charged(" \
	"$1::text[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[], "    \
	"$7::bigint[], $8::boolean[])"
#define NPARAMS 8

struct bill {
	char batch[OBJ_ID_MAX];
	int64_t tenant, key, model, requests, input, output;
	int estimated;
};

static struct {
	struct bill *q; /* ring of BATCH_BILLS_MAX */
	size_t head, n, sent;
	struct evbuffer *arr[NPARAMS];
	const char *params[NPARAMS];
	struct batch_charge *added; /* the statement in flight's rows: at most `sent` */
	size_t nadded;
	batches_charge_fn charge;
} b;

static struct {
	_Atomic unsigned bytes_per_token, default_max_tokens;
	_Atomic uint64_t seen, queued, sent, dropped, errors, charged;
} st = { 4, 256, 0, 0, 0, 0, 0, 0 };

void batches_set_charge(batches_charge_fn fn)
{
	b.charge = fn;
}

void batches_configure(unsigned bytes_per_token, unsigned default_max_tokens)
{
	atomic_store(&st.bytes_per_token, bytes_per_token ? bytes_per_token : 4);
	atomic_store(&st.default_max_tokens, default_max_tokens);
}

/* An integer member of the object p[0..n); -1 when absent or not an integer. */
static int64_t int_member(const char *p, size_t n, const char *key)
{
	const char *const keys[] = { key };
	struct jscan_member m;

	if (jscan_members(p, n, JSCAN_DEFAULT_DEPTH, keys, 1, &m) != JSCAN_OK || m.count != 1 || !m.is_integer ||
	    m.integer < 0)
		return -1;
	return m.integer;
}

/* The model billed: the batch's `model` when the catalogue has it under that name (the
 * lines of a batch file name catalogue models, checked at upload), else the owner's. */
static int64_t billed_model(const struct st_object *obj, const char *p, const struct jscan_member *m)
{
	char name[JSCAN_MODEL_MAX];
	size_t n;
	int64_t id = obj->model_id;
	const struct st_model *mod;

	if (!m->count || m->type != JSCAN_STRING || jscan_string(p + m->offset, m->len, name, sizeof(name), &n) < 0)
		return id;
	mod = state_resolve_model(store_read_begin(), name, n);
	if (mod && strcmp(mod->name, name) == 0)
		id = mod->id;
	store_read_end();
	return id;
}

/* Without usage: the input file's bytes / bytes_per_token, as the gateway estimates a
 * request's prompt, and default_max_tokens per completed request. */
static void estimate(const struct st_object *obj, const char *p, const struct jscan_member *file,
		     struct bill *out)
{
	char id[OBJ_ID_MAX];
	size_t n;
	int64_t bytes = 0, total;
	const struct st_object *f;

	if (file->count && file->type == JSCAN_STRING &&
	    jscan_string(p + file->offset, file->len, id, sizeof(id), &n) == 0) {
		f = objects_find(state_objects(store_read_begin()), OBJ_FILE, id, n);
		if (f && f->json && f->tenant_id == obj->tenant_id)
			bytes = int_member(f->json, strlen(f->json), "bytes");
		store_read_end();
	}
	total = out->requests;
	out->input = bytes > 0 ? (bytes + atomic_load(&st.bytes_per_token) - 1) / atomic_load(&st.bytes_per_token) : 0;
	out->output = total * (int64_t)atomic_load(&st.default_max_tokens);
	out->estimated = 1;
}

static void queue(const struct bill *bl)
{
	if (!b.q || b.n == BATCH_BILLS_MAX) {
		atomic_fetch_add(&st.dropped, 1);
		return;
	}
	b.q[(b.head + b.n++) % BATCH_BILLS_MAX] = *bl;
	atomic_fetch_add(&st.queued, 1);
}

void batches_sighting(const struct st_object *obj, int64_t key_id)
{
	static const char *const keys[] = { "status", "usage", "request_counts", "input_file_id", "model" };
	struct jscan_member m[5];
	const char *p = obj->json;
	size_t n = p ? strlen(p) : 0;
	struct bill bl = { .tenant = obj->tenant_id, .key = key_id };

	if (!p || jscan_members(p, n, JSCAN_DEFAULT_DEPTH, keys, 5, m) != JSCAN_OK || m[0].count != 1 ||
	    m[0].len != strlen("\"completed\"") || memcmp(p + m[0].offset, "\"completed\"", m[0].len) != 0)
		return;
	atomic_fetch_add(&st.seen, 1);
	memcpy(bl.batch, obj->object_id, sizeof(bl.batch));
	bl.model = billed_model(obj, p, &m[4]);
	bl.requests = m[2].type == JSCAN_OBJECT ? int_member(p + m[2].offset, m[2].len, "completed") : -1;
	if (bl.requests < 0)
		bl.requests = 0;
	if (m[1].type == JSCAN_OBJECT) {
		bl.input = int_member(p + m[1].offset, m[1].len, "input_tokens");
		bl.output = int_member(p + m[1].offset, m[1].len, "output_tokens");
	}
	if (m[1].type != JSCAN_OBJECT || bl.input < 0 || bl.output < 0)
		estimate(obj, p, &m[3], &bl);
	if (bl.model > 0)
		queue(&bl);
}

int batches_outputs(const struct st_object *batch, struct st_object *out)
{
	static const char *const keys[] = { "output_file_id", "error_file_id", "completed_at", "created_at" };
	static const char *const purpose[] = { "batch_output", "batch_output" };
	struct jscan_member m[4];
	const char *p = batch->json;
	int n = 0;

	if (!p || jscan_members(p, strlen(p), JSCAN_DEFAULT_DEPTH, keys, 4, m) != JSCAN_OK)
		return 0;
	for (int i = 0; i < 2; i++) {
		struct st_object *f = &out[n];
		char json[OBJ_ID_MAX + 160];
		size_t len;
		int64_t at = m[2].is_integer && m[2].integer > 0 ? m[2].integer
			     : m[3].is_integer && m[3].integer > 0 ? m[3].integer : 0;

		memset(f, 0, sizeof(*f));
		if (m[i].count != 1 || m[i].type != JSCAN_STRING ||
		    jscan_string(p + m[i].offset, m[i].len, f->object_id, sizeof(f->object_id), &len) < 0 ||
		    !obj_id_valid(f->object_id, len))
			continue;
		f->kind = OBJ_FILE;
		f->tenant_id = batch->tenant_id;
		f->model_id = batch->model_id;
		f->key_id = batch->key_id;
		len = (size_t)snprintf(json, sizeof(json), "{\"id\":\"%s\",\"object\":\"file\",\"created_at\":%" PRId64
				       ",\"purpose\":\"%s\",\"status\":\"processed\"}", f->object_id, at, purpose[i]);
		if (obj_set_json(f, json, len) == 0)
			n++;
	}
	return n;
}

/* ---- the writer's turn ------------------------------------------------------------------ */

static void build(size_t n)
{
	for (int i = 0; i < NPARAMS; i++) {
		evbuffer_drain(b.arr[i], evbuffer_get_length(b.arr[i]));
		evbuffer_add(b.arr[i], "{", 1);
	}
	for (size_t i = 0; i < n; i++) {
		const struct bill *e = &b.q[(b.head + i) % BATCH_BILLS_MAX];
		const char *sep = i ? "," : "";

		evbuffer_add_printf(b.arr[0], "%s%s", sep, e->batch); /* [A-Za-z0-9_.-] only */
		evbuffer_add_printf(b.arr[1], "%s%" PRId64, sep, e->tenant);
		evbuffer_add_printf(b.arr[2], "%s%" PRId64, sep, e->key);
		evbuffer_add_printf(b.arr[3], "%s%" PRId64, sep, e->model);
		evbuffer_add_printf(b.arr[4], "%s%" PRId64, sep, e->requests);
		evbuffer_add_printf(b.arr[5], "%s%" PRId64, sep, e->input);
		evbuffer_add_printf(b.arr[6], "%s%" PRId64, sep, e->output);
		evbuffer_add_printf(b.arr[7], "%s%s", sep, e->estimated ? "t" : "f");
	}
	for (int i = 0; i < NPARAMS; i++) {
		evbuffer_add(b.arr[i], "}", 2); /* with the NUL */
		b.params[i] = (const char *)evbuffer_pullup(b.arr[i], -1);
	}
}

int batches_next(struct dbw_query *q)
{
	if (!b.n)
		return 0;
	b.sent = b.n < BATCH_BILLS_PER_STATEMENT ? b.n : BATCH_BILLS_PER_STATEMENT;
	b.nadded = 0;
	build(b.sent);
	q->sql = BILL_SQL;
	q->nparams = NPARAMS;
	q->params = b.params;
	return 1;
}

/* An integer column; -1 when NULL or not one. */
static int64_t col(const char *v)
{
	char *end;
	long long x;

	if (!v || !*v)
		return -1;
	x = strtoll(v, &end, 10);
	return *end ? -1 : (int64_t)x;
}

void batches_row(int ncols, const char *const *vals)
{
	struct batch_charge *c;

	/* One row per batch sent at most: a row past that is not the statement's. */
	if (ncols != 5 || !b.added || b.nadded >= b.sent)
		return;
	c = &b.added[b.nadded];
	c->tenant_id = col(vals[0]);
	c->key_id = col(vals[1]);
	c->model_id = col(vals[2]);
	c->tokens = col(vals[3]);
	c->cost_micro = col(vals[4]);
	if (c->tenant_id > 0 && c->model_id > 0 && c->tokens >= 0 && c->cost_micro >= 0)
		b.nadded++;
}

void batches_done(enum dbw_status status, const char *err)
{
	if (status == DBW_LOST || status == DBW_STOP) {
		/* Sent again: bill_batches_charged adds a batch once. When the lost statement had
		 * committed, its batches come back as billed already and charge nothing: the
		 * counters under-count them rather than count them twice. */
		b.sent = b.nadded = 0;
		return;
	}
	if (status == DBW_OK) {
		atomic_fetch_add(&st.sent, b.sent);
		for (size_t i = 0; b.charge && i < b.nadded; i++)
			b.charge(&b.added[i]);
		atomic_fetch_add(&st.charged, b.nadded);
	} else {
		log_event(LOG_ERROR, "batch_bills_failed",
			  LOG_FIELDS(LOG_I("bills", b.sent), LOG_S("error", err ? err : "")),
			  "objects: PostgreSQL refused %zu batch bills: %s", b.sent, err ? err : "");
		atomic_fetch_add(&st.errors, 1);
		atomic_fetch_add(&st.dropped, b.sent);
	}
	b.head = (b.head + b.sent) % BATCH_BILLS_MAX;
	b.n -= b.sent;
	b.sent = b.nadded = 0;
}

size_t batches_waiting(void)
{
	return b.n;
}

void batches_init(void)
{
	b.q = calloc(BATCH_BILLS_MAX, sizeof(*b.q));
	b.added = calloc(BATCH_BILLS_PER_STATEMENT, sizeof(*b.added));
	if (!b.q || !b.added)
		abort();
	for (int i = 0; i < NPARAMS; i++)
		if (!(b.arr[i] = evbuffer_new()))
			abort();
}

void batches_free(void)
{
	for (int i = 0; i < NPARAMS; i++) {
		if (b.arr[i])
			evbuffer_free(b.arr[i]);
		b.arr[i] = NULL;
	}
	free(b.q);
	free(b.added);
	b.q = NULL;
	b.added = NULL;
	b.n = b.head = b.sent = b.nadded = 0;
}

void batches_render_metrics(struct evbuffer *out)
{
	evbuffer_add_printf(out,
		"# HELP jairouter_batches_completed_seen_total Sightings of completed batches (each queues a bill; PostgreSQL keeps the first).\n"
		"# TYPE jairouter_batches_completed_seen_total counter\njairouter_batches_completed_seen_total %" PRIu64 "\n"
		"# HELP jairouter_batches_bills_sent_total Batch bills PostgreSQL took (a batch already billed adds nothing).\n"
		"# TYPE jairouter_batches_bills_sent_total counter\njairouter_batches_bills_sent_total %" PRIu64 "\n"
		"# HELP jairouter_batches_bills_dropped_total Batch bills not written (queue full or refused); billed at a later sighting.\n"
		"# TYPE jairouter_batches_bills_dropped_total counter\njairouter_batches_bills_dropped_total %" PRIu64 "\n"
		"# HELP jairouter_batches_charged_total Batches this agent billed first, charged to the quota and budget counters.\n"
		"# TYPE jairouter_batches_charged_total counter\njairouter_batches_charged_total %" PRIu64 "\n",
		atomic_load(&st.seen), atomic_load(&st.sent), atomic_load(&st.dropped), atomic_load(&st.charged));
}
