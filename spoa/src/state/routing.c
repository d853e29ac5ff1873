#include "state/routing.h"

#include "util/hmap.h"
#include "util/xalloc.h"

#include <stdlib.h>
#include <string.h>

#define SERVICES_MAX 32 /* enum pl_service values (pipeline.h has fewer) */

/* Policy rows are indexed by id and by their scope; fallback rows by id only (they are
 * read only when a model's own servers cannot serve, so a scan is fine there). */
struct lb_conf {
	struct hmap pol_by_id, pol_by_model, pol_by_backend;
	struct lb_policy_row *by_service[SERVICES_MAX];
	struct lb_policy_row *global;
	struct hmap fb_by_id;
	struct hmap virt_by_id, virt_by_model, mem_by_id;
};

static int eq_id(const void *item, const void *key)
{
	return *(const int64_t *)item == *(const int64_t *)key; /* id is the first member */
}

static int eq_model(const void *item, const void *key)
{
	return ((const struct lb_policy_row *)item)->model_id == *(const int64_t *)key;
}

static int eq_backend(const void *item, const void *key)
{
	return strcmp(((const struct lb_policy_row *)item)->backend, key) == 0;
}

struct lb_conf *lb_conf_new(void)
{
	struct lb_conf *c = xcalloc(1, sizeof(*c));

	hmap_init(&c->pol_by_id);
	hmap_init(&c->pol_by_model);
	hmap_init(&c->pol_by_backend);
	hmap_init(&c->fb_by_id);
	hmap_init(&c->virt_by_id);
	hmap_init(&c->virt_by_model);
	hmap_init(&c->mem_by_id);
	return c;
}

static void free_item(void *item, void *arg)
{
	(void)arg;
	free(item);
}

void lb_conf_free(struct lb_conf *c)
{
	if (!c)
		return;
	hmap_each(&c->pol_by_id, free_item, NULL);
	hmap_each(&c->fb_by_id, free_item, NULL);
	hmap_each(&c->virt_by_id, free_item, NULL);
	hmap_each(&c->mem_by_id, free_item, NULL);
	hmap_clear(&c->virt_by_id);
	hmap_clear(&c->virt_by_model);
	hmap_clear(&c->mem_by_id);
	hmap_clear(&c->pol_by_id);
	hmap_clear(&c->pol_by_model);
	hmap_clear(&c->pol_by_backend);
	hmap_clear(&c->fb_by_id);
	free(c);
}

static uint64_t h_id(int64_t id)
{
	return hmap_hash_u64((uint64_t)id);
}

static uint64_t h_str(const char *s)
{
	return hmap_hash_bytes(s, strlen(s));
}

void lb_conf_del_policy(struct lb_conf *c, int64_t id)
{
	struct lb_policy_row *r = hmap_remove(&c->pol_by_id, h_id(id), eq_id, &id);

	if (!r)
		return;
	if (r->model_id)
		hmap_remove(&c->pol_by_model, h_id(r->model_id), eq_id, &r->id);
	else if (r->backend[0])
		hmap_remove(&c->pol_by_backend, h_str(r->backend), eq_id, &r->id);
	else if (r->service >= 0 && r->service < SERVICES_MAX && c->by_service[r->service] == r)
		c->by_service[r->service] = NULL;
	else if (c->global == r)
		c->global = NULL;
	free(r);
}

void lb_conf_put_policy(struct lb_conf *c, const struct lb_policy_row *r)
{
	struct lb_policy_row *n;

	lb_conf_del_policy(c, r->id);
	n = xmalloc(sizeof(*n));
	*n = *r;
	n->backend[sizeof(n->backend) - 1] = '\0';
	hmap_insert(&c->pol_by_id, h_id(n->id), n);
	if (n->model_id)
		hmap_insert(&c->pol_by_model, h_id(n->model_id), n);
	else if (n->backend[0])
		hmap_insert(&c->pol_by_backend, h_str(n->backend), n);
	else if (n->service >= 0 && n->service < SERVICES_MAX)
		c->by_service[n->service] = n;
	else if (n->service < 0)
		c->global = n;
}

void lb_conf_del_fallback(struct lb_conf *c, int64_t id)
{
	free(hmap_remove(&c->fb_by_id, h_id(id), eq_id, &id));
}

void lb_conf_put_fallback(struct lb_conf *c, const struct lb_fallback_row *r)
{
	struct lb_fallback_row *n;

	lb_conf_del_fallback(c, r->id);
	n = xmalloc(sizeof(*n));
	*n = *r;
	hmap_insert(&c->fb_by_id, h_id(n->id), n);
}

