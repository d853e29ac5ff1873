/*
 * jairouter-adapter: the HTTP sidecar HAProxy routes a request to when its body must
 * change on the way (a provider that does not speak OpenAI's API, a tenant whose data
 * must be masked, a streamed request whose usage must be metered). docs/adapter.md is
 * the operator's guide; docs/design.md describes the modules.
 *
 * One libevent loop serves both sides: evhttp for HAProxy's requests (src/server.c),
 * libcurl's multi interface driven by the same loop for the providers (src/driver.c).
 * Each request is a job (src/job.c) whose provider bytes go through a decoder (SSE or
 * AWS event-stream), the provider's translator (src/provider.h) and out to the client
 * as OpenAI chunks or Anthropic events (src/job_reply.c).
 *
 *   jairouter-adapter [--listen 127.0.0.1:8090] [--report HOST:PORT] [--max-body BYTES]
 *                     [--max-response BYTES] [--max-pending BYTES] [--max-inflight N]
 *                     [--connect-timeout-ms MS] [--idle-timeout-s S] [--drain-timeout-s S]
 *                     [--log-level L] [--realtime-listen HOST:PORT] [--realtime-max-message BYTES]
 *                     [--realtime-max-sessions N] [--realtime-max-session-s S]
 */
#include "src/adconfig.h"
#include "src/server.h"

#include "util/log.h"

#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

static int run(const struct ad_config *cfg)
{
	struct ad_server s = { 0 };
	char err[256];
	int rc = 1;

	if (rep_open(&s.rep, cfg->report, err, sizeof(err)) < 0) {
		fprintf(stderr, "jairouter-adapter: %s\n", err);
		return 2;
	}
	if (srv_init(&s, cfg) == 0) {
		log_event(LOG_INFO, "adapter_listening",
			  LOG_FIELDS(LOG_S("addr", cfg->listen), LOG_S("report", cfg->report[0] ? cfg->report : NULL)),
			  "jairouter-adapter listening on %s%s%s", cfg->listen,
			  cfg->report[0] ? ", reports to " : "", cfg->report);
		srv_run(&s);
		rc = 0;
	}
	srv_free(&s);
	rep_close(&s.rep);
	return rc;
}

int main(int argc, char **argv)
{
	struct ad_config cfg;
	char err[256] = "";
	int rc;

	adcfg_defaults(&cfg);
	if (adcfg_parse(argc, argv, &cfg, err, sizeof(err)) < 0 || !strchr(cfg.listen, ':')) {
		fprintf(stderr, "jairouter-adapter: %s\n", err[0] ? err : "--listen: expected HOST:PORT");
		adcfg_usage(stderr);
		return 2;
	}
	log_set_level((enum log_level)cfg.log_level);
	signal(SIGPIPE, SIG_IGN);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0)
		return 1;
	rc = run(&cfg);
	curl_global_cleanup();
	return rc;
}
