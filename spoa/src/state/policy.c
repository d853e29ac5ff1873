#include "state/policy.h"

#include "cred/cred.h"
#include "util/hmap.h"
#include "util/log.h"
#include "util/xalloc.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A tenant's grants, so that a decision scans only its own (usually a handful). */
struct grant_list {
	int64_t tenant_id;
	size_t n, cap;
	struct pol_grant **items;
};

struct policy {
	struct hmap tenants;        /* id -> pol_tenant */
	struct hmap keys;           /* id -> pol_key (restricted keys only) */
	struct hmap private_models; /* model id -> int64_t (a set) */
	struct hmap grants;         /* id -> pol_grant */
	struct hmap grant_lists;    /* tenant id -> grant_list */
	struct hmap members;        /* id -> pol_member */
	struct hmap memberships;    /* (group, model) -> pol_member */
	struct hmap creds;          /* id -> pol_cred */
	struct hmap creds_by_model; /* model id -> pol_cred */
	struct hmap creds_by_backend;
};

static const char *const service_names[] = {
	"chat", "completions", "embeddings", "rerank", "audio_speech", "audio_transcriptions",
	"images_generations", "images_edits", "models", "moderations", "realtime",
};

int policy_service_bit(const char *name, size_t len)
{
	for (size_t i = 0; i < sizeof(service_names) / sizeof(service_names[0]); i++)
		if (strlen(service_names[i]) == len && memcmp(service_names[i], name, len) == 0)
			return (int)i;
	return -1;
}

/* ---- equality callbacks (every item starts with its int64_t id) ---------------------- */

static int eq_id(const void *item, const void *key)
{
	return *(const int64_t *)item == *(const int64_t *)key;
}

static int eq_grant_list(const void *item, const void *key)
{
	return ((const struct grant_list *)item)->tenant_id == *(const int64_t *)key;
}

static int eq_membership(const void *item, const void *key)
{
	const struct pol_member *m = item, *k = key;

	return m->group_id == k->group_id && m->model_id == k->model_id;
}

static int eq_cred_model(const void *item, const void *key)
{
	const struct pol_cred *c = item;

	return c->model_scope && c->model_id == *(const int64_t *)key;
}

static int eq_cred_backend(const void *item, const void *key)
{
	const struct pol_cred *c = item;

	return !c->model_scope && strcmp(c->backend, key) == 0;
}

static uint64_t h_id(int64_t id)
{
	return hmap_hash_u64((uint64_t)id);
}

static uint64_t h_membership(int64_t group_id, int64_t model_id)
{
	return hmap_hash_u64((uint64_t)group_id * 0x9e3779b97f4a7c15ull ^ (uint64_t)model_id);
}

/* ---- life cycle ---------------------------------------------------------------------- */

struct policy *policy_new(void)
{
	struct policy *p = xcalloc(1, sizeof(*p));
	struct hmap *maps[] = { &p->tenants, &p->keys, &p->private_models, &p->grants,
				&p->grant_lists, &p->members, &p->memberships, &p->creds,
				&p->creds_by_model, &p->creds_by_backend };

	for (size_t i = 0; i < sizeof(maps) / sizeof(maps[0]); i++)
		hmap_init(maps[i]);
	return p;
}

static void free_tenant(void *item, void *arg)
{
	struct pol_tenant *t = item;

	(void)arg;
	policy_iplist_free(&t->ips);
	free(t);
}

static void free_key(void *item, void *arg)
{
	struct pol_key *k = item;

	(void)arg;
	for (size_t i = 0; i < k->nmodels; i++)
		free(k->models[i]);
	free(k->models);
	policy_iplist_free(&k->ips);
	free(k);
}

static void free_plain(void *item, void *arg)
{
	(void)arg;
	free(item);
}

static void free_grant_list(void *item, void *arg)
{
	(void)arg;
	free(((struct grant_list *)item)->items);
	free(item);
}

static void free_cred(void *item, void *arg)
{
	struct pol_cred *c = item;

	(void)arg;
	cred_secret_free(c->value, c->len + 1);
	free(c);
}

