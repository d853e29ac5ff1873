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

enum obj_kind { OBJ_RESPONSE = 0, OBJ_FILE, OBJ_BATCH, OBJ__COUNT };

struct st_object {
	int64_t id;        /* the row's id; 0 until PostgreSQL's row arrives */
	enum obj_kind kind;
	char object_id[OBJ_ID_MAX];
	int64_t tenant_id;
	int64_t model_id;  /* 0: none */
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

/* The kind of its sql/012 name, or -1. */
int obj_kind_of(const char *name);
const char *obj_kind_name(enum obj_kind k);
/* Whether p[0..len) is a well-formed object id (sql/012's check). */
int obj_id_valid(const char *p, size_t len);

struct objects *state_objects(const struct state *s);

#endif /* JR_STATE_OBJECTS_H */
