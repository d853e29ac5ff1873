/*
 * util/row: one row of text columns as the database layer hands it over (pg/ reads
 * PostgreSQL's text format into it), typed readers for its columns, and a table of
 * column-to-field rules so that a catalogue row is read into its struct by description.
 * The modules that parse rows (pg/rows.c, pg/ident_rows.c, limit/defs.c) stay free of
 * any database client library, and testable with rows written by hand.
 */
#ifndef JR_UTIL_ROW_H
#define JR_UTIL_ROW_H

#include <stddef.h>
#include <stdint.h>

#define ROW_COLS_MAX 32

struct row {
	int n;                        /* columns */
	const char *v[ROW_COLS_MAX];  /* NUL-terminated text; "" for SQL NULL */
	size_t len[ROW_COLS_MAX];     /* strlen(v[i]) for text columns */
};

/* Out-of-range columns read as "" (so 0), never past the row. */
const char *row_text(const struct row *r, int col);
int64_t row_i64(const struct row *r, int col);
double row_f64(const struct row *r, int col);
/* 1 when the column is exactly lit ("t", "active", "true"...). */
int row_is(const struct row *r, int col, const char *lit);
/* Copies the column into dst (size bytes, NUL-terminated), truncated to fit. */
void row_str(const struct row *r, int col, char *dst, size_t size);

/* How column i of a row fills a field of a struct. */
enum row_kind {
	RK_I64,    /* int64_t */
	RK_I32,    /* int32_t */
	RK_INT,    /* int */
	RK_F64,    /* double */
	RK_STR,    /* char[size], truncated */
	RK_IS_T,   /* int: 1 when the column is "t" (a boolean) */
	RK_IS_TRUE, /* int: 1 when the column is "true" (a JSON boolean as text) */
	RK_HEX,    /* uint8_t[size] from exactly 2*size hex digits; else the row is bad */
	RK_CUSTOM, /* the field's conv function (a status, a set of names...) */
};

struct row_field {
	enum row_kind kind;
	size_t off, size;                       /* offsetof() and sizeof() the field */
	void (*conv)(const char *text, void *field); /* RK_CUSTOM */
};

#define ROW_FIELD(kind, type, member) \
	{ kind, offsetof(type, member), sizeof(((type *)0)->member), NULL }
#define ROW_CUSTOM(conv, type, member) \
	{ RK_CUSTOM, offsetof(type, member), sizeof(((type *)0)->member), conv }

/* Zeroes rec, then fills it from r's columns 0..n-1 by f[0..n-1]. Returns 0, or -1 when
 * a column cannot be read (RK_HEX) or the row has fewer columns than rules. */
int row_read(const struct row *r, const struct row_field *f, size_t n, void *rec, size_t rec_size);

#endif /* JR_UTIL_ROW_H */
