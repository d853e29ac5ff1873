/* objects: see objects.h. */
#include "objects/objects.h"

#include "json/jscan.h"
#include "objects/batches.h"
#include "report/report.h"
#include "state/objects.h"
#include "state/state.h"
#include "util/b64.h"
#include "util/dbwriter.h"
#include "util/log.h"

#include <event2/buffer.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REQ_ID_MAX 64

/* Statement: rows whose tenant (and model, when given) still exist; an id seen twice
 * (two agents read every line) is inserted once. A newer JSON of a file or batch (a
 * batch's latest state, sql/016) updates the owner's row, never another tenant's. */
#define INSERT_SQL                                                                         \
	"INSERT INTO jairouter.api_objects (kind, object_id, tenant_id, model_id, object, "   \
	"key_id) SELECT DISTINCT ON (u.k, u.o) u.k, u.o, u.t, nullif(u.m, 0), u.j, "         \
	"nullif(u.y, 0) FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], "    \
	"$5::text[], $6::bigint[]) WITH ORDINALITY AS u(k, o, t, m, j, y, n) "               \
	"WHERE EXISTS (SELECT 1 FROM jairouter.tenants x WHERE x.id = u.t) "                \
	"AND (u.m = 0 OR EXISTS (SELECT 1 FROM jairouter.models x WHERE x.id = u.m)) "     \
	"ORDER BY u.k, u.o, u.n DESC "                                                       \
	"ON CONFLICT (kind, object_id) DO UPDATE SET object = EXCLUDED.object "              \
	"WHERE api_objects.tenant_id = EXCLUDED.tenant_id AND EXCLUDED.object IS NOT NULL "  \
	"AND api_objects.object IS DISTINCT FROM EXCLUDED.object"
#define NPARAMS 6
#define OB_RAW_MAX 3072 /* the answer HAProxy puts on the line (ob=, base64), decoded */

struct pending {
	char req[REQ_ID_MAX];
	char rid[OBJ_ID_MAX];
};

/* Control thread only. */
static struct {
	struct dbw *pg;
	struct st_object *queue; /* ring of OBJ_QUEUE_MAX */
	size_t head, n, sent;    /* sent: rows of the statement in flight, from head */
	int billing;             /* the statement in flight is batch bills (objects/batches.h) */
	struct evbuffer *arr[NPARAMS];
	const char *params[NPARAMS];
	struct pending pend[OBJ_PENDING_MAX];
	size_t pend_next;
} o;

static struct {
	_Atomic uint64_t recorded, written, dropped, errors;
} st;

static int copy_field(const struct jr_report *r, const char *key, char *out, size_t cap)
{
	size_t n;
	const char *v = report_get(r, key, &n);

	if (!v || n >= cap)
		return -1;
	memcpy(out, v, n);
	out[n] = '\0';
	return (int)n;
}

/* acct=<process>.<tenant id>.<key id>.<model id>.<prompt>.<completion> */
static int parse_acct(const struct jr_report *r, int64_t *tenant, int64_t *key, int64_t *model)
{
	char buf[160], *f[6], *save = NULL, *p = buf;
	int i;

	if (copy_field(r, "acct", buf, sizeof(buf)) < 0)
		return -1;
	for (i = 0; i < 6 && (f[i] = strtok_r(p, ".", &save)); i++)
		p = NULL;
	if (i < 4)
		return -1;
	*tenant = strtoll(f[1], NULL, 10);
	*key = strtoll(f[2], NULL, 10);
	*model = strtoll(f[3], NULL, 10);
	return *tenant > 0 ? 0 : -1;
}

static void remember_adapter_id(const struct jr_report *r)
{
	struct pending *p = &o.pend[o.pend_next];

	if (copy_field(r, "id", p->req, sizeof(p->req)) < 0 || copy_field(r, "rid", p->rid, sizeof(p->rid)) < 0 ||
	    !obj_id_valid(p->rid, strlen(p->rid))) {
		p->req[0] = '\0';
		return;
	}
	o.pend_next = (o.pend_next + 1) % OBJ_PENDING_MAX;
}

