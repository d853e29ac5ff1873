/*
 * jairouter-spoa: the JAiRouter decision agent. HAProxy asks it, over SPOP, who is
 * calling and where each request goes; it answers from an in-memory copy of the
 * PostgreSQL catalogue.
 *
 * main() only wires the modules together: configuration, the catalogue store and its
 * PostgreSQL synchroniser, the SPOP server, the admin HTTP endpoint, and signals
 * (SIGTERM/SIGINT drain and exit, SIGHUP reloads the configuration file).
 */
#include "accesslog/accesslog.h"
#include "admin/admin.h"
#include "api/api.h"
#include "config/config.h"
#include "objects/batches.h"
#include "pipeline/limits.h"
#include "cred/cred.h"
#include "lb/lb.h"
#include "metrics/metrics.h"
#include "metrics/traffic.h"
#include "abuse/abuse.h"
#include "audit/audit.h"
#include "oidc/oidc.h"
#include "audit/identity_metrics.h"
#include "net/server.h"
#include "pg/pgsync.h"
#include "redis/fleet.h"
#include "pipeline/pipeline.h"
#include "report/report.h"
#include "state/state.h"
#include "trace/trace.h"
#include "usage/usage.h"
#include "objects/objects.h"
#include "util/log.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define JR_VERSION "0.1.0"
#define STATUS_TICK_MS 100

struct app {
	const char *config_path;
	struct jr_config cfg;
	struct event_base *base;
	struct server *server;
	struct pgsync *pg;
	struct admin *admin;
	struct api *api; /* the administration API, on its own thread */
	struct report_listener *report;
	struct event *sig_term, *sig_int, *sig_hup, *status_tick;
	struct event *handover_tick;
	int draining;
	int handed_over;    /* the report stream was handed to the next process */
	int listen_deferred; /* the SPOP listener waits for the catalogue (a restart) */
	int64_t drain_deadline_ms, handover_deadline_ms; /* monotonic */
};

#define HANDOVER_TICK_MS 20
/* After the half-close, HAProxy closes its ring connection at once; bounded anyway. */
#define HANDOVER_CLOSE_MS 2000

static void usage(FILE *f)
{
	fprintf(f, "usage: jairouter-spoa [-t] -c FILE\n"
		   "  -c FILE  configuration file (see docs/design.md)\n"
		   "  -t       check the configuration file and exit\n"
		   "  -V       print the version and exit\n"
		   "       jairouter-spoa --seal|--reseal ...  (provider credentials; --seal -h)\n");
}

static void pg_opts(const struct jr_config *cfg, struct pgsync_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->conninfo = cfg->database;
	o->resync_interval_ms = cfg->resync_interval_ms;
}

static void gauges(struct metrics_gauges *g, void *arg)
{
	struct app *app = arg;
	struct pgsync_stats ps;
	const struct state *s;

	pgsync_stats(app->pg, &ps);
	g->ready = store_ready();
	g->db_status = (int)ps.status;
	g->db_full_loads = ps.full_loads;
	g->db_notifications = ps.notifications;
	g->db_errors = ps.errors;
	g->db_last_load_unix = ps.last_load_unix;
	s = store_read_begin();
	g->tenants = state_count_tenants(s);
	g->keys = state_count_keys(s);
	g->models = state_count_models(s);
	store_read_end();
	g->connections = server_connections(app->server);
	g->workers = server_workers(app->server);
	g->draining = app->draining;
	g->limits = limits_mode();
}

/* systemd's readiness protocol (Type=notify): one datagram to $NOTIFY_SOCKET, when set.
 * "READY=1" once the SPOP listener is bound, so that `systemctl start` of a new process
 * returns when it takes connections (docs/operations.md, "Restarts and upgrades"). */
