#include "metrics/metrics.h"

#include "util/xalloc.h"

#include <event2/buffer.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct metrics_shard *registry;

/* Seconds: 5 µs .. 100 ms, the range where an in-memory decision lives. */
static const double bucket_le[METRICS_NBUCKETS] = {
	0.000005, 0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005,
	0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
};

static const struct {
	const char *name;
	const char *help;
} counter_info[MC__COUNT] = {
	[MC_CONN_ACCEPTED] = { "spop_connections_accepted_total", "SPOP connections accepted" },
	[MC_CONN_REFUSED] = { "spop_connections_refused_total", "SPOP connections refused at max_connections" },
	[MC_CONN_CLOSED] = { "spop_connections_closed_total", "SPOP connections closed" },
	[MC_FRAMES_IN] = { "spop_frames_received_total", "SPOP frames received" },
	[MC_FRAMES_OUT] = { "spop_frames_sent_total", "SPOP frames sent" },
	[MC_HELLO] = { "spop_hellos_total", "HAPROXY-HELLO handshakes completed" },
	[MC_HEALTHCHECK] = { "spop_healthchecks_total", "Health-check HELLOs answered" },
	[MC_NOTIFY] = { "spop_notifies_total", "NOTIFY frames received" },
	[MC_NOTIFY_ABORTED] = { "spop_notifies_aborted_total", "NOTIFY frames with the ABORT flag (ignored)" },
	[MC_DISCONNECT_IN] = { "spop_disconnects_received_total", "HAPROXY-DISCONNECT frames received" },
	[MC_DISCONNECT_OUT] = { "spop_disconnects_sent_total", "AGENT-DISCONNECT frames sent" },
	[MC_PROTOCOL_ERRORS] = { "spop_protocol_errors_total", "Connections closed for a protocol error" },
	[MC_HELLO_TIMEOUTS] = { "spop_hello_timeouts_total", "Connections closed waiting for HELLO" },
	[MC_IDLE_TIMEOUTS] = { "spop_idle_timeouts_total", "Connections closed when idle" },
	[MC_READ_PAUSES] = { "spop_read_pauses_total", "Times reading paused at max_inflight_per_conn" },
};

struct metrics_shard *metrics_shard_new(void)
{
	struct metrics_shard *s = xcalloc(1, sizeof(*s));

	pthread_mutex_lock(&registry_lock);
	s->next = registry;
	registry = s;
	pthread_mutex_unlock(&registry_lock);
	return s;
}

static struct {
	metrics_render_fn fn;
	void *arg;
} renderers[METRICS_MAX_RENDERERS];
static size_t nrenderers;

void metrics_free_all(void)
{
	nrenderers = 0;
	pthread_mutex_lock(&registry_lock);
	while (registry) {
		struct metrics_shard *n = registry->next;
		free(registry);
		registry = n;
	}
	pthread_mutex_unlock(&registry_lock);
}

void metrics_observe_decision(struct metrics_shard *s, int allow, enum pl_reason reason,
			      uint64_t elapsed_ns)
{
	double sec = (double)elapsed_ns / 1e9;
	int b = 0;

	while (b < METRICS_NBUCKETS && sec > bucket_le[b])
		b++;
	atomic_fetch_add_explicit(&s->buckets[b], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&s->latency_sum_ns, elapsed_ns, memory_order_relaxed);
	atomic_fetch_add_explicit(&s->decisions[allow ? 1 : 0][reason], 1, memory_order_relaxed);
}

/* Sums one field across shards; the caller holds registry_lock. */
#define SUM(expr)                                                                      \
	({                                                                             \
		uint64_t _t = 0;                                                       \
		for (struct metrics_shard *_s = registry; _s; _s = _s->next)           \
			_t += atomic_load_explicit(&_s->expr, memory_order_relaxed);   \
		_t;                                                                    \
	})

static void render_counters(struct evbuffer *out)
{
	for (int c = 0; c < MC__COUNT; c++)
		evbuffer_add_printf(out, "# HELP jairouter_%s %s.\n# TYPE jairouter_%s counter\njairouter_%s %" PRIu64 "\n",
				    counter_info[c].name, counter_info[c].help, counter_info[c].name,
				    counter_info[c].name, SUM(counters[c]));
}

