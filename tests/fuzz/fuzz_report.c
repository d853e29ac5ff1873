/*
 * Fuzz target: the end-of-request line parser (report/report.h) on arbitrary datagrams.
 * Besides memory safety it checks that every field lies inside the line, that keys are
 * non-empty, and that the field count respects REPORT_MAX_FIELDS.
 */
#include "report/report.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct jr_report r;
	const char *line = (const char *)data;

	if (report_parse(line, size, &r) < 0)
		return 0;
	if (r.n > REPORT_MAX_FIELDS || !report_get(&r, "id", NULL))
		__builtin_trap();
	for (size_t i = 0; i < r.n; i++) {
		const struct report_field *f = &r.f[i];
		if (!f->key_len || f->key < line || f->val + f->val_len > line + size)
			__builtin_trap();
	}
	(void)report_get_int(&r, "pt", -1);
	(void)report_client_aborted(&r);
	return 0;
}
