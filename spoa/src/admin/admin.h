/*
 * admin: the agent's small HTTP endpoint on the control thread (metrics_listen).
 *   GET /metrics  Prometheus text exposition
 *   GET /healthz  liveness, always 200 while the process runs; the JSON body says
 *                 whether the agent is degraded (database down) or draining
 *   GET /readyz   200 once the catalogue is loaded and while not draining, else 503
 * Nothing here reveals a tenant's data: only counts and states.
 */
#ifndef JR_ADMIN_H
#define JR_ADMIN_H

#include <stddef.h>

#include "metrics/metrics.h"

struct event_base;
struct admin;

typedef void (*admin_gauges_fn)(struct metrics_gauges *g, void *arg);

struct admin *admin_start(struct event_base *base, const char *addr, admin_gauges_fn gauges,
			  void *arg, char *err, size_t errlen);
void admin_stop(struct admin *a);

#endif /* JR_ADMIN_H */
