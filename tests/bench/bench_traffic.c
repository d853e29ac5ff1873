/*
 * bench_traffic: the cost of the per-tenant series (metrics/traffic.h) on the agent's
 * control thread: one HAProxy end-of-request line counted, one settlement, and one
 * scrape (its time and size) at the default caps fully used (100 tenants x 50 models,
 * 5,000 series per family). Single thread, release build.
 *
 *   make bench && build/release/bench/bench_traffic
 */
#include "metrics/traffic.h"
#include "report/report.h"

#include <event2/buffer.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

int main(void)
{
	enum { NT = 100, NM = 50, N = 1000000 };
	static struct jr_report reps[NT];
	static char lines[NT][256];
	char tenant[32], model[32];
	double t0, t1;
	struct evbuffer *b;

	traffic_configure(NT, NM);
	for (int i = 0; i < NT; i++) {
		snprintf(lines[i], sizeof(lines[i]),
			 "id=r%d tr=%d ta=%d st=200 tsc=---- v=allow tenant=tenant-%d key=jr-0123abcd model=model-%d end=1",
			 i, 10 + i, 100 + i, i, i % NM);
		report_parse(lines[i], strlen(lines[i]), &reps[i]);
	}
	/* Every (tenant, model) pair gets its series first: the scrape is at its largest. */
	for (int t = 0; t < NT; t++)
		for (int m = 0; m < NM; m++) {
			snprintf(tenant, sizeof(tenant), "tenant-%d", t);
			snprintf(model, sizeof(model), "model-%d", m);
			traffic_settled(tenant, model, 10, 20, 30, m & 1, 0);
		}
	t0 = now_ns();
	for (int i = 0; i < N; i++)
		traffic_on_report(&reps[i % NT], NULL);
	t1 = now_ns();
	printf("report line counted: %.0f ns\n", (t1 - t0) / N);
	t0 = now_ns();
	for (int i = 0; i < N; i++)
		traffic_settled("tenant-99", "model-49", 10, 20, 30, 0, 0);
	t1 = now_ns();
	printf("settlement counted:  %.0f ns\n", (t1 - t0) / N);
	b = evbuffer_new();
	t0 = now_ns();
	traffic_render_metrics(b, NULL);
	t1 = now_ns();
	printf("scrape at 100 tenants x 50 models: %.1f ms, %zu bytes\n", (t1 - t0) / 1e6,
	       evbuffer_get_length(b));
	evbuffer_free(b);
	traffic_reset();
	return 0;
}
