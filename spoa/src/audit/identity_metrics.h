/*
 * identity_metrics: Prometheus lines for the identity modules (abuse/, audit/, oidc/);
 * registered with metrics_add_renderer() by main.
 */
#ifndef JR_IDENTITY_METRICS_H
#define JR_IDENTITY_METRICS_H

struct evbuffer;
void identity_render_metrics(struct evbuffer *out, void *arg);

#endif /* JR_IDENTITY_METRICS_H */