static void notify_systemd(const char *state)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sun;
	socklen_t len;
	int fd;

	if (!path || (path[0] != '/' && path[0] != '@') || strlen(path) >= sizeof(sun.sun_path))
		return;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, path, strlen(path));
	if (path[0] == '@')
		sun.sun_path[0] = '\0'; /* abstract namespace */
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path));
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	if (sendto(fd, state, strlen(state), 0, (struct sockaddr *)&sun, len) < 0)
		log_event(LOG_WARN, "systemd_notify_failed",
			  LOG_FIELDS(LOG_S("error", strerror(errno))),
			  "systemd notification failed: %s", strerror(errno));
	close(fd);
}

/* Once the catalogue and this month's usage are loaded: the listeners bound late. The
 * report listener always waits for it (a line billed before the catalogue is known
 * would miss its prices); the SPOP listener waits when another process of this agent
 * serves the address (a restart: HAProxy's new connections would otherwise reach a
 * process that can only answer 503 gateway_not_ready). A bind failure here ends the
 * process, as it would at start. */
static void listen_when_ready(struct app *app)
{
	char err[512];

	if (app->listen_deferred) {
		if (server_listen(app->server, app->cfg.listen, err, sizeof(err)) < 0)
			goto fail;
		app->listen_deferred = 0;
		notify_systemd("READY=1\nSTATUS=serving");
	}
	if (app->cfg.report_listen[0] && !app->report) {
		app->report = report_listen(app->base, app->cfg.report_listen, err, sizeof(err));
		if (!app->report)
			goto fail;
		log_event(LOG_INFO, "report_listening",
			  LOG_FIELDS(LOG_S("addr", app->cfg.report_listen)),
			  "end-of-request reports on %s", app->cfg.report_listen);
	}
	return;
fail:
	log_event(LOG_ERROR, "report_listen_failed", LOG_FIELDS(LOG_S("error", err)),
		  "%s", err);
	event_base_loopexit(app->base, NULL);
}

/* Publishes the database state to the workers (they answer 503 instead of 401 for an
 * unknown key while it is down). */
static void status_tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct app *app = arg;
	struct pgsync_stats ps;
	int online;

	(void)fd;
	(void)what;
	pgsync_stats(app->pg, &ps);
	online = ps.status == PGSYNC_UP;
	if (online != store_db_online()) {
		if (online)
			log_event(LOG_INFO, "database_up", LOG_NO_FIELDS, "database is up");
		else
			log_event(LOG_WARN, "database_down", LOG_NO_FIELDS,
				  "database is unreachable: serving from the in-memory catalogue");
	}
	store_set_db_online(online);
	if (!app->draining && store_ready() && limits_ready())
		listen_when_ready(app);
}

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* After the SPOP connections: the report lines of requests still in flight come on the
 * ring connection this process holds. It is kept until none is awaited (or the drain
 * deadline), then half-closed; HAProxy reconnects to the next process, which bills what
 * is left from the lines themselves (pipeline/limits.h, limits_acct). */
static void handover_tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct app *app = arg;
	int64_t now = mono_ms();

	(void)fd;
	(void)what;
	if (!app->handed_over) {
		if (limits_reservations() > 0 && now < app->drain_deadline_ms)
			return;
		app->handed_over = 1;
		app->handover_deadline_ms = now + HANDOVER_CLOSE_MS;
		log_event(LOG_INFO, "report_handover",
			  LOG_FIELDS(LOG_I("inflight", limits_reservations())),
			  "handing the report stream over (%zu request(s) still in flight)",
			  limits_reservations());
		report_listener_handover(app->report);
	}
	if (report_listener_streams(app->report) > 0 && now < app->handover_deadline_ms)
		return;
	event_del(app->handover_tick);
	event_base_loopexit(app->base, NULL);
}

static void drained(void *arg)
{
	struct app *app = arg;
	struct timeval tv = { 0, HANDOVER_TICK_MS * 1000 };

	log_event(LOG_INFO, "drain_done", LOG_NO_FIELDS,
		  "drained: all connections closed");
	if (!app->report) {
		event_base_loopexit(app->base, NULL);
		return;
	}
	app->handover_tick = event_new(app->base, -1, EV_PERSIST, handover_tick_cb, app);
	event_add(app->handover_tick, &tv);
}

