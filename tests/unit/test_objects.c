/*
 * objects/: report lines of file and batch requests (docs/api.md, "Files and batches"):
 * the answer on the line (ob=, base64) is kept with the owner when it is a JSON object of
 * the recorded id; a completed batch queues one bill, from its usage or at the estimate;
 * its output file becomes the tenant's.
 */
#include "objects/batches.h"
#include "objects/objects.h"
#include "report/report.h"
#include "state/objects.h"
#include "state/state.h"

#include "testlib.h"

#include <stdio.h>
#include <string.h>

static void b64(const char *in, char *out)
{
	static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t n = strlen(in), o = 0;

	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned char)in[i] << 16 | (i + 1 < n ? (unsigned char)in[i + 1] << 8 : 0) |
			     (i + 2 < n ? (unsigned char)in[i + 2] : 0);

		out[o++] = a[v >> 18 & 63];
		out[o++] = a[v >> 12 & 63];
		out[o++] = i + 1 < n ? a[v >> 6 & 63] : '=';
		out[o++] = i + 2 < n ? a[v & 63] : '=';
	}
	out[o] = '\0';
}

static int line_key = 5;

/* A HAProxy line of tenant 1, key line_key, model 1 creating (ok=) kind rid with answer
 * json. */
static void line(const char *kind, const char *rid, const char *json)
{
	static int seq;
	char enc[4096], buf[8192];
	struct jr_report r;
	int n;

	if (json)
		b64(json, enc);
	else
		snprintf(enc, sizeof(enc), "%s", "-");
	n = snprintf(buf, sizeof(buf), "id=req%d st=200 v=allow acct=p.1.%d.1.0.0 ok=%s rid=%s ob=%s end=1", ++seq,
		     line_key, kind, rid, enc);
	CHECK_EQ_INT(report_parse(buf, (size_t)n, &r), 0);
	objects_on_report(&r, NULL);
}

static const struct st_object *find(enum obj_kind k, const char *id)
{
	const struct st_object *o = objects_find(state_objects(store_read_begin()), k, id, strlen(id));

	store_read_end();
	return o;
}

static void load_catalogue(void)
{
	struct state *s = state_new();
	struct st_tenant acme = { 1, "acme", ST_ACTIVE, "" };
	struct st_model m1 = { .id = 1, .name = "files-model", .backend = "be_mock" };
	struct st_model m2 = { .id = 2, .name = "batch-model", .backend = "be_mock" };

	state_put_tenant(s, &acme);
	state_put_model(s, &m1);
	state_put_model(s, &m2);
	store_replace(s);
}

static void test_files(void)
{
	const struct st_object *o;

	line("file", "file-a", "{\"id\":\"file-a\",\"object\":\"file\",\"bytes\":400,\"created_at\":1700000000,"
			       "\"purpose\":\"batch\"}");
	o = find(OBJ_FILE, "file-a");
	CHECK(o && o->tenant_id == 1 && o->model_id == 1 && o->json && o->created_at == 1700000000);
	CHECK(o && strcmp(o->purpose, "batch") == 0);
	/* An answer naming another id, or not JSON, is not kept; the owner is. */
	line("file", "file-b", "{\"id\":\"file-z\",\"object\":\"file\"}");
	o = find(OBJ_FILE, "file-b");
	CHECK(o && o->json == NULL);
	line("file", "file-c", "not json");
	o = find(OBJ_FILE, "file-c");
	CHECK(o && o->json == NULL);
	line("file", "file-d", NULL);
	o = find(OBJ_FILE, "file-d");
	CHECK(o && o->json == NULL);
}

/* The parameters of the next bill statement: batch, tenant, key, model, requests, input,
 * output, estimated. */
static void check_bill(const char *want)
{
	struct dbw_query q;
	char got[512];

	CHECK_EQ_INT(batches_next(&q), 1);
	snprintf(got, sizeof(got), "%s %s %s %s %s %s %s %s", q.params[0], q.params[1], q.params[2], q.params[3],
		 q.params[4], q.params[5], q.params[6], q.params[7]);
	CHECK_EQ_STR(got, want);
	batches_done(DBW_OK, NULL);
}

