/*
 * bench_objects: what the owners of stored responses (state/objects.h) cost each agent:
 * the memory of 1,000,000 owners (resident set growth, as loaded from PostgreSQL) and
 * the time of one lookup, the pipeline's check on every retrieve; with files (sql/016)
 * the memory of a file owner with its JSON, and the pass over one tenant's files that a
 * GET /v1/files or GET /v1/batches answered by the agent makes (pipeline/files.c).
 * Single thread, release build.
 *
 *   make bench && build/release/bench/bench_objects
 */
#include "state/objects.h"
#include "state/state.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static long rss_kib(void)
{
	long pages = 0, rss = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (f && fscanf(f, "%ld %ld", &pages, &rss) != 2)
		rss = 0;
	if (f)
		fclose(f);
	return rss * (sysconf(_SC_PAGESIZE) / 1024);
}

struct tally {
	int64_t tenant;
	size_t n;
};

static void count_files(const struct st_object *obj, void *arg)
{
	struct tally *t = arg;

	if (obj->tenant_id == t->tenant && obj->kind == OBJ_FILE)
		t->n++;
}

/* 100,000 files (100 per tenant of 1,000) with OpenAI-shaped JSON, next to the owners
 * already there; then the list's pass over one tenant's files. */
static void bench_files(struct objects *o)
{
	enum { FILES = 100000, PASSES = 20 };
	struct st_object f = { 0, OBJ_FILE, "", 1, 1, NULL, 0, "", 0, 0 };
	struct tally t = { 1, 0 };
	long before = rss_kib(), after;
	char json[512];
	double t0, t1;

	for (int i = 0; i < FILES; i++) {
		int n;

		f.id = 2000000 + i;
		f.tenant_id = i % 1000 + 1;
		snprintf(f.object_id, sizeof(f.object_id), "file-%022x", i);
		n = snprintf(json, sizeof(json), "{\"id\":\"%s\",\"object\":\"file\",\"bytes\":120000,"
			     "\"created_at\":%d,\"expires_at\":null,\"filename\":\"mydata-%d.jsonl\","
			     "\"purpose\":\"batch\",\"status\":\"processed\",\"status_details\":null}",
			     f.object_id, 1700000000 + i, i);
		if (obj_set_json(&f, json, (size_t)n) < 0)
			return;
		objects_put(o, &f);
		free(f.json);
	}
	after = rss_kib();
	t0 = now_ns();
	for (int i = 0; i < PASSES; i++)
		objects_each_of_tenant(o, 1, count_files, &t);
	t1 = now_ns();
	printf("files: %d with their JSON (~240 bytes), resident set +%ld KiB (%.0f bytes each)\n", FILES,
	       after - before, (after - before) * 1024.0 / FILES);
	printf("a tenant's files among %zu owners: %.2f us per pass (%zu files)\n", objects_count(o),
	       (t1 - t0) / PASSES / 1e3, t.n / PASSES);
}

int main(void)
{
	enum { N = 1000000, LOOKUPS = 2000000 };
	struct state *s = state_new();
	struct objects *o = state_objects(s);
	struct st_object e = { 0, OBJ_RESPONSE, "", 1, 1, NULL, 0, "", 0, 0 };
	long before = rss_kib(), after;
	char id[OBJ_ID_MAX];
	double t0, t1;
	size_t hits = 0;

	for (int i = 0; i < N; i++) {
		e.id = i + 1;
		e.tenant_id = i % 1000 + 1;
		/* OpenAI's ids: "resp_" and 48 hexadecimal characters. */
		snprintf(e.object_id, sizeof(e.object_id), "resp_%048x", i);
		objects_put(o, &e);
	}
	after = rss_kib();
	t0 = now_ns();
	for (int i = 0; i < LOOKUPS; i++) {
		int n = snprintf(id, sizeof(id), "resp_%048x", (int)(((long long)i * 7919) % N));
		hits += objects_find(o, OBJ_RESPONSE, id, (size_t)n) != NULL;
	}
	t1 = now_ns();
	printf("owners: %d, resident set +%ld KiB (%.0f bytes each)\n", N, after - before,
	       (after - before) * 1024.0 / N);
	printf("lookup: %.0f ns each (%zu of %d found)\n", (t1 - t0) / LOOKUPS, hits, LOOKUPS);
	bench_files(o);
	state_free(s);
	return 0;
}