static void on_terminate(evutil_socket_t sig, short what, void *arg)
{
	struct app *app = arg;

	(void)what;
	if (app->draining) {
		log_event(LOG_WARN, "drain_aborted", LOG_FIELDS(LOG_I("signal", sig)),
			  "second signal %d: exiting now", (int)sig);
		event_base_loopexit(app->base, NULL);
		return;
	}
	app->draining = 1;
	notify_systemd("STOPPING=1");
	app->drain_deadline_ms = mono_ms() + app->cfg.drain_timeout_ms;
	log_event(LOG_INFO, "drain_started",
		  LOG_FIELDS(LOG_I("signal", sig), LOG_I("deadline_ms", app->cfg.drain_timeout_ms)),
		  "signal %d: draining (deadline %u ms)", (int)sig, app->cfg.drain_timeout_ms);
	admin_stop(app->admin); /* the next process answers health checks and scrapes */
	app->admin = NULL;
	report_listener_drain(app->report);
	server_drain(app->server, app->cfg.drain_timeout_ms, drained, app);
}

/* Loads master_key_file (when set) into the process keyring. The keyring is replaced
 * only by a file that loads completely. */
static int load_master_keys(const struct jr_config *cfg, int install)
{
	struct cred_keyring *kr;
	char err[512];

	if (!cfg->master_key_file[0]) {
		if (install)
			cred_global_set(NULL);
		return 0;
	}
	if (!(kr = cred_keyring_load(cfg->master_key_file, err, sizeof(err)))) {
		log_event(LOG_ERROR, "master_keys_load_failed", LOG_FIELDS(LOG_S("error", err)),
			  "%s", err);
		return -1;
	}
	if (!install) {
		cred_keyring_free(kr);
		return 0;
	}
	log_event(LOG_INFO, "master_keys_loaded",
		  LOG_FIELDS(LOG_I("keys", cred_keyring_count(kr)),
			     LOG_S("path", cfg->master_key_file)),
		  "master keys: %zu loaded from %s", cred_keyring_count(kr), cfg->master_key_file);
	cred_global_set(kr);
	return 0;
}

static void configure_abuse(const struct jr_config *c)
{
	struct abuse_config a = { c->abuse_max_failures, c->abuse_slow_after, c->abuse_window_s,
				  c->abuse_block_s };

	abuse_configure(&a);
}

/* Routing (lb/lb.h): HAProxy's stats socket. */
static void lb_options(const struct jr_config *cfg, struct lb_opts *o)
{
	o->stats_socket = cfg->haproxy_stats_socket;
	o->poll_ms = cfg->lb_poll_ms;
}