static void test_batches(void)
{
	const struct st_object *o;

	batches_configure(4, 256);
	line("batch", "batch_1", "{\"id\":\"batch_1\",\"object\":\"batch\",\"status\":\"in_progress\","
				 "\"input_file_id\":\"file-a\",\"created_at\":1700000001}");
	CHECK_EQ_INT(batches_waiting(), 0);
	/* Completed, with usage and a catalogue model: billed at that model. */
	line("batch", "batch_1", "{\"id\":\"batch_1\",\"object\":\"batch\",\"status\":\"completed\","
				 "\"input_file_id\":\"file-a\",\"output_file_id\":\"file-out\",\"error_file_id\":null,"
				 "\"completed_at\":1700000100,\"request_counts\":{\"total\":3,\"completed\":3,\"failed\":0},"
				 "\"model\":\"batch-model\",\"usage\":{\"input_tokens\":120,\"output_tokens\":45}}");
	CHECK_EQ_INT(batches_waiting(), 1);
	check_bill("{batch_1} {1} {5} {2} {3} {120} {45} {f}");
	/* Seen completed by another key of the tenant: billed to the creator's key. */
	line_key = 9;
	line("batch", "batch_1", "{\"id\":\"batch_1\",\"status\":\"completed\",\"model\":\"batch-model\","
				 "\"usage\":{\"input_tokens\":120,\"output_tokens\":45}}");
	line_key = 5;
	check_bill("{batch_1} {1} {5} {2} {0} {120} {45} {f}");
	o = find(OBJ_BATCH, "batch_1");
	CHECK(o && o->key_id == 5);
	o = find(OBJ_BATCH, "batch_1");
	CHECK(o && o->json && strstr(o->json, "completed"));
	o = find(OBJ_FILE, "file-out");
	CHECK(o && o->tenant_id == 1 && o->model_id == 1 && strcmp(o->purpose, "batch_output") == 0);
	CHECK(o && o->created_at == 1700000100);
	/* Without usage, and a model the catalogue does not have: the estimate, at the owner's
	 * model: file-a's 400 bytes / 4, and 256 per completed request. */
	line("batch", "batch_2", "{\"id\":\"batch_2\",\"object\":\"batch\",\"status\":\"completed\","
				 "\"input_file_id\":\"file-a\",\"request_counts\":{\"total\":2,\"completed\":2},"
				 "\"model\":\"gpt-unknown\"}");
	check_bill("{batch_2} {1} {5} {1} {2} {100} {512} {t}");
	/* A usage that is not two integers is an estimate too; an unknown input file: 0. */
	line("batch", "batch_3", "{\"id\":\"batch_3\",\"status\":\"completed\",\"input_file_id\":\"file-x\","
				 "\"request_counts\":{\"completed\":1},\"usage\":{\"input_tokens\":1.5}}");
	check_bill("{batch_3} {1} {5} {1} {1} {0} {256} {t}");
	/* Failed or cancelled: no bill, whatever the answer says. */
	line("batch", "batch_4", "{\"id\":\"batch_4\",\"status\":\"failed\"}");
	line("batch", "batch_5", "{\"id\":\"batch_5\",\"status\":\"cancelled\",\"usage\":{\"input_tokens\":1,"
				 "\"output_tokens\":1}}");
	CHECK_EQ_INT(batches_waiting(), 0);
	/* Every completed sighting queues a bill (PostgreSQL keeps the first); a lost
	 * connection sends it again. */
	line("batch", "batch_1", "{\"id\":\"batch_1\",\"status\":\"completed\",\"model\":\"batch-model\","
				 "\"usage\":{\"input_tokens\":120,\"output_tokens\":45}}");
	{
		struct dbw_query q;

		CHECK_EQ_INT(batches_next(&q), 1);
		batches_done(DBW_LOST, NULL);
		CHECK_EQ_INT(batches_waiting(), 1);
	}
	check_bill("{batch_1} {1} {5} {2} {0} {120} {45} {f}");
	CHECK_EQ_INT(batches_waiting(), 0);
}

/* What the charge callback was handed. */
static struct batch_charge charged[4];
static int ncharged;

static void on_charge(const struct batch_charge *c)
{
	if (ncharged < 4)
		charged[ncharged] = *c;
	ncharged++;
}

static void completed(const char *id)
{
	char json[256];

	snprintf(json, sizeof(json), "{\"id\":\"%s\",\"status\":\"completed\",\"model\":\"batch-model\","
		 "\"usage\":{\"input_tokens\":120,\"output_tokens\":45}}", id);
	line("batch", id, json);
}

/* Only the batches the bill added (its result rows) are charged, and only when the
 * statement succeeded: a lost or refused statement charges nothing. */
static void test_batch_charges(void)
{
	static const char *const row[] = { "1", "5", "2", "165", "82500" };
	static const char *const bad[] = { "1", "5", "x", "165", "82500" };
	struct dbw_query q;

	batches_set_charge(on_charge);
	completed("batch_c1");
	completed("batch_c2");
	CHECK_EQ_INT(batches_next(&q), 1);
	batches_row(5, row);
	batches_row(5, bad);      /* not an integer: skipped */
	batches_row(4, row);      /* not the statement's shape: skipped */
	batches_done(DBW_OK, NULL); /* batch_c2 was billed before (by another agent) */
	CHECK_EQ_INT(ncharged, 1);
	CHECK(charged[0].tenant_id == 1 && charged[0].key_id == 5 && charged[0].model_id == 2);
	CHECK(charged[0].tokens == 165 && charged[0].cost_micro == 82500);
	/* A lost answer: sent again; the rows of the lost one charge nothing. */
	completed("batch_c3");
	CHECK_EQ_INT(batches_next(&q), 1);
	batches_row(5, row);
	batches_done(DBW_LOST, NULL);
	CHECK_EQ_INT(ncharged, 1);
	CHECK_EQ_INT(batches_next(&q), 1);
	batches_done(DBW_OK, NULL); /* billed by the lost statement: no row now */
	CHECK_EQ_INT(ncharged, 1);
	/* Refused: nothing billed, nothing charged. */
	completed("batch_c4");
	CHECK_EQ_INT(batches_next(&q), 1);
	batches_row(5, row);
	batches_done(DBW_ERROR, "refused");
	CHECK_EQ_INT(ncharged, 1);
	/* No more rows than bills sent. */
	completed("batch_c5");
	CHECK_EQ_INT(batches_next(&q), 1);
	batches_row(5, row);
	batches_row(5, row);
	batches_done(DBW_OK, NULL);
	CHECK_EQ_INT(ncharged, 2);
	CHECK_EQ_INT(batches_waiting(), 0);
	batches_set_charge(NULL);
}

int main(void)
{
	store_init();
	load_catalogue();
	CHECK_EQ_INT(objects_start(NULL, NULL, 1000), 0);
	RUN(test_files);
	RUN(test_batches);
	RUN(test_batch_charges);
	objects_stop();
	store_destroy();
	TEST_END();
}
