/*
 * bench_objects: what the owners of stored responses (state/objects.h) cost each agent:
 * the memory of 1,000,000 owners (resident set growth, as loaded from PostgreSQL) and
 * the time of one lookup, the pipeline's check on every retrieve. Single thread,
 * release build.
 *
 *   make bench && build/release/bench/bench_objects
 */
#include "state/objects.h"
#include "state/state.h"

#include <stdio.h>
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

int main(void)
{
	enum { N = 1000000, LOOKUPS = 2000000 };
	struct state *s = state_new();
	struct objects *o = state_objects(s);
	struct st_object e = { 0, OBJ_RESPONSE, "", 1, 1 };
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
	state_free(s);
	return 0;
}