static void on_reload(evutil_socket_t sig, short what, void *arg)
{
	struct app *app = arg;
	struct jr_config fresh;
	struct pgsync_opts po;
	struct lb_opts lo;
	char err[512], restart[256];

	alog_reopen(); /* a rotated access log file */

	(void)sig;
	(void)what;
	if (config_load(app->config_path, &fresh, err, sizeof(err)) < 0) {
		log_event(LOG_ERROR, "config_reload_failed", LOG_FIELDS(LOG_S("error", err)),
			  "reload failed, keeping the current configuration: %s", err);
		return;
	}
	if (load_master_keys(&fresh, 0) < 0) {
		log_event(LOG_ERROR, "config_reload_failed", LOG_NO_FIELDS,
			  "reload failed, keeping the current configuration and master keys");
		return;
	}
	config_restart_diff(&app->cfg, &fresh, restart, sizeof(restart));
	if (restart[0])
		log_event(LOG_WARN, "config_reload_restart_needed",
			  LOG_FIELDS(LOG_S("settings", restart)),
			  "reload: changes to %s apply at the next restart", restart);
	/* Keep the restart-only settings as they run now. */
	memcpy(fresh.listen, app->cfg.listen, sizeof(fresh.listen));
	memcpy(fresh.metrics_listen, app->cfg.metrics_listen, sizeof(fresh.metrics_listen));
	memcpy(fresh.admin_api_listen, app->cfg.admin_api_listen, sizeof(fresh.admin_api_listen));
	memcpy(fresh.agent_id, app->cfg.agent_id, sizeof(fresh.agent_id));
	fresh.workers = app->cfg.workers;
	app->cfg = fresh;
	log_set_level((enum log_level)fresh.log_level);
	configure_abuse(&fresh);
	api_set_rate(app->api, fresh.admin_api_rate);
	api_set_master_keys(app->api, fresh.master_key_file);
	server_reconfigure(app->server, &fresh);
	limits_configure(&fresh);
	pl_files_configure(&fresh);
	batches_configure(fresh.limits_bytes_per_token, fresh.limits_default_max_tokens);
	pg_opts(&app->cfg, &po);
	pgsync_reconfigure(app->pg, &po);
	lb_options(&app->cfg, &lo);
	if (lb_reconfigure(&lo, err, sizeof(err)) < 0)
		log_event(LOG_ERROR, "routing_reload_failed", LOG_FIELDS(LOG_S("error", err)),
			  "reload: %s (routing keeps its previous stats socket)", err);
	load_master_keys(&fresh, 1);
	pgsync_reload(app->pg); /* open the provider credentials with the keys as they are now */
	log_event(LOG_INFO, "config_reloaded", LOG_FIELDS(LOG_S("path", app->config_path)),
		  "configuration reloaded from %s", app->config_path);
}

static int parse_args(int argc, char **argv, struct app *app, int *check_only)
{
	int opt;

	while ((opt = getopt(argc, argv, "c:tVh")) != -1) {
		switch (opt) {
		case 'c': app->config_path = optarg; break;
		case 't': *check_only = 1; break;
		case 'V': printf("jairouter-spoa %s\n", JR_VERSION); exit(0);
		case 'h': usage(stdout); exit(0);
		default: usage(stderr); return -1;
		}
	}
	if (!app->config_path) {
		usage(stderr);
		return -1;
	}
	return 0;
}

/* Owners of stored API objects (objects/objects.h): recorded from report lines. */
static int start_objects(struct app *app)
{
	if (objects_start(app->base, app->cfg.database, app->cfg.usage_flush_ms) < 0 ||
	    report_subscribe(objects_on_report, NULL) < 0)
		return -1;
	metrics_add_renderer(objects_render_metrics, NULL);
	return 0;
}

/* Refusals and settled usage per tenant and model on /metrics (metrics/traffic.h). */
static const struct limits_observer traffic_observer = { traffic_refused, traffic_settled, traffic_seed };

/* HAProxy's line and the settled usage, as the access log writes them. */
static void access_ended(const struct jr_report *rep, const struct limits_ended *e)
{
	struct alog_usage u = { e->billed, e->prompt_tokens, e->completion_tokens, e->cost_micro,
				e->estimated, e->end_user, e->issuer };

	alog_request(rep, &u);
}

/* The access log (access_log = PATH, "-" or "stderr"; off when empty). */
static int start_access_log(const struct jr_config *cfg)
{
	char err[600];

	if (!cfg->access_log[0])
		return 0;
	if (alog_open(cfg->access_log, (size_t)cfg->access_log_max_kb * 1024, err, sizeof(err)) < 0) {
		log_event(LOG_ERROR, "access_log_open_failed", LOG_FIELDS(LOG_S("error", err)),
			  "%s", err);
		return -1;
	}
	limits_set_ended(access_ended);
	metrics_add_renderer(alog_render_metrics, NULL);
	return 0;
}

