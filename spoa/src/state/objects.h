/*
 * objects: who owns the objects a model server keeps between requests (a Responses API
 * response; sql/012_api_objects.sql): by kind and object id, the owning tenant and the
 * model whose backend holds it.
 *
 * One `struct objects` lives inside each `struct state` (state_objects()) and follows
 * its locking, as state/endpoints.h does. Rows come from PostgreSQL (pg/rows.c, with
 * their row id) and from the agent itself the moment a creating request ends (row id 0,
 * objects/objects.h), so that the creator can use the id before the row's notification
 * comes back; the row then replaces that entry.
 */
#ifndef JR_STATE_OBJECTS_H
#define JR_STATE_OBJECTS_H

#include <stddef.h>
#include <stdint.h>

#include "state/state.h"

#define OBJ_ID_MAX 121 /* sql/012: at most 120 of A-Z a-z 0-9 _ . - */
#define OBJ_JSON_MAX 4096 /* the object's JSON kept for lists (sql/016); longer: not kept */
#define OBJ_PURPOSE_MAX 32

enum obj_kind { OBJ_RESPONSE = 0, OBJ_FILE, OBJ_BATCH, OBJ__COUNT };

struct st_object {
	int64_t id;        /* the row's id; 0 until PostgreSQL's row arrives */
	enum obj_kind kind;
	char object_id[OBJ_ID_MAX];
	int64_t tenant_id;
	int64_t model_id;  /* 0: none */
	/* Files and batches (sql/016): the object as the model server last answered it, for
	 * the lists the agent answers itself; NULL when unknown. objects_put copies it. */
	char *json;
	int64_t created_at;            /* its created_at; 0 unknown */
	char purpose[OBJ_PURPOSE_MAX]; /* a file's purpose; "" otherwise */
	int deleted;                   /* the JSON is a delete's answer ("deleted": true): not listed */
	int64_t key_id;                /* the key that created it; 0 unknown (kept on updates) */
};

struct objects;

struct objects *objects_new(void);
void objects_free(struct objects *o);

/* Upserts by (kind, object_id). */
void objects_put(struct objects *o, const struct st_object *src);
/* Removes the row of this id (a row recorded locally, id 0, is removed by its key). */
void objects_del(struct objects *o, int64_t id);
const struct st_object *objects_find(const struct objects *o, enum obj_kind kind, const char *object_id,
				     size_t len);
size_t objects_count(const struct objects *o);
/* Calls fn for every object (in no order). */
void objects_each(const struct objects *o, void (*fn)(const struct st_object *obj, void *arg), void *arg);
/* Calls fn for every file and batch of the tenant (in no order): the lists' index, kept
 * per tenant so that a list costs the tenant's objects, not every tenant's. */
void objects_each_of_tenant(const struct objects *o, int64_t tenant,
			    void (*fn)(const struct st_object *obj, void *arg), void *arg);
/* Fills json, created_at, purpose and deleted of obj from the object's JSON (obj->json becomes
 * a copy the caller frees): 0, or -1 when it is not a JSON object of at most
 * OBJ_JSON_MAX bytes (obj unchanged). */
int obj_set_json(struct st_object *obj, const char *json, size_t len);

/* The kind of its sql/012 name, or -1. */
int obj_kind_of(const char *name);
const char *obj_kind_name(enum obj_kind k);
/* Whether p[0..len) is a well-formed object id (sql/012's check). */
int obj_id_valid(const char *p, size_t len);

struct objects *state_objects(const struct state *s);

#endif /* JR_STATE_OBJECTS_H */