/* The id the adapter saw for this request, taken (NULL when none). */
static const char *take_adapter_id(const struct jr_report *r, char *out)
{
	size_t n;
	const char *id = report_get(r, "id", &n);

	for (size_t i = 0; id && i < OBJ_PENDING_MAX; i++) {
		struct pending *p = &o.pend[i];

		if (p->req[0] && strlen(p->req) == n && memcmp(p->req, id, n) == 0) {
			memcpy(out, p->rid, OBJ_ID_MAX);
			p->req[0] = '\0';
			return out;
		}
	}
	return NULL;
}

/* Standard base64 with padding (HAProxy's base64 converter) into out[0..cap): the
 * decoded length, or -1. */
static int b64_decode(const char *in, size_t n, char *out, size_t cap)
{
	size_t used = 0;

	if (n % 4)
		return -1;
	for (size_t i = 0; i < n; i += 4) {
		int v[4], pad = 0;

		for (int j = 0; j < 4; j++) {
			int c = (unsigned char)in[i + j];

			v[j] = c == '=' && i + 4 == n && j >= 2 ? (pad++, 0) : b64_digit(c, B64_STANDARD);
			if (v[j] < 0 || (pad && c != '='))
				return -1;
		}
		if (used + 3 - (size_t)pad > cap)
			return -1;
		out[used++] = (char)(v[0] << 2 | v[1] >> 4);
		if (pad < 2)
			out[used++] = (char)((v[1] & 15) << 4 | v[2] >> 2);
		if (pad < 1)
			out[used++] = (char)((v[2] & 3) << 6 | v[3]);
	}
	return (int)used;
}

/* The object's JSON from the line's ob= (files and batches): kept when it is a JSON
 * object whose id is the recorded one. */
static void take_json(const struct jr_report *r, struct st_object *obj)
{
	static const char *const keys[] = { "id" };
	struct jscan_member m;
	char raw[OB_RAW_MAX], id[OBJ_ID_MAX];
	size_t n, idn;
	const char *v = report_get(r, "ob", &n);
	int len = v ? b64_decode(v, n, raw, sizeof(raw)) : -1;

	if (len <= 0 || jscan_members(raw, (size_t)len, JSCAN_DEFAULT_DEPTH, keys, 1, &m) != JSCAN_OK ||
	    m.count != 1 || m.type != JSCAN_STRING ||
	    jscan_string(raw + m.offset, m.len, id, sizeof(id), &idn) < 0 || strcmp(id, obj->object_id) != 0)
		return;
	if (obj_set_json(obj, raw, (size_t)len) < 0)
		obj->json = NULL;
}

/* The key that created the object when this agent knows it (its row or its creation
 * line), else the key of this request. */
static int64_t creator_key(const struct st_object *obj)
{
	const struct st_object *old = objects_find(state_objects(store_read_begin()), obj->kind, obj->object_id,
						   strlen(obj->object_id));
	int64_t key = old && old->tenant_id == obj->tenant_id && old->key_id ? old->key_id : obj->key_id;

	store_read_end();
	return key;
}

/* Takes obj->json (the queue keeps it, or it is freed). */
static void record(struct st_object *obj)
{
	objects_put(state_objects(store_write_begin()), obj);
	store_write_end();
	atomic_fetch_add(&st.recorded, 1);
	if (o.n == OBJ_QUEUE_MAX || !o.queue) {
		atomic_fetch_add(&st.dropped, 1);
		free(obj->json);
		return;
	}
	o.queue[(o.head + o.n++) % OBJ_QUEUE_MAX] = *obj;
}

