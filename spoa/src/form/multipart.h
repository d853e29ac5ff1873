/*
 * multipart: a strict, bounded, non-allocating reader of multipart/form-data bodies
 * (RFC 7578) that picks out the form fields a routing decision needs: `model` and
 * `stream` (audio transcriptions and image edits are uploaded this way), `purpose` and
 * `file` (the Files API's upload, whose batch input files are checked line by line).
 *
 * The body may be a prefix of the request (HAProxy inspects at most one buffer): only
 * parts whose closing delimiter lies inside the prefix are trusted; the parser stops
 * at the first incomplete part and says so. The caller decides what an incomplete form
 * means (413 when the model was not in the complete prefix).
 *
 * Anything another parser could read differently is an error rather than a guess:
 * a preamble before the first delimiter, RFC 2231 `name*=` parameters, backslashes in
 * quoted names, a Content-Transfer-Encoding on a field we read, oversized header
 * blocks. Pure: bytes in, struct out; never reads past len.
 */
#ifndef JR_MULTIPART_H
#define JR_MULTIPART_H

#include <stddef.h>

#define MP_BOUNDARY_MAX 70    /* RFC 2046 */
#define MP_HEADERS_MAX 8192   /* bytes of one part's header block */
#define MP_HEADER_LINES_MAX 32

enum mp_result {
	MP_OK = 0,
	MP_MALFORMED = -1,  /* not a well-formed form (or one we refuse to interpret) */
};

/* One form field, by name. Offsets are from the start of the body. */
struct mp_field {
	unsigned count;     /* complete parts with this name */
	int is_file;        /* the (first) part carries a filename */
	size_t offset, len; /* the (first) part's content */
};

struct mp_form {
	struct mp_field model, stream;
	struct mp_field purpose, file; /* the Files API's upload (POST /v1/files) */
	size_t parts;       /* complete parts */
	int complete;       /* the closing delimiter was seen */
	size_t consumed;    /* bytes up to the end of the last complete part's delimiter */
};

/* Extracts the boundary from a Content-Type value ("multipart/form-data; boundary=X",
 * X a token or a quoted string of 1 to 70 characters). Returns its length, copied
 * NUL-terminated into out[MP_BOUNDARY_MAX + 1], or -1 when the type is not
 * multipart/form-data or the boundary is missing or invalid. */
int mp_boundary(const char *ctype, size_t len, char out[MP_BOUNDARY_MAX + 1]);

/* True when the Content-Type value names multipart/form-data (parameters aside). */
int mp_is_form(const char *ctype, size_t len);

/* Reads body[0..len). Returns MP_OK (see out->complete) or MP_MALFORMED. */
int mp_parse(const char *body, size_t len, const char *boundary, size_t blen, struct mp_form *out);

#endif /* JR_MULTIPART_H */