/* The report listener's counters on /metrics (report/report.h). */
static void render_report(struct evbuffer *out, void *arg)
{
	struct app *app = arg;
	struct report_stats st;

	report_listener_stats(app->report, &st);
	evbuffer_add_printf(out,
			    "# HELP jairouter_report_lines_total End-of-request lines received (HAProxy and adapter).\n"
			    "# TYPE jairouter_report_lines_total counter\njairouter_report_lines_total %" PRIu64 "\n"
			    "# HELP jairouter_report_malformed_total Datagrams without a request id, ignored.\n"
			    "# TYPE jairouter_report_malformed_total counter\njairouter_report_malformed_total %" PRIu64 "\n"
			    "# HELP jairouter_report_truncated_total Lines cut short (raise the log length in haproxy.cfg).\n"
			    "# TYPE jairouter_report_truncated_total counter\njairouter_report_truncated_total %" PRIu64 "\n"
			    "# HELP jairouter_report_dropped_total Lines lost in the receive queue (kernel count).\n"
			    "# TYPE jairouter_report_dropped_total counter\njairouter_report_dropped_total %" PRIu64 "\n"
			    "# HELP jairouter_report_foreign_total Lines of requests another agent decided (ignored).\n"
			    "# TYPE jairouter_report_foreign_total counter\njairouter_report_foreign_total %" PRIu64 "\n"
			    "# HELP jairouter_report_forwarded_total Lines sent on to the next process during a restart.\n"
			    "# TYPE jairouter_report_forwarded_total counter\njairouter_report_forwarded_total %" PRIu64 "\n"
			    "# HELP jairouter_report_forward_failed_total Lines for the next process that could not be sent.\n"
			    "# TYPE jairouter_report_forward_failed_total counter\njairouter_report_forward_failed_total %" PRIu64 "\n",
			    st.lines, st.malformed, st.truncated, st.dropped, st.foreign, st.forwarded,
			    st.forward_failed);
}

static struct event *add_signal(struct app *app, int sig, event_callback_fn fn)
{
	struct event *ev = evsignal_new(app->base, sig, fn, app);

	event_add(ev, NULL);
	return ev;
}

/* What each worker frees as it exits: the limits' Redis connection, the stages' caches. */
static const struct server_exit_hooks *worker_exit_hooks(void)
{
	static struct server_exit_hooks hooks;

	hooks.n = 0;
	server_exit_hooks_add(&hooks, limits_worker_exit, NULL);
	server_exit_hooks_add(&hooks, pl_worker_exit, NULL);
	return &hooks;
}

/* A batch billed first by this agent counts against the tenant's quotas and budgets. */
static void charge_batch(const struct batch_charge *c)
{
	limits_charge_batch(c->tenant_id, c->key_id, c->model_id, c->tokens, c->cost_micro);
}

/* Limits, usage and the access log, before the workers start (the fleet connections hook
 * into them). */
static int start_accounting(struct app *app)
{
	limits_set_remote(&fleet_remote);
	pl_files_configure(&app->cfg);
	batches_configure(app->cfg.limits_bytes_per_token, app->cfg.limits_default_max_tokens);
	batches_set_charge(charge_batch);
	traffic_configure(app->cfg.metrics_max_tenants, app->cfg.metrics_max_models);
	limits_set_observer(&traffic_observer);
	if (start_access_log(&app->cfg) < 0)
		return -1;
	if (limits_start(app->base, &app->cfg) < 0 ||
	    usage_start(app->base, app->cfg.database, app->cfg.usage_flush_ms, app->cfg.usage_max_rows) < 0) {
		log_event(LOG_ERROR, "limits_start_failed", LOG_NO_FIELDS,
			  "limits: could not start");
		return -1;
	}
	return 0;
}

/* The span exporter (trace/trace.h): its thread, its metrics, its report subscriber. */
static int start_tracing(const struct jr_config *cfg)
{
	struct trace_opts to = { cfg->trace_otlp_url, cfg->trace_service, cfg->trace_queue_max,
				 cfg->trace_batch_max, cfg->trace_flush_ms };

	if (trace_start(&to) < 0) {
		log_event(LOG_ERROR, "trace_start_failed", LOG_NO_FIELDS,
			  "trace: the exporter thread could not start");
		return -1;
	}
	metrics_add_renderer(trace_render_metrics, NULL);
	if (report_subscribe(trace_on_report, NULL) < 0) {
		log_event(LOG_ERROR, "report_subscribe_failed", LOG_NO_FIELDS,
			  "report: too many subscribers");
		return -1;
	}
	return 0;
}