static void render_decisions(struct evbuffer *out)
{
	evbuffer_add_printf(out, "# HELP jairouter_decisions_total Decisions by outcome and reason.\n"
				 "# TYPE jairouter_decisions_total counter\n");
	for (int allow = 0; allow < 2; allow++)
		for (int r = 0; r < PL_R__COUNT; r++) {
			uint64_t n = SUM(decisions[allow][r]);
			/* Always print the common series so dashboards see zeros, skip the rest. */
			if (n || r == PL_R_OK || r == PL_R_INVALID_KEY)
				evbuffer_add_printf(out, "jairouter_decisions_total{outcome=\"%s\",reason=\"%s\"} %" PRIu64 "\n",
						    allow ? "allow" : "deny", pl_reason_name((enum pl_reason)r), n);
		}
}

static void render_latency(struct evbuffer *out)
{
	uint64_t cum = 0;

	evbuffer_add_printf(out, "# HELP jairouter_decision_duration_seconds Time from NOTIFY decoded to ACK encoded.\n"
				 "# TYPE jairouter_decision_duration_seconds histogram\n");
	for (int b = 0; b < METRICS_NBUCKETS; b++) {
		cum += SUM(buckets[b]);
		evbuffer_add_printf(out, "jairouter_decision_duration_seconds_bucket{le=\"%g\"} %" PRIu64 "\n",
				    bucket_le[b], cum);
	}
	cum += SUM(buckets[METRICS_NBUCKETS]);
	evbuffer_add_printf(out, "jairouter_decision_duration_seconds_bucket{le=\"+Inf\"} %" PRIu64 "\n"
				 "jairouter_decision_duration_seconds_sum %.9f\n"
				 "jairouter_decision_duration_seconds_count %" PRIu64 "\n",
			    cum, (double)SUM(latency_sum_ns) / 1e9, cum);
}

static void gauge(struct evbuffer *out, const char *name, const char *help, double v)
{
	evbuffer_add_printf(out, "# HELP jairouter_%s %s.\n# TYPE jairouter_%s gauge\njairouter_%s %.17g\n",
			    name, help, name, name, v);
}

static void render_gauges(struct evbuffer *out, const struct metrics_gauges *g)
{
	static const char *const db[] = { "connecting", "up", "down" };

	gauge(out, "ready", "1 when the catalogue has been loaded", g->ready);
	gauge(out, "draining", "1 while shutting down", g->draining);
	gauge(out, "spop_connections", "Open SPOP connections", (double)g->connections);
	gauge(out, "workers", "Worker threads", g->workers);
	gauge(out, "state_tenants", "Tenants in memory", (double)g->tenants);
	gauge(out, "state_api_keys", "API keys in memory", (double)g->keys);
	gauge(out, "state_models", "Models in memory", (double)g->models);
	evbuffer_add_printf(out, "# HELP jairouter_database_up 1 when the PostgreSQL connection is up.\n"
				 "# TYPE jairouter_database_up gauge\njairouter_database_up %d\n",
			    g->db_status == 1);
	evbuffer_add_printf(out, "# HELP jairouter_database_status Connection state (label).\n"
				 "# TYPE jairouter_database_status gauge\n");
	for (int i = 0; i < 3; i++)
		evbuffer_add_printf(out, "jairouter_database_status{state=\"%s\"} %d\n", db[i], g->db_status == i);
	gauge(out, "database_last_load_timestamp_seconds", "End of the last full catalogue load", (double)g->db_last_load_unix);
	evbuffer_add_printf(out, "# HELP jairouter_database_full_loads_total Full catalogue loads.\n"
				 "# TYPE jairouter_database_full_loads_total counter\njairouter_database_full_loads_total %" PRIu64 "\n"
				 "# HELP jairouter_database_notifications_total Change notifications received.\n"
				 "# TYPE jairouter_database_notifications_total counter\njairouter_database_notifications_total %" PRIu64 "\n"
				 "# HELP jairouter_database_errors_total Failed connections and queries.\n"
				 "# TYPE jairouter_database_errors_total counter\njairouter_database_errors_total %" PRIu64 "\n",
			    g->db_full_loads, g->db_notifications, g->db_errors);
}

int metrics_add_renderer(metrics_render_fn fn, void *arg)
{
	if (nrenderers == METRICS_MAX_RENDERERS)
		return -1;
	renderers[nrenderers].fn = fn;
	renderers[nrenderers].arg = arg;
	nrenderers++;
	return 0;
}

void metrics_render(struct evbuffer *out, const struct metrics_gauges *g)
{
	pthread_mutex_lock(&registry_lock);
	render_counters(out);
	render_decisions(out);
	render_latency(out);
	pthread_mutex_unlock(&registry_lock);
	render_gauges(out, g);
	for (size_t i = 0; i < nrenderers; i++)
		renderers[i].fn(out, renderers[i].arg);
}
