#include "util/row.h"

#include "util/pct.h"

#include <stdlib.h>
#include <string.h>

const char *row_text(const struct row *r, int col)
{
	return col >= 0 && col < r->n && r->v[col] ? r->v[col] : "";
}

int64_t row_i64(const struct row *r, int col)
{
	return strtoll(row_text(r, col), NULL, 10);
}

double row_f64(const struct row *r, int col)
{
	return strtod(row_text(r, col), NULL);
}

int row_is(const struct row *r, int col, const char *lit)
{
	return strcmp(row_text(r, col), lit) == 0;
}

void row_str(const struct row *r, int col, char *dst, size_t size)
{
	size_t len = col >= 0 && col < r->n ? r->len[col] : 0;

	if (len >= size)
		len = size - 1;
	memcpy(dst, row_text(r, col), len);
	dst[len] = '\0';
}

static int hex_decode(uint8_t *out, size_t n, const char *hex, size_t hexlen)
{
	if (hexlen != 2 * n)
		return -1;
	for (size_t i = 0; i < n; i++) {
		int hi = pct_hex_value(hex[2 * i]), lo = pct_hex_value(hex[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -1;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

/* One column into its field. 0, or -1 when the text does not fit the kind. */
static int read_field(const struct row *r, int col, const struct row_field *f, char *p)
{
	const char *t = row_text(r, col);
	int64_t i = strtoll(t, NULL, 10);

	switch (f->kind) {
	case RK_I64: memcpy(p, &i, sizeof(i)); return 0;
	case RK_I32: *(int32_t *)(void *)p = (int32_t)i; return 0;
	case RK_INT: *(int *)(void *)p = (int)i; return 0;
	case RK_F64: *(double *)(void *)p = strtod(t, NULL); return 0;
	case RK_STR: row_str(r, col, p, f->size); return 0;
	case RK_IS_T: *(int *)(void *)p = strcmp(t, "t") == 0; return 0;
	case RK_IS_TRUE: *(int *)(void *)p = strcmp(t, "true") == 0; return 0;
	case RK_HEX: return hex_decode((uint8_t *)p, f->size, t, strlen(t));
	case RK_CUSTOM: f->conv(t, p); return 0;
	}
	return -1;
}

int row_read(const struct row *r, const struct row_field *f, size_t n, void *rec, size_t rec_size)
{
	memset(rec, 0, rec_size);
	if (r->n < (int)n)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (read_field(r, (int)i, &f[i], (char *)rec + f[i].off) < 0)
			return -1;
	return 0;
}