/* The HTTP listeners: metrics and health on the control loop, the administration API on
 * its own thread (api/api.h). */
static int start_http(struct app *app)
{
	char err[512];

	if (app->cfg.metrics_listen[0]) {
		app->admin = admin_start(app->base, app->cfg.metrics_listen, gauges, app, err, sizeof(err));
		if (!app->admin) {
			log_event(LOG_ERROR, "metrics_listen_failed",
				  LOG_FIELDS(LOG_S("error", err)),
				  "%s", err);
			return -1;
		}
		log_event(LOG_INFO, "metrics_listening",
			  LOG_FIELDS(LOG_S("addr", app->cfg.metrics_listen)),
			  "metrics and health on http://%s/", app->cfg.metrics_listen);
	}
	if (app->cfg.admin_api_listen[0]) {
		app->api = api_start(app->cfg.admin_api_listen, app->cfg.database, app->cfg.admin_api_rate,
				     err, sizeof(err));
		if (!app->api || api_set_master_keys(app->api, app->cfg.master_key_file) < 0) {
			const char *why = app->api ? "cannot load the master keys" : err;

			log_event(LOG_ERROR, "admin_api_start_failed",
				  LOG_FIELDS(LOG_S("error", why)),
				  "%s%s", app->api ? "admin API: " : "", why);
			return -1;
		}
		metrics_add_renderer(api_render_metrics, app->api);
		log_event(LOG_INFO, "admin_api_listening",
			  LOG_FIELDS(LOG_S("addr", app->cfg.admin_api_listen)),
			  "administration API on http://%s/jairouter/admin/v1/",
			  app->cfg.admin_api_listen);
	}
	return 0;
}

static int start(struct app *app)
{
	struct lb_opts lo;
	struct pgsync_opts po;
	struct timeval tick = { 0, STATUS_TICK_MS * 1000 };
	char err[512];

	if (load_master_keys(&app->cfg, 1) < 0)
		return -1;
	store_init();
	pg_opts(&app->cfg, &po);
	app->pg = pgsync_start(app->base, &po);
	if (!app->pg) {
		log_event(LOG_ERROR, "db_settings_invalid", LOG_NO_FIELDS,
			  "database: invalid settings");
		return -1;
	}
	configure_abuse(&app->cfg);
	if (app->cfg.audit_database) {
		char node[256] = "";
		gethostname(node, sizeof(node) - 1);
		audit_start(app->base, app->cfg.database, node);
	}
	{
		struct oidc_opts oo = { app->cfg.oidc_refresh_s, app->cfg.oidc_min_refresh_s };
		if (oidc_start(app->base, &oo) < 0) {
			log_event(LOG_ERROR, "oidc_start_failed", LOG_NO_FIELDS,
				  "oidc: libcurl could not start");
			return -1;
		}
	}
	if (start_accounting(app) < 0)
		return -1;
	metrics_add_renderer(limits_render_metrics, NULL);
	metrics_add_renderer(usage_render_metrics, NULL);
	metrics_add_renderer(identity_render_metrics, NULL);
	metrics_add_renderer(traffic_render_metrics, NULL);
	if (start_tracing(&app->cfg) < 0)
		return -1;
	if (report_subscribe(traffic_on_report, NULL) < 0 || start_objects(app) < 0) {
		log_event(LOG_ERROR, "report_subscribe_failed", LOG_NO_FIELDS,
			  "report: too many subscribers, or the object owners' writer failed");
		return -1;
	}
	app->listen_deferred = server_address_in_use(app->cfg.listen);
	if (app->listen_deferred)
		log_event(LOG_INFO, "listen_deferred", LOG_FIELDS(LOG_S("addr", app->cfg.listen)),
			  "another process serves %s: listening once the catalogue is loaded",
			  app->cfg.listen);
	app->server = server_start(app->base, &app->cfg, worker_exit_hooks(),
				   !app->listen_deferred, err, sizeof(err));
	if (!app->server) {
		log_event(LOG_ERROR, "spop_listen_failed", LOG_FIELDS(LOG_S("error", err)),
			  "%s", err);
		return -1;
	}
	report_set_identity(app->cfg.agent_id, limits_process_tag());
	log_event(LOG_INFO, "agent_identity",
		  LOG_FIELDS(LOG_S("agent_id", app->cfg.agent_id), LOG_S("process", limits_process_tag())),
		  "agent id %s (process %s)", app->cfg.agent_id, limits_process_tag());
	metrics_add_renderer(render_report, app);
	lb_options(&app->cfg, &lo);
	if (lb_start(app->base, &lo, err, sizeof(err)) < 0) {
		log_event(LOG_ERROR, "routing_start_failed", LOG_FIELDS(LOG_S("error", err)),
			  "%s", err);
		return -1;
	}
	metrics_add_renderer(lb_render_metrics, NULL);
	if (start_http(app) < 0)
		return -1;
	app->sig_term = add_signal(app, SIGTERM, on_terminate);
	app->sig_int = add_signal(app, SIGINT, on_terminate);
	app->sig_hup = add_signal(app, SIGHUP, on_reload);
	app->status_tick = event_new(app->base, -1, EV_PERSIST, status_tick_cb, app);
	event_add(app->status_tick, &tick);
	return 0;
}