void objects_on_report(const struct jr_report *r, void *arg)
{
	struct st_object obj = { 0 };
	int64_t key = 0;
	char kind[16], adapter_rid[OBJ_ID_MAX];
	const char *rid;
	int k;

	(void)arg;
	if (r->adapter) {
		if (report_get(r, "rid", NULL))
			remember_adapter_id(r);
		return;
	}
	if (copy_field(r, "ok", kind, sizeof(kind)) < 0 || (k = obj_kind_of(kind)) < 0)
		return;
	rid = take_adapter_id(r, adapter_rid);
	if (r->status != 200 || !report_is(r, "v", "allow") || parse_acct(r, &obj.tenant_id, &key, &obj.model_id) < 0)
		return;
	if (!rid && copy_field(r, "rid", obj.object_id, sizeof(obj.object_id)) < 0)
		return;
	if (rid)
		memcpy(obj.object_id, rid, OBJ_ID_MAX);
	if (!obj_id_valid(obj.object_id, strlen(obj.object_id)))
		return;
	obj.kind = (enum obj_kind)k;
	if (obj.kind != OBJ_RESPONSE)
		take_json(r, &obj);
	obj.key_id = key;
	if (obj.kind == OBJ_BATCH && obj.json) {
		struct st_object out[2];
		int n = batches_outputs(&obj, out);

		batches_sighting(&obj, creator_key(&obj));
		for (int i = 0; i < n; i++)
			record(&out[i]);
	}
	record(&obj);
}

/* ---- the writer (util/dbwriter.h) ---------------------------------------------------- */

/* An element of a text[] literal: quoted, with " and \\ escaped. */
static void add_quoted(struct evbuffer *b, const char *s)
{
	const char *p = s;

	evbuffer_add(b, "\"", 1);
	for (; *p; p++) {
		if (*p == '"' || *p == '\\')
			evbuffer_add(b, "\\", 1);
		evbuffer_add(b, p, 1);
	}
	evbuffer_add(b, "\"", 1);
}

static void build_params(size_t n)
{
	for (int i = 0; i < NPARAMS; i++) {
		evbuffer_drain(o.arr[i], evbuffer_get_length(o.arr[i]));
		evbuffer_add(o.arr[i], "{", 1);
	}
	for (size_t i = 0; i < n; i++) {
		const struct st_object *e = &o.queue[(o.head + i) % OBJ_QUEUE_MAX];
		const char *sep = i ? "," : "";

		evbuffer_add_printf(o.arr[0], "%s%s", sep, obj_kind_name(e->kind));
		evbuffer_add_printf(o.arr[1], "%s%s", sep, e->object_id); /* [A-Za-z0-9_.-] only */
		evbuffer_add_printf(o.arr[2], "%s%" PRId64, sep, e->tenant_id);
		evbuffer_add_printf(o.arr[3], "%s%" PRId64, sep, e->model_id);
		evbuffer_add(o.arr[4], sep, strlen(sep));
		if (e->json)
			add_quoted(o.arr[4], e->json);
		else
			evbuffer_add(o.arr[4], "NULL", 4);
		evbuffer_add_printf(o.arr[5], "%s%" PRId64, sep, e->key_id);
	}
	for (int i = 0; i < NPARAMS; i++) {
		evbuffer_add(o.arr[i], "}", 2); /* with the NUL */
		o.params[i] = (const char *)evbuffer_pullup(o.arr[i], -1);
	}
}

static int writer_next(void *arg, struct dbw_query *q)
{
	(void)arg;
	o.billing = 0;
	if (!o.n)
		return (o.billing = batches_next(q));
	o.sent = o.n < OBJ_BATCH_MAX ? o.n : OBJ_BATCH_MAX;
	build_params(o.sent);
	q->sql = INSERT_SQL;
	q->nparams = NPARAMS;
	q->params = o.params;
	return 1;
}

static void drop_sent(void)
{
	for (size_t i = 0; i < o.sent; i++) {
		struct st_object *e = &o.queue[(o.head + i) % OBJ_QUEUE_MAX];

		free(e->json);
		e->json = NULL;
	}
	o.head = (o.head + o.sent) % OBJ_QUEUE_MAX;
	o.n -= o.sent;
	o.sent = 0;
}