size_t lb_conf_policy_chain(const struct lb_conf *c, int64_t model_id, const char *backend,
			    int service, const struct lb_policy_row *out[LB_POLICY_SCOPES])
{
	size_t n = 0;

	if (model_id && (out[n] = hmap_find(&c->pol_by_model, h_id(model_id), eq_model, &model_id)))
		n++;
	if (backend && backend[0] &&
	    (out[n] = hmap_find(&c->pol_by_backend, h_str(backend), eq_backend, backend)))
		n++;
	if (service >= 0 && service < SERVICES_MAX && (out[n] = c->by_service[service]))
		n++;
	if ((out[n] = c->global))
		n++;
	return n;
}

struct fb_collect {
	int64_t model_id;
	struct lb_fallback_row *out;
	size_t n, max;
};

static void fb_one(void *item, void *arg)
{
	const struct lb_fallback_row *r = item;
	struct fb_collect *fc = arg;
	size_t i;

	if (r->model_id != fc->model_id)
		return;
	/* Insertion in position order; beyond max, later positions are dropped. */
	for (i = fc->n; i > 0 && fc->out[i - 1].position > r->position; i--)
		if (i < fc->max)
			fc->out[i] = fc->out[i - 1];
	if (i < fc->max) {
		fc->out[i] = *r;
		if (fc->n < fc->max)
			fc->n++;
	}
}

size_t lb_conf_fallbacks(const struct lb_conf *c, int64_t model_id, struct lb_fallback_row *out,
			 size_t max)
{
	struct fb_collect fc = { model_id, out, 0, max };

	hmap_each(&c->fb_by_id, fb_one, &fc);
	return fc.n;
}

static int eq_virt_model(const void *item, const void *key)
{
	return ((const struct lb_virtual_row *)item)->model_id == *(const int64_t *)key;
}

void lb_conf_del_virtual(struct lb_conf *c, int64_t id)
{
	struct lb_virtual_row *r = hmap_remove(&c->virt_by_id, h_id(id), eq_id, &id);

	if (!r)
		return;
	hmap_remove(&c->virt_by_model, h_id(r->model_id), eq_id, &r->id);
	free(r);
}

void lb_conf_put_virtual(struct lb_conf *c, const struct lb_virtual_row *r)
{
	struct lb_virtual_row *n;

	lb_conf_del_virtual(c, r->id);
	n = xmalloc(sizeof(*n));
	*n = *r;
	hmap_insert(&c->virt_by_id, h_id(n->id), n);
	hmap_insert(&c->virt_by_model, h_id(n->model_id), n);
}

const struct lb_virtual_row *lb_conf_virtual(const struct lb_conf *c, int64_t model_id)
{
	if (!c->virt_by_model.count)
		return NULL; /* the common case: no virtual model at all */
	return hmap_find(&c->virt_by_model, h_id(model_id), eq_virt_model, &model_id);
}

void lb_conf_del_member(struct lb_conf *c, int64_t id)
{
	free(hmap_remove(&c->mem_by_id, h_id(id), eq_id, &id));
}

void lb_conf_put_member(struct lb_conf *c, const struct lb_member_row *r)
{
	struct lb_member_row *n;

	lb_conf_del_member(c, r->id);
	n = xmalloc(sizeof(*n));
	*n = *r;
	hmap_insert(&c->mem_by_id, h_id(n->id), n);
}

struct mem_collect {
	int64_t virtual_id;
	struct lb_member_row *out;
	size_t n, max;
};

static void mem_one(void *item, void *arg)
{
	const struct lb_member_row *r = item;
	struct mem_collect *mc = arg;
	size_t i;

	if (r->virtual_id != mc->virtual_id)
		return;
	for (i = mc->n; i > 0 && mc->out[i - 1].position > r->position; i--)
		if (i < mc->max)
			mc->out[i] = mc->out[i - 1];
	if (i < mc->max) {
		mc->out[i] = *r;
		if (mc->n < mc->max)
			mc->n++;
	}
}

size_t lb_conf_members(const struct lb_conf *c, int64_t virtual_id, struct lb_member_row *out,
		       size_t max)
{
	struct mem_collect mc = { virtual_id, out, 0, max };

	hmap_each(&c->mem_by_id, mem_one, &mc);
	return mc.n;
}

size_t lb_conf_count_policies(const struct lb_conf *c)
{
	return c->pol_by_id.count;
}

size_t lb_conf_count_fallbacks(const struct lb_conf *c)
{
	return c->fb_by_id.count;
}

size_t lb_conf_count_virtual(const struct lb_conf *c)
{
	return c->virt_by_id.count;
}
