/*
 * server: the HTTP side of jairouter-adapter (evhttp): the routes (POST requests from
 * HAProxy, GET /metrics, GET /health), the listening socket, and the drain on SIGTERM.
 * One libevent loop serves it and the upstream driver.
 */
#ifndef JR_AD_SERVER_H
#define JR_AD_SERVER_H

#include "adapter.h"

/* Sets up the loop, the driver, the listener (printing "LISTENING <port>" on stdout)
 * and the signals. 0, or -1 after logging why (srv_free cleans up either way). */
int srv_init(struct ad_server *s, const struct ad_config *cfg);
/* Runs the loop until drained. */
void srv_run(struct ad_server *s);
void srv_free(struct ad_server *s);

#endif
