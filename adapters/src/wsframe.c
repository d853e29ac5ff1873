/* wsframe: see wsframe.h. */
#include "wsframe.h"

#include "util/xalloc.h"

#include <stdlib.h>
#include <string.h>

#define MSG_KEEP_MAX (64u * 1024) /* a buffer kept between messages; larger ones are freed */

void ws_reader_init(struct ws_reader *r, int masked, size_t max_message)
{
	memset(r, 0, sizeof(*r));
	r->masked = masked;
	r->max_message = max_message;
}

void ws_reader_free(struct ws_reader *r)
{
	free(r->msg);
	r->msg = NULL;
	r->msg_cap = r->msg_fill = 0;
}

int ws_at_boundary(const struct ws_reader *r)
{
	/* A refused header was held back, never forwarded: the output is at a boundary. */
	return !r->in_frame && (r->hdr_len == 0 || r->failed);
}

/* The header's full size once its first two bytes are known. */
static size_t header_size(const uint8_t *h)
{
	size_t len7 = h[1] & 0x7f;

	return 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + ((h[1] & 0x80) ? 4 : 0);
}

/* The payload length and where the mask key starts. -1 when the length is not minimal
 * or has its top bit set. */
static int header_length(const uint8_t *h, uint64_t *len, size_t *key_at)
{
	uint64_t v = h[1] & 0x7f;

	*key_at = 2;
	if (v == 126) {
		v = ((uint64_t)h[2] << 8) | h[3];
		*key_at = 4;
		if (v < 126)
			return -1;
	} else if (v == 127) {
		v = 0;
		for (int i = 0; i < 8; i++)
			v = (v << 8) | h[2 + i];
		*key_at = 10;
		if (v <= 0xffff || (v >> 63))
			return -1;
	}
	*len = v;
	return 0;
}

static int is_control(int op)
{
	return op >= 0x8;
}

/* Checks the sequence rules of a data frame and counts it into its message. */
static int start_data(struct ws_reader *r, uint64_t len)
{
	if (r->opcode == WS_CONT ? !r->in_message : r->in_message)
		return WS_PROTOCOL_ERROR;
	if (r->opcode != WS_CONT) {
		r->in_message = 1;
		r->msg_opcode = r->opcode;
		r->msg_len = 0;
		r->msg_fill = 0;
	}
	if (r->max_message && len > r->max_message - r->msg_len)
		return WS_TOO_BIG;
	r->msg_len += len;
	return 0;
}

/* A whole header: every rule that can be checked before the payload. */
static int start_frame(struct ws_reader *r)
{
	const uint8_t *h = r->hdr;
	size_t key_at;
	uint64_t len;

	r->fin = h[0] >> 7;
	r->opcode = h[0] & 0x0f;
	r->has_mask = h[1] >> 7;
	if ((h[0] & 0x70) || r->has_mask != r->masked || header_length(h, &len, &key_at) < 0)
		return WS_PROTOCOL_ERROR;
	if (r->has_mask)
		memcpy(r->key, h + key_at, 4);
	r->key_pos = 0;
	r->left = len;
	if (is_control(r->opcode)) {
		if (r->opcode > WS_PONG || !r->fin || len > WS_CONTROL_MAX)
			return WS_PROTOCOL_ERROR;
		r->ctl_fill = 0;
		return 0;
	}
	if (r->opcode > WS_BINARY)
		return WS_PROTOCOL_ERROR;
	return start_data(r, len);
}

/* Copies payload bytes, unmasked, where they are kept (a control frame, a text message
 * being collected). */
static void keep_payload(struct ws_reader *r, const uint8_t *p, size_t n)
{
	uint8_t *dst;

	if (is_control(r->opcode)) {
		dst = r->ctl + r->ctl_fill;
		r->ctl_fill += n;
	} else if (r->max_message && r->msg_opcode == WS_TEXT) {
		if (r->msg_fill + n > r->msg_cap) {
			size_t cap = r->msg_cap ? r->msg_cap : 4096;
			while (cap < r->msg_fill + n)
				cap *= 2;
			if (cap > r->max_message)
				cap = r->max_message;
			r->msg = xrealloc(r->msg, cap);
			r->msg_cap = cap;
		}
		dst = r->msg + r->msg_fill;
		r->msg_fill += n;
	} else {
		r->key_pos += n;
		return;
	}
	for (size_t i = 0; i < n; i++)
		dst[i] = r->has_mask ? p[i] ^ r->key[(r->key_pos + i) & 3] : p[i];
	r->key_pos += n;
}

static void end_frame(struct ws_reader *r, const struct ws_sink *sink)
{
	r->in_frame = 0;
	r->frames++;
	if (is_control(r->opcode)) {
		sink->message(sink->arg, (enum ws_opcode)r->opcode, r->ctl, r->ctl_fill);
		return;
	}
	if (!r->fin)
		return;
	r->in_message = 0;
	r->messages++;
	if (r->max_message && r->msg_opcode == WS_TEXT)
		sink->message(sink->arg, WS_TEXT, r->msg, r->msg_fill);
	r->msg_fill = 0;
	if (r->msg_cap > MSG_KEEP_MAX)
		ws_reader_free(r);
}

/* Gathers header bytes. Returns how many it took; *done when the header is whole. */
static size_t take_header(struct ws_reader *r, const uint8_t *p, size_t n, int *done)
{
	size_t need = r->hdr_len < 2 ? 2 : header_size(r->hdr), take;

	take = need - r->hdr_len < n ? need - r->hdr_len : n;
	memcpy(r->hdr + r->hdr_len, p, take);
	r->hdr_len += take;
	*done = r->hdr_len >= 2 && r->hdr_len == header_size(r->hdr);
	return take;
}

static int fail(struct ws_reader *r, int code)
{
	r->failed = code;
	return code;
}

int ws_feed(struct ws_reader *r, const uint8_t *p, size_t n, const struct ws_sink *sink)
{
	int done, rc;

	if (r->failed)
		return r->failed;
	while (n > 0) {
		if (!r->in_frame) {
			size_t took = take_header(r, p, n, &done);
			p += took, n -= took;
			if (!done)
				continue;
			if ((rc = start_frame(r)) != 0)
				return fail(r, rc);
			sink->forward(sink->arg, r->hdr, r->hdr_len);
			r->hdr_len = 0;
			r->in_frame = 1;
		} else {
			size_t take = r->left < n ? (size_t)r->left : n;
			sink->forward(sink->arg, p, take);
			keep_payload(r, p, take);
			r->left -= take;
			p += take, n -= take;
		}
		if (r->in_frame && r->left == 0)
			end_frame(r, sink);
	}
	return 0;
}

size_t ws_close_frame(uint8_t out[8], uint16_t code, const uint8_t *key)
{
	uint8_t payload[2] = { (uint8_t)(code >> 8), (uint8_t)(code & 0xff) };

	out[0] = 0x80 | WS_CLOSE;
	out[1] = key ? 0x82 : 0x02;
	if (!key) {
		memcpy(out + 2, payload, 2);
		return 4;
	}
	memcpy(out + 2, key, 4);
	out[6] = payload[0] ^ key[0];
	out[7] = payload[1] ^ key[1];
	return 8;
}
