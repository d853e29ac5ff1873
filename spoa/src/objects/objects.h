/*
 * objects: records who created each object a model server keeps between requests (a
 * Responses API response), so that the pipeline can refuse every other tenant
 * (state/objects.h holds the owners; docs/api.md).
 *
 * A creating request's end-of-request line says what was created: `ok=` (the kind,
 * set by haproxy/jairouter.cfg from the path), `rid=` (the id, read by HAProxy from a
 * JSON answer, or by jairouter-adapter from a stream: its line comes first and is
 * remembered by request id) and `acct=` (tenant and model ids). A recorded object goes
 * at once into the live store (the creator may use it on its next request) and into a
 * queue that a util/dbwriter.h writer inserts into jairouter.api_objects (sql/012) every
 * flush; the row's notification brings it to every agent of the fleet.
 *
 * Bounds: OBJ_QUEUE_MAX rows wait for PostgreSQL (beyond that new ones are recorded in
 * memory only and counted as dropped); OBJ_PENDING_MAX adapter ids wait for their
 * HAProxy line (the oldest is overwritten).
 */
#ifndef JR_OBJECTS_H
#define JR_OBJECTS_H

#include <stddef.h>

struct event_base;
struct evbuffer;
struct jr_report;

#define OBJ_QUEUE_MAX 20000
#define OBJ_PENDING_MAX 4096
#define OBJ_BATCH_MAX 500

/* The report subscriber (report/report.h); control thread. */
void objects_on_report(const struct jr_report *r, void *arg);

/* conninfo NULL or empty: objects are recorded in memory only. */
int objects_start(struct event_base *base, const char *conninfo, unsigned flush_ms);
/* Graceful stop: what is queued is written synchronously. */
void objects_stop(void);

void objects_render_metrics(struct evbuffer *out, void *arg);

#endif /* JR_OBJECTS_H */