void policy_free(struct policy *p)
{
	if (!p)
		return;
	hmap_each(&p->tenants, free_tenant, NULL);
	hmap_each(&p->keys, free_key, NULL);
	hmap_each(&p->private_models, free_plain, NULL);
	hmap_each(&p->grants, free_plain, NULL);
	hmap_each(&p->grant_lists, free_grant_list, NULL);
	hmap_each(&p->members, free_plain, NULL);
	hmap_each(&p->creds, free_cred, NULL);
	hmap_clear(&p->tenants);
	hmap_clear(&p->keys);
	hmap_clear(&p->private_models);
	hmap_clear(&p->grants);
	hmap_clear(&p->grant_lists);
	hmap_clear(&p->members);
	hmap_clear(&p->memberships);
	hmap_clear(&p->creds);
	hmap_clear(&p->creds_by_model);
	hmap_clear(&p->creds_by_backend);
	free(p);
}

/* ---- client networks --------------------------------------------------------------- */

static const uint8_t v4_mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

/* Parses one "addr[/bits]" (NUL-terminated). 0 or -1. */
static int cidr_parse_one(const char *s, struct pol_cidr *c)
{
	char addr[64];
	const char *slash = strchr(s, '/');
	size_t alen = slash ? (size_t)(slash - s) : strlen(s);
	char *end;
	long bits;

	if (alen == 0 || alen >= sizeof(addr))
		return -1;
	memcpy(addr, s, alen);
	addr[alen] = '\0';
	memset(c, 0, sizeof(*c));
	if (inet_pton(AF_INET, addr, c->addr) == 1)
		c->family = 4;
	else if (inet_pton(AF_INET6, addr, c->addr) == 1)
		c->family = 6;
	else
		return -1;
	bits = c->family == 4 ? 32 : 128;
	if (slash) {
		bits = strtol(slash + 1, &end, 10);
		if (end == slash + 1 || *end || bits < 0 || bits > (c->family == 4 ? 32 : 128))
			return -1;
	}
	c->bits = (uint8_t)bits;
	if (c->family == 6 && c->bits >= 96 && memcmp(c->addr, v4_mapped, 12) == 0) {
		memmove(c->addr, c->addr + 12, 4);
		memset(c->addr + 4, 0, 12);
		c->family = 4;
		c->bits = (uint8_t)(c->bits - 96);
	}
	return 0;
}

int policy_cidrs_parse(const char *text, size_t len, struct pol_cidr *out, size_t max)
{
	size_t n = 0;
	const char *p = text, *end = text + len;

	while (p < end) {
		const char *comma = memchr(p, ',', (size_t)(end - p));
		size_t l = (size_t)((comma ? comma : end) - p);
		char item[64];

		while (l && *p == ' ')
			p++, l--;
		while (l && p[l - 1] == ' ')
			l--;
		if (l == 0 || l >= sizeof(item) || n == max || memchr(p, '\0', l))
			return -1;
		memcpy(item, p, l);
		item[l] = '\0';
		if (cidr_parse_one(item, &out[n++]) < 0)
			return -1;
		p = comma ? comma + 1 : end;
		if (comma && p == end)
			return -1; /* trailing comma */
	}
	return (int)n;
}

static int prefix_match(const uint8_t *a, const uint8_t *b, unsigned bits)
{
	unsigned whole = bits / 8, rest = bits % 8;

	if (memcmp(a, b, whole) != 0)
		return 0;
	if (rest == 0)
		return 1;
	return ((a[whole] ^ b[whole]) & (uint8_t)(0xff << (8 - rest))) == 0;
}

static int in_list(const struct pol_iplist *l, int family, const uint8_t *a)
{
	for (size_t i = 0; i < l->n; i++)
		if (l->cidrs[i].family == family && prefix_match(l->cidrs[i].addr, a, l->cidrs[i].bits))
			return 1;
	return 0;
}

/* An IPv4-mapped IPv6 client is checked as the IPv4 address it carries, and as itself
 * against IPv6 networks wide enough to hold it (e.g. ::/0). */
int policy_ip_allowed(const struct pol_iplist *l, int family, const uint8_t addr[16])
{
	if (!l->restricted)
		return 1;
	if (family == 6 && memcmp(addr, v4_mapped, 12) == 0 && in_list(l, 4, addr + 12))
		return 1;
	return (family == 4 || family == 6) && in_list(l, family, addr);
}