static void writer_done(void *arg, enum dbw_status status, const char *err)
{
	(void)arg;
	if (o.billing) {
		o.billing = 0;
		batches_done(status, err);
		return;
	}
	if (status == DBW_OK) {
		atomic_fetch_add(&st.written, o.sent);
		drop_sent();
		if (batches_waiting())
			dbw_kick(o.pg);
	} else if (status == DBW_ERROR) {
		/* A rejected batch would be rejected again: dropped (the store keeps it). */
		log_event(LOG_ERROR, "objects_write_failed",
			  LOG_FIELDS(LOG_I("rows", o.sent), LOG_S("error", err ? err : "")),
			  "objects: PostgreSQL refused %zu object rows: %s", o.sent,
			  err ? err : "");
		atomic_fetch_add(&st.errors, 1);
		atomic_fetch_add(&st.dropped, o.sent);
		drop_sent();
	} else {
		o.sent = 0; /* lost or stopped: sent again */
	}
}

static void writer_row(void *arg, int ncols, const char *const *vals)
{
	(void)arg;
	if (o.billing)
		batches_row(ncols, vals);
}

static const struct dbw_ops writer_ops = {
	.name = "objects",
	.appname = "jairouter-spoa-objects",
	.down_msg = "object owners wait in memory",
	.next = writer_next,
	.row = writer_row,
	.done = writer_done,
	.tick = NULL,
};

int objects_start(struct event_base *base, const char *conninfo, unsigned flush_ms)
{
	o.queue = calloc(OBJ_QUEUE_MAX, sizeof(*o.queue));
	if (!o.queue)
		abort();
	batches_init();
	for (int i = 0; i < NPARAMS; i++)
		if (!(o.arr[i] = evbuffer_new()))
			abort();
	if (!conninfo || !conninfo[0])
		return 0;
	o.pg = dbw_start(base, conninfo, flush_ms, &writer_ops, NULL);
	return o.pg ? 0 : -1;
}

void objects_stop(void)
{
	struct dbw_query q;

	if (o.pg) {
		dbw_halt(o.pg);
		o.sent = 0;
		while (o.n && writer_next(NULL, &q)) {
			if (dbw_exec_sync(o.pg, &q) == -2)
				break;
			atomic_fetch_add(&st.written, o.sent);
			drop_sent();
		}
		while (!o.n && batches_waiting() && writer_next(NULL, &q)) {
			int rc = dbw_exec_sync(o.pg, &q);

			if (rc == -2)
				break;
			batches_done(rc == 0 ? DBW_OK : DBW_ERROR, "refused at stop");
		}
		dbw_free(o.pg);
		o.pg = NULL;
	}
	for (int i = 0; i < NPARAMS; i++) {
		if (o.arr[i])
			evbuffer_free(o.arr[i]);
		o.arr[i] = NULL;
	}
	for (size_t i = 0; o.queue && i < o.n; i++)
		free(o.queue[(o.head + i) % OBJ_QUEUE_MAX].json);
	free(o.queue);
	o.queue = NULL;
	o.n = o.head = 0;
	batches_free();
}

void objects_render_metrics(struct evbuffer *out, void *arg)
{
	size_t known = objects_count(state_objects(store_read_begin()));

	store_read_end();
	(void)arg;
	evbuffer_add_printf(out,
		"# HELP jairouter_objects_recorded_total Stored API objects (responses) recorded with their owner.\n"
		"# TYPE jairouter_objects_recorded_total counter\njairouter_objects_recorded_total %" PRIu64 "\n"
		"# HELP jairouter_objects_written_total Object owners written to PostgreSQL.\n"
		"# TYPE jairouter_objects_written_total counter\njairouter_objects_written_total %" PRIu64 "\n"
		"# HELP jairouter_objects_dropped_total Object owners not written to PostgreSQL (queue full or refused).\n"
		"# TYPE jairouter_objects_dropped_total counter\njairouter_objects_dropped_total %" PRIu64 "\n"
		"# HELP jairouter_objects_known Object owners this agent holds.\n"
		"# TYPE jairouter_objects_known gauge\njairouter_objects_known %zu\n",
		atomic_load(&st.recorded), atomic_load(&st.written), atomic_load(&st.dropped), known);
	batches_render_metrics(out);
}
