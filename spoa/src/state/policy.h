/*
 * policy: the tenant-policy part of the in-memory catalogue (sql/004_tenant_policy.sql):
 * per-tenant service types, client IP allow-lists and settings; per-key restrictions;
 * private models, model groups and grants; opened provider credentials.
 *
 * One `struct policy` lives inside each `struct state` (state_policy()) and follows its
 * locking: readers hold the store's read lock, the loader writes under the write lock
 * or into a state being built. Pointers returned here are valid only under that lock.
 *
 * Access rule for a (tenant, model): a deny grant on the model or on a group holding it
 * wins; otherwise an allow grant admits it; otherwise only a public model is usable.
 */
#ifndef JR_POLICY_H
#define JR_POLICY_H

#include <stddef.h>
#include <stdint.h>

#define POL_CIDR_MAX 64
#define POL_KEY_MODELS_MAX 256
#define POL_BACKEND_MAX 64
#define POL_VALUE_MAX 4200 /* an upstream header value: "Bearer " + a sealed secret */

struct pol_cidr {
	uint8_t family; /* 4 or 6 */
	uint8_t bits;
	uint8_t addr[16];
};

/* An allow-list of client networks. restricted == 0: any address. A list that could
 * not be read has restricted set and no entries, so it admits nothing. */
struct pol_iplist {
	int restricted;
	size_t n;
	struct pol_cidr *cidrs;
};

/* Service type names (the SQL's jairouter.service_names()), one bit each. */
#define POL_SERVICES_ALL 0xffffffffu
int policy_service_bit(const char *name, size_t len); /* -1 when unknown */

enum pol_on_error { POL_ON_ERROR_DEFAULT = -1, POL_FAIL_CLOSED = 0, POL_FAIL_OPEN = 1 };

struct pol_tenant {
	int64_t id;
	uint32_t services;        /* bit set of policy_service_bit(); POL_SERVICES_ALL */
	enum pol_on_error on_error;
	int masking;              /* -1 unset, 0 off, 1 on (for the masking work) */
	struct pol_iplist ips;
	char files_model[128];    /* settings.files_model (sql/016); empty: the agent's default */
};

struct pol_key {
	int64_t id;
	size_t nmodels;           /* 0: no model restriction */
	char **models;
	struct pol_iplist ips;
};

struct pol_grant {
	int64_t id, tenant_id;
	int64_t model_id, group_id; /* exactly one is non-zero */
	int deny;
};

struct pol_member {
	int64_t id, group_id, model_id;
};

enum pol_header { POL_HDR_NONE = 0, POL_HDR_AUTHORIZATION, POL_HDR_X_API_KEY, POL_HDR_API_KEY };

/* A provider credential row as read from PostgreSQL (still sealed). */
struct pol_cred_row {
	int64_t id;
	int model_scope;          /* 1: model_id; 0: backend */
	const char *backend;
	int64_t model_id;
	enum pol_header header;
	int bearer;               /* scheme: "Bearer " + secret, else the secret alone */
	const char *sealed;       /* "<key-id>:<base64>" */
};

/* An opened credential: the complete header value, or broken (could not be opened). */
struct pol_cred {
	int64_t id;
	int model_scope;
	char backend[POL_BACKEND_MAX];
	int64_t model_id;
	enum pol_header header;
	int broken;
	size_t len;
	char *value;              /* NUL-terminated; zeroed on free */
};

struct policy;

struct policy *policy_new(void);
void policy_free(struct policy *p);

/* Upserts by id; removing an absent id is not an error. */
void policy_put_tenant(struct policy *p, const struct pol_tenant *t); /* copies t->ips */
void policy_del_tenant(struct policy *p, int64_t id);
/* models_text: names separated by '\n' ("" = none); ip_text: CIDRs separated by ','. */
void policy_put_key(struct policy *p, int64_t id, const char *models_text, const char *ip_text);
void policy_del_key(struct policy *p, int64_t id);
void policy_put_private_model(struct policy *p, int64_t model_id);
void policy_del_private_model(struct policy *p, int64_t model_id);
void policy_put_grant(struct policy *p, const struct pol_grant *g);
void policy_del_grant(struct policy *p, int64_t id);
void policy_put_member(struct policy *p, const struct pol_member *m);
void policy_del_member(struct policy *p, int64_t id);
/* Opens the sealed value with the process keyring (cred_global()). A value that cannot
 * be opened is kept as broken and logged (never the value). Returns 0, or -1 if broken. */
int policy_put_credential(struct policy *p, const struct pol_cred_row *row);
void policy_del_credential(struct policy *p, int64_t id);

const struct pol_tenant *policy_tenant(const struct policy *p, int64_t id);
const struct pol_key *policy_key(const struct policy *p, int64_t id);
int policy_model_private(const struct policy *p, int64_t model_id);
/* The access rule above: 1 usable, 0 not. */
int policy_model_access(const struct policy *p, int64_t tenant_id, int64_t model_id);
/* 1 when the key has no model list or lists name. */
int policy_key_allows_model(const struct pol_key *k, const char *name);
/* Whether a caller (tenant, API key; 0 when none) may use a model (id, name): the access
 * rule and the key's model list. The one rule behind listings, the grants stage and the
 * router's fallback and virtual-model choices. */
int policy_model_usable(const struct policy *p, int64_t tenant_id, int64_t key_id, int64_t model_id,
			const char *name);
/* The credential for a model (model scope first, then its backend), or NULL. */
const struct pol_cred *policy_credential(const struct policy *p, int64_t model_id,
					 const char *backend);
size_t policy_count_credentials(const struct policy *p);

/* ---- client networks --------------------------------------------------------------- */

/* Parses "10.0.0.0/8,2001:db8::/32,192.0.2.1" (no prefix length = host). IPv4-mapped
 * IPv6 networks of /96 or longer are kept as IPv4. Returns the count, or -1 when an
 * entry is malformed or there are more than max. */
int policy_cidrs_parse(const char *text, size_t len, struct pol_cidr *out, size_t max);

/* Whether the address (family 4 or 6) is in the list. An IPv4-mapped IPv6 address also
 * matches the IPv4 networks (as the address it carries). An unrestricted list admits
 * everything; an unknown family (0) nothing. */
int policy_ip_allowed(const struct pol_iplist *l, int family, const uint8_t addr[16]);

/* Parses text into *l (restricted when text is not empty). Returns 0 or -1. */
int policy_iplist_parse(struct pol_iplist *l, const char *text, size_t len);
void policy_iplist_free(struct pol_iplist *l);

#endif /* JR_POLICY_H */
