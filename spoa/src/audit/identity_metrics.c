/*
 * identity_metrics: the /metrics lines of the identity modules (address lock-outs, the
 * security audit writer, OIDC key fetches). Counters only; never a name, key or address.
 */
#include "audit/identity_metrics.h"

#include "abuse/abuse.h"
#include "audit/audit.h"
#include "oidc/oidc.h"

#include <event2/buffer.h>
#include <inttypes.h>

void identity_render_metrics(struct evbuffer *out, void *arg)
{
	struct abuse_stats a;
	struct audit_stats au;
	struct oidc_stats o;

	(void)arg;
	abuse_stats(&a);
	audit_stats(&au);
	oidc_stats(&o);
	evbuffer_add_printf(out,
		"# HELP jairouter_auth_failures_total Refused credentials counted against client addresses.\n"
		"# TYPE jairouter_auth_failures_total counter\njairouter_auth_failures_total %" PRIu64 "\n"
		"# HELP jairouter_abuse_lockouts_total Client addresses locked out (slowed or blocked).\n"
		"# TYPE jairouter_abuse_lockouts_total counter\njairouter_abuse_lockouts_total %" PRIu64 "\n"
		"# HELP jairouter_abuse_refused_total Requests refused with 429 while their address was locked out.\n"
		"# TYPE jairouter_abuse_refused_total counter\njairouter_abuse_refused_total %" PRIu64 "\n"
		"# HELP jairouter_abuse_evictions_total Tracked addresses replaced because the table was full.\n"
		"# TYPE jairouter_abuse_evictions_total counter\njairouter_abuse_evictions_total %" PRIu64 "\n"
		"# HELP jairouter_audit_events_total Security audit events.\n"
		"# TYPE jairouter_audit_events_total counter\njairouter_audit_events_total %" PRIu64 "\n"
		"# HELP jairouter_audit_written_total Security audit rows written to PostgreSQL.\n"
		"# TYPE jairouter_audit_written_total counter\njairouter_audit_written_total %" PRIu64 "\n"
		"# HELP jairouter_audit_dropped_total Security audit rows not written (queue full or rejected).\n"
		"# TYPE jairouter_audit_dropped_total counter\njairouter_audit_dropped_total %" PRIu64 "\n"
		"# HELP jairouter_audit_sampled_out_total Security audit events counted in a summary instead of one line each.\n"
		"# TYPE jairouter_audit_sampled_out_total counter\njairouter_audit_sampled_out_total %" PRIu64 "\n"
		"# HELP jairouter_audit_queued Security audit rows waiting for PostgreSQL.\n"
		"# TYPE jairouter_audit_queued gauge\njairouter_audit_queued %" PRIu64 "\n"
		"# HELP jairouter_oidc_fetches_total Discovery and JWKS requests started.\n"
		"# TYPE jairouter_oidc_fetches_total counter\njairouter_oidc_fetches_total %" PRIu64 "\n"
		"# HELP jairouter_oidc_fetch_failures_total Discovery or JWKS fetches that failed (keys kept).\n"
		"# TYPE jairouter_oidc_fetch_failures_total counter\njairouter_oidc_fetch_failures_total %" PRIu64 "\n"
		"# HELP jairouter_oidc_key_sets_total JWKS key sets published.\n"
		"# TYPE jairouter_oidc_key_sets_total counter\njairouter_oidc_key_sets_total %" PRIu64 "\n",
		a.failures, a.lockouts, a.refused, a.evictions, au.events, au.written, au.dropped,
		au.sampled_out, au.queued,
		o.fetches, o.failures, o.key_sets);
}