int policy_iplist_parse(struct pol_iplist *l, const char *text, size_t len)
{
	struct pol_cidr tmp[POL_CIDR_MAX];
	int n;

	memset(l, 0, sizeof(*l));
	if (len == 0)
		return 0;
	l->restricted = 1;
	n = policy_cidrs_parse(text, len, tmp, POL_CIDR_MAX);
	if (n <= 0)
		return -1; /* restricted with no entries: admits nothing (fail closed) */
	l->cidrs = xmalloc((size_t)n * sizeof(*l->cidrs));
	memcpy(l->cidrs, tmp, (size_t)n * sizeof(*l->cidrs));
	l->n = (size_t)n;
	return 0;
}

void policy_iplist_free(struct pol_iplist *l)
{
	free(l->cidrs);
	memset(l, 0, sizeof(*l));
}

static void iplist_copy(struct pol_iplist *dst, const struct pol_iplist *src)
{
	*dst = *src;
	dst->cidrs = NULL;
	if (src->n) {
		dst->cidrs = xmalloc(src->n * sizeof(*src->cidrs));
		memcpy(dst->cidrs, src->cidrs, src->n * sizeof(*src->cidrs));
	}
}

/* ---- tenants and keys ---------------------------------------------------------------- */

void policy_put_tenant(struct policy *p, const struct pol_tenant *t)
{
	struct pol_tenant *n = xmalloc(sizeof(*n));

	policy_del_tenant(p, t->id);
	*n = *t;
	iplist_copy(&n->ips, &t->ips);
	hmap_insert(&p->tenants, h_id(n->id), n);
}

void policy_del_tenant(struct policy *p, int64_t id)
{
	struct pol_tenant *t = hmap_remove(&p->tenants, h_id(id), eq_id, &id);

	if (t)
		free_tenant(t, NULL);
}

static void key_models_parse(struct pol_key *k, const char *text)
{
	size_t cap = 0;

	while (*text && k->nmodels < POL_KEY_MODELS_MAX) {
		size_t l = strcspn(text, "\n");
		if (l) {
			if (k->nmodels == cap) {
				cap = cap ? 2 * cap : 4;
				k->models = xrealloc(k->models, cap * sizeof(*k->models));
			}
			k->models[k->nmodels++] = xstrndup(text, l);
		}
		text += l + (text[l] == '\n');
	}
}

void policy_put_key(struct policy *p, int64_t id, const char *models_text, const char *ip_text)
{
	struct pol_key *k = xcalloc(1, sizeof(*k));

	policy_del_key(p, id);
	k->id = id;
	key_models_parse(k, models_text);
	if (policy_iplist_parse(&k->ips, ip_text, strlen(ip_text)) < 0)
		log_event(LOG_WARN, "key_allowlist_unreadable", LOG_FIELDS(LOG_I("key_id", id)),
			  "policy: key %lld has an unreadable IP allow-list; it admits no address",
			  (long long)id);
	hmap_insert(&p->keys, h_id(id), k);
}

void policy_del_key(struct policy *p, int64_t id)
{
	struct pol_key *k = hmap_remove(&p->keys, h_id(id), eq_id, &id);

	if (k)
		free_key(k, NULL);
}

const struct pol_tenant *policy_tenant(const struct policy *p, int64_t id)
{
	return hmap_find(&p->tenants, h_id(id), eq_id, &id);
}

const struct pol_key *policy_key(const struct policy *p, int64_t id)
{
	return hmap_find(&p->keys, h_id(id), eq_id, &id);
}

int policy_key_allows_model(const struct pol_key *k, const char *name)
{
	if (!k || k->nmodels == 0)
		return 1;
	for (size_t i = 0; i < k->nmodels; i++)
		if (strcmp(k->models[i], name) == 0)
			return 1;
	return 0;
}

int policy_model_usable(const struct policy *p, int64_t tenant_id, int64_t key_id, int64_t model_id,
			const char *name)
{
	return policy_model_access(p, tenant_id, model_id) &&
	       policy_key_allows_model(policy_key(p, key_id), name);
}

