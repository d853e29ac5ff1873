/*
 * route: what the agent decided for a request that detours through the adapter, as
 * HAProxy hands it over in the internal header x-jairouter-adapter: "k=v&k=v" with
 * percent-encoded values (spoa/src/pipeline/adapter.c writes it).
 *
 *   p   provider kind (sql/003 provider_kinds)     u   upstream base URL ("" = default)
 *   m   upstream model name                        pm  public model name (answers, reports)
 *   r   region (Bedrock)                           av  api-version (Azure)
 *   mt  1: meter streamed usage                    mask  the tenant's masking policy JSON
 *   t   tenant name (reports)
 *   c   response cache: the entry's time to live in seconds (absent: no caching)
 *   cmax  the largest entry stored, bytes       cs  the cache scope in every key:
 *         "t<tenant id>.m<model id>", or "s.m<model id>" for a model shared by tenants
 */
#ifndef JR_AD_ROUTE_H
#define JR_AD_ROUTE_H

#include <stddef.h>

#define RT_URL_MAX 512
#define RT_NAME_MAX 128
#define RT_MASK_MAX 4096
#define RT_HEADER_MAX 16384

struct ad_route {
	char provider[32];
	int family;               /* enum xl_provider */
	char base_url[RT_URL_MAX];
	char model[RT_NAME_MAX];
	char public_model[RT_NAME_MAX];
	char region[64];
	char api_version[64];
	char tenant[RT_NAME_MAX];
	int meter;
	char mask[RT_MASK_MAX];   /* "" = no masking */
	long cache_ttl_s;         /* 0 = not cached (docs/cache.md) */
	long cache_max;           /* bytes */
	char cache_scope[64];     /* "" = not cached */
};

/* Parses the header value. 0, or -1 with err (a provider is required). */
int route_parse(const char *v, size_t n, struct ad_route *r, char *err, size_t cap);

#endif