static void stop(struct app *app)
{
	struct event *evs[] = { app->sig_term, app->sig_int, app->sig_hup, app->status_tick,
				app->handover_tick };

	server_free(app->server);
	api_stop(app->api);
	admin_stop(app->admin);
	report_listener_free(app->report);
	report_unsubscribe_all();
	lb_stop();
	limits_stop(app->handed_over); /* settles what is still reserved (see pipeline/limits.h) */
	usage_stop();  /* and writes the usage to PostgreSQL */
	objects_stop(); /* and writes the object owners still queued */
	alog_close();  /* after the last settlement: the access log lines are all queued */
	trace_stop();  /* sends one last batch */
	pgsync_stop(app->pg);
	audit_stop();
	oidc_stop();
	for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++)
		if (evs[i])
			event_free(evs[i]);
	store_destroy();
	cred_global_set(NULL);
	metrics_free_all();
	traffic_reset();
	event_base_free(app->base);
}

int main(int argc, char **argv)
{
	struct app app;
	int check_only = 0;
	char err[512];

	memset(&app, 0, sizeof(app));
	if (cred_cli_wanted(argc, argv))
		return cred_cli_main(argc, argv);
	if (parse_args(argc, argv, &app, &check_only) < 0)
		return 2;
	if (config_load(app.config_path, &app.cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "jairouter-spoa: %s\n", err);
		return 1;
	}
	if (check_only) {
		if (load_master_keys(&app.cfg, 0) < 0)
			return 1;
		printf("configuration file %s is valid\n", app.config_path);
		return 0;
	}
	log_set_level((enum log_level)app.cfg.log_level);
	signal(SIGPIPE, SIG_IGN);
	evthread_use_pthreads(); /* before any event base: workers are woken cross-thread */
	app.base = event_base_new();
	if (!app.base || start(&app) < 0) {
		if (app.base)
			stop(&app);
		return 1;
	}
	log_event(LOG_INFO, "agent_started", LOG_FIELDS(LOG_S("version", JR_VERSION)),
		  "jairouter-spoa %s started", JR_VERSION);
	if (!app.listen_deferred)
		notify_systemd("READY=1\nSTATUS=serving");
	event_base_dispatch(app.base);
	if (!app.draining) /* loop ended without a drain: still stop the workers cleanly */
		log_event(LOG_WARN, "event_loop_ended", LOG_NO_FIELDS,
			  "event loop ended unexpectedly");
	stop(&app);
	log_event(LOG_INFO, "agent_stopped", LOG_NO_FIELDS, "stopped");
	return 0;
}