/* ---- visibility, groups, grants ---------------------------------------------------- */

void policy_put_private_model(struct policy *p, int64_t model_id)
{
	int64_t *n;

	if (policy_model_private(p, model_id))
		return;
	n = xmalloc(sizeof(*n));
	*n = model_id;
	hmap_insert(&p->private_models, h_id(model_id), n);
}

void policy_del_private_model(struct policy *p, int64_t model_id)
{
	free(hmap_remove(&p->private_models, h_id(model_id), eq_id, &model_id));
}

int policy_model_private(const struct policy *p, int64_t model_id)
{
	return hmap_find(&p->private_models, h_id(model_id), eq_id, &model_id) != NULL;
}

static struct grant_list *grant_list_of(const struct policy *p, int64_t tenant_id)
{
	return hmap_find(&p->grant_lists, h_id(tenant_id), eq_grant_list, &tenant_id);
}

static void grant_list_add(struct policy *p, struct pol_grant *g)
{
	struct grant_list *l = grant_list_of(p, g->tenant_id);

	if (!l) {
		l = xcalloc(1, sizeof(*l));
		l->tenant_id = g->tenant_id;
		hmap_insert(&p->grant_lists, h_id(l->tenant_id), l);
	}
	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 4;
		l->items = xrealloc(l->items, l->cap * sizeof(*l->items));
	}
	l->items[l->n++] = g;
}

static void grant_list_remove(struct policy *p, const struct pol_grant *g)
{
	struct grant_list *l = grant_list_of(p, g->tenant_id);

	for (size_t i = 0; l && i < l->n; i++)
		if (l->items[i] == g) {
			l->items[i] = l->items[--l->n];
			break;
		}
	if (l && l->n == 0) {
		hmap_remove(&p->grant_lists, h_id(l->tenant_id), eq_grant_list, &l->tenant_id);
		free_grant_list(l, NULL);
	}
}

void policy_put_grant(struct policy *p, const struct pol_grant *g)
{
	struct pol_grant *n = xmalloc(sizeof(*n));

	policy_del_grant(p, g->id);
	*n = *g;
	hmap_insert(&p->grants, h_id(n->id), n);
	grant_list_add(p, n);
}

void policy_del_grant(struct policy *p, int64_t id)
{
	struct pol_grant *g = hmap_remove(&p->grants, h_id(id), eq_id, &id);

	if (!g)
		return;
	grant_list_remove(p, g);
	free(g);
}

void policy_put_member(struct policy *p, const struct pol_member *m)
{
	struct pol_member *n = xmalloc(sizeof(*n));

	policy_del_member(p, m->id);
	*n = *m;
	hmap_insert(&p->members, h_id(n->id), n);
	hmap_insert(&p->memberships, h_membership(n->group_id, n->model_id), n);
}

void policy_del_member(struct policy *p, int64_t id)
{
	struct pol_member *m = hmap_remove(&p->members, h_id(id), eq_id, &id);

	if (!m)
		return;
	hmap_remove(&p->memberships, h_membership(m->group_id, m->model_id), eq_membership, m);
	free(m);
}

static int in_group(const struct policy *p, int64_t group_id, int64_t model_id)
{
	struct pol_member k = { 0, group_id, model_id };

	return hmap_find(&p->memberships, h_membership(group_id, model_id), eq_membership, &k) != NULL;
}

int policy_model_access(const struct policy *p, int64_t tenant_id, int64_t model_id)
{
	const struct grant_list *l = grant_list_of(p, tenant_id);
	int allowed = 0;

	for (size_t i = 0; l && i < l->n; i++) {
		const struct pol_grant *g = l->items[i];
		int match = g->model_id ? g->model_id == model_id : in_group(p, g->group_id, model_id);

		if (match && g->deny)
			return 0;
		allowed |= match;
	}
	return allowed || !policy_model_private(p, model_id);
}

/* ---- provider credentials ---------------------------------------------------------- */

static const char *const header_names[] = { "", "authorization", "x-api-key", "api-key" };

/* "jairouter-credential:v1:<id>:<scope>:<target>:<header>:<scheme>": the SQL's
 * jairouter.credential_aad(). */
