/*
 * eventstream: an incremental decoder for the AWS binary event-stream framing
 * (application/vnd.amazon.eventstream), used by Bedrock's ConverseStream:
 *
 *   total length (u32 BE) | headers length (u32 BE) | prelude CRC-32 (of the 8 bytes before)
 *   headers: { name length (u8) | name | type (u8) | value }...
 *   payload | message CRC-32 (of everything before it)
 *
 * Every message is checked (lengths, both CRCs, header types) before its callback runs;
 * the first bad byte stops the decoder for good (ES_BAD). Bounded: a message may not be
 * larger than ES_MESSAGE_MAX.
 */
#ifndef JR_AD_EVENTSTREAM_H
#define JR_AD_EVENTSTREAM_H

#include <stddef.h>
#include <stdint.h>

#define ES_MESSAGE_MAX (1024 * 1024)
#define ES_PRELUDE 12
#define ES_MIN_MESSAGE 16 /* prelude + message CRC */
#define ES_NAME_MAX 64

enum es_status { ES_OK = 0, ES_BAD = -1, ES_TOO_LONG = -2, ES_STOPPED = -3 };

/* The string headers the decoder reports (others are checked and skipped). */
struct es_message {
	char message_type[ES_NAME_MAX];   /* :message-type ("event", "exception", "error") */
	char event_type[ES_NAME_MAX];     /* :event-type */
	char exception_type[ES_NAME_MAX]; /* :exception-type */
	char error_code[ES_NAME_MAX];     /* :error-code */
	const uint8_t *payload;
	size_t payload_len;
};

typedef int (*es_message_fn)(void *arg, const struct es_message *m);

struct es_decoder {
	es_message_fn fn;
	void *arg;
	uint8_t *buf;
	size_t len, cap;
	int failed;
};

void es_init(struct es_decoder *d, es_message_fn fn, void *arg);
void es_free(struct es_decoder *d);
enum es_status es_feed(struct es_decoder *d, const uint8_t *p, size_t n);
/* End of input: ES_BAD when a partial message is left over. */
enum es_status es_finish(struct es_decoder *d);

/* CRC-32 (IEEE 802.3, as zlib), continued from crc (0 to start). */
uint32_t es_crc32(uint32_t crc, const uint8_t *p, size_t n);

/* Encodes one message with string headers (for tests and the mock's twin in C).
 * Returns the length written, or 0 when it does not fit cap. */
size_t es_encode(uint8_t *out, size_t cap, const char *const *names, const char *const *values,
		 size_t nheaders, const uint8_t *payload, size_t payload_len);

#endif
