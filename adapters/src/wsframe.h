/*
 * wsframe: an incremental reader of one direction of a WebSocket connection (RFC 6455,
 * section 5), for the Realtime API relay (realtime.h). Bytes arrive in arbitrary pieces;
 * the reader hands every byte that may go on to `forward` (a frame's header once it is
 * complete and valid, its payload as it comes) and every complete text message to
 * `message` (fragments joined; control frames, which may come between fragments, are
 * handed over as their own messages).
 *
 * Nothing of a frame that breaks a rule is forwarded: the reader stops at its first
 * byte, so the relay can still write a close frame at a frame boundary. Rules: the mask
 * bit as the direction requires (client frames masked, server frames not); no RSV bit
 * (no extension is negotiated: the relay removes Sec-WebSocket-Extensions); known
 * opcodes; control frames unfragmented with at most 125 bytes; continuation frames only
 * inside a message and a new message only after the last one ended; minimal lengths
 * with the top bit clear. A message longer than max_message is refused with 1009 (the
 * reader never holds more than max_message bytes of it); 0 means no limit and no text
 * is collected (the reader then only checks the framing).
 *
 * The contract of ws_feed: 0 = all bytes used (more may come), >0 = a close code
 * (1002 protocol error, 1009 too big) and the reader stops for good.
 */
#ifndef JR_AD_WSFRAME_H
#define JR_AD_WSFRAME_H

#include <stddef.h>
#include <stdint.h>

enum ws_opcode {
	WS_CONT = 0x0, WS_TEXT = 0x1, WS_BINARY = 0x2,
	WS_CLOSE = 0x8, WS_PING = 0x9, WS_PONG = 0xA,
};

enum ws_close_code { WS_PROTOCOL_ERROR = 1002, WS_TOO_BIG = 1009 };

#define WS_HEADER_MAX 14   /* 2 + 8 (length) + 4 (mask key) */
#define WS_CONTROL_MAX 125

struct ws_sink {
	/* Bytes that may go on to the peer, unchanged. */
	void (*forward)(void *arg, const uint8_t *p, size_t n);
	/* A complete text message (unmasked), or a control frame's payload. */
	void (*message)(void *arg, enum ws_opcode op, const uint8_t *p, size_t n);
	void *arg;
};

struct ws_reader {
	int masked;          /* 1: frames must be masked (client to server), 0: must not */
	size_t max_message;  /* 0: no limit, no text collected */
	uint8_t hdr[WS_HEADER_MAX];
	size_t hdr_len;      /* header bytes held (a header is forwarded once whole) */
	uint64_t left;       /* payload bytes of the current frame still to come */
	int in_frame;        /* between a forwarded header and the frame's last byte */
	int opcode, fin, has_mask;
	uint8_t key[4];
	uint64_t key_pos;
	int in_message;      /* a data message started and its last frame has not come */
	int msg_opcode;      /* WS_TEXT or WS_BINARY */
	uint64_t msg_len;    /* bytes of the message so far (for max_message) */
	uint8_t *msg;        /* the text message so far (max_message > 0) */
	size_t msg_fill, msg_cap;
	uint8_t ctl[WS_CONTROL_MAX];
	size_t ctl_fill;
	int failed;          /* the close code once stopped */
	uint64_t frames, messages;
};

void ws_reader_init(struct ws_reader *r, int masked, size_t max_message);
void ws_reader_free(struct ws_reader *r);
int ws_feed(struct ws_reader *r, const uint8_t *p, size_t n, const struct ws_sink *sink);
/* 1 when the reader is between frames (a frame written now would not cut one). */
int ws_at_boundary(const struct ws_reader *r);

/* Writes a close frame with code (and no reason) into out (8 bytes: masked with key when
 * key is not NULL, as a client must). Returns its length. */
size_t ws_close_frame(uint8_t out[8], uint16_t code, const uint8_t *key);

#endif