static int cred_aad(const struct pol_cred_row *r, char *buf, size_t cap)
{
	char target[POL_BACKEND_MAX];

	if (r->model_scope)
		snprintf(target, sizeof(target), "%lld", (long long)r->model_id);
	else
		snprintf(target, sizeof(target), "%s", r->backend);
	return snprintf(buf, cap, "jairouter-credential:v1:%lld:%s:%s:%s:%s", (long long)r->id,
			r->model_scope ? "model" : "backend", target, header_names[r->header],
			r->bearer ? "bearer" : "raw");
}

static int value_valid(const uint8_t *s, size_t n)
{
	if (n == 0 || n > CRED_SECRET_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (s[i] < 0x20 || s[i] > 0x7e)
			return 0;
	return 1;
}

/* Opens row->sealed into c->value. Returns NULL or the reason it failed. */
static const char *cred_fill(struct pol_cred *c, const struct pol_cred_row *r)
{
	const struct cred_keyring *kr = cred_global();
	char aad[CRED_AAD_MAX];
	uint8_t *pt = NULL;
	size_t ptlen = 0, pre = r->bearer ? 7 : 0;
	enum cred_open_result rc;

	if (!kr)
		return "no master_key_file is configured";
	cred_aad(r, aad, sizeof(aad));
	rc = cred_open(kr, r->sealed, strlen(r->sealed), aad, strlen(aad), &pt, &ptlen);
	if (rc != CRED_OK)
		return cred_open_error(rc);
	if (!value_valid(pt, ptlen)) {
		cred_secret_free(pt, ptlen + 1);
		return "the opened value is not a valid header value";
	}
	c->len = pre + ptlen;
	c->value = xmalloc(c->len + 1);
	memcpy(c->value, "Bearer ", pre);
	memcpy(c->value + pre, pt, ptlen + 1);
	cred_secret_free(pt, ptlen + 1);
	return NULL;
}

int policy_put_credential(struct policy *p, const struct pol_cred_row *row)
{
	struct pol_cred *c = xcalloc(1, sizeof(*c));
	const char *why;

	policy_del_credential(p, row->id);
	c->id = row->id;
	c->model_scope = row->model_scope;
	c->model_id = row->model_id;
	c->header = row->header;
	snprintf(c->backend, sizeof(c->backend), "%s", row->model_scope ? "" : row->backend);
	if (row->header == POL_HDR_NONE)
		why = "unknown header";
	else
		why = cred_fill(c, row);
	c->broken = why != NULL;
	if (why)
		log_event(LOG_WARN, "provider_credential_unusable",
			  LOG_FIELDS(LOG_I("credential_id", row->id), LOG_S("error", why)),
			  "policy: provider credential %lld cannot be used (%s); "
			  "requests that need it "
			  "are refused with 503", (long long)row->id, why);
	hmap_insert(&p->creds, h_id(c->id), c);
	if (c->model_scope)
		hmap_insert(&p->creds_by_model, h_id(c->model_id), c);
	else
		hmap_insert(&p->creds_by_backend, hmap_hash_bytes(c->backend, strlen(c->backend)), c);
	return c->broken ? -1 : 0;
}

void policy_del_credential(struct policy *p, int64_t id)
{
	struct pol_cred *c = hmap_remove(&p->creds, h_id(id), eq_id, &id);

	if (!c)
		return;
	if (c->model_scope)
		hmap_remove(&p->creds_by_model, h_id(c->model_id), eq_cred_model, &c->model_id);
	else
		hmap_remove(&p->creds_by_backend, hmap_hash_bytes(c->backend, strlen(c->backend)),
			    eq_cred_backend, c->backend);
	free_cred(c, NULL);
}

const struct pol_cred *policy_credential(const struct policy *p, int64_t model_id, const char *backend)
{
	const struct pol_cred *c = NULL;

	if (model_id)
		c = hmap_find(&p->creds_by_model, h_id(model_id), eq_cred_model, &model_id);
	if (!c && backend && backend[0])
		c = hmap_find(&p->creds_by_backend, hmap_hash_bytes(backend, strlen(backend)),
			      eq_cred_backend, backend);
	return c;
}

size_t policy_count_credentials(const struct policy *p)
{
	return p->creds.count;
}
