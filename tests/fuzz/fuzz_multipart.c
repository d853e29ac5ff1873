/*
 * Fuzz target: the multipart/form-data reader. Input: a Content-Type line, a newline,
 * then the body. Besides memory safety it checks the properties the routing decision
 * relies on: recorded fields lie inside the body and inside the consumed prefix, and a
 * field found in a prefix is found at the same place in every longer prefix (a
 * truncated body never yields a model the full body would not).
 */
#include "form/multipart.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_field(const struct mp_field *f, const struct mp_form *form, size_t len)
{
	if (f->count && (f->offset > len || f->len > len - f->offset ||
			 f->offset + f->len > form->consumed))
		__builtin_trap();
}

static void check_prefix_stable(const char *body, size_t len, const char *b, size_t bl,
				const struct mp_form *full)
{
	struct mp_form part;

	if (mp_parse(body, len / 2, b, bl, &part) != MP_OK)
		__builtin_trap(); /* a prefix of a good form is never malformed */
	if (part.model.count && (part.model.offset != full->model.offset ||
				 part.model.len != full->model.len))
		__builtin_trap();
	if (part.model.count > full->model.count || part.parts > full->parts)
		__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *nl = memchr(p, '\n', size);
	char b[MP_BOUNDARY_MAX + 1];
	struct mp_form form;
	size_t len;
	int bl;

	if (!nl)
		return 0;
	mp_is_form(p, (size_t)(nl - p));
	bl = mp_boundary(p, (size_t)(nl - p), b);
	if (bl < 0)
		return 0;
	if ((size_t)bl != strlen(b) || bl > MP_BOUNDARY_MAX)
		__builtin_trap();
	len = size - (size_t)(nl + 1 - p);
	if (mp_parse(nl + 1, len, b, (size_t)bl, &form) != MP_OK)
		return 0;
	if (form.consumed > len)
		__builtin_trap();
	check_field(&form.model, &form, len);
	check_field(&form.stream, &form, len);
	check_field(&form.purpose, &form, len);
	check_field(&form.file, &form, len);
	check_prefix_stable(nl + 1, len, b, (size_t)bl, &form);
	return 0;
}
