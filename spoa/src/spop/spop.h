/*
 * spop: the SPOP 2.0 codec (HAProxy's Stream Processing Offload Protocol).
 *
 * Pure module: bytes in, structs out, structs in, bytes out. No sockets, no clock, no
 * globals, no allocation. Every decoder takes (pointer, length) and never reads past it.
 * Decoded strings point into the caller's buffer (zero copy); they live as long as it does.
 *
 * Return contract of the decoders, as in HAProxy's own parsers:
 *   > 0  bytes consumed (or "one item produced" for the iterators, see each function),
 *     0  need more input / end of list,
 *   < 0  error: the negated SPOP status code (enum spop_status) to send in a DISCONNECT.
 *
 * Wire facts (research/spoe.md §1): frames are <LENGTH:4 BE> <TYPE:1> <FLAGS:4 BE>
 * <STREAM-ID:varint> <FRAME-ID:varint> <PAYLOAD>; varints are HAProxy's "peers" encoding
 * (not LEB128, no zig-zag), at most 10 bytes for 64 bits; names carry no type byte.
 */
#ifndef JR_SPOP_H
#define JR_SPOP_H

#include <stddef.h>
#include <stdint.h>

/* Smallest legal frame body: type(1) + flags(4) + sid(1) + fid(1). */
#define SPOP_FRAME_MIN_LEN 7u
/* Largest frame this agent accepts before HELLO negotiated a size (HAProxy proposes
 * tune.bufsize - 4, 16380 by default). Also the cap for any later negotiation. */
#define SPOP_FRAME_HARD_MAX (1u << 20)
/* HAProxy refuses agent max-frame-size below this. */
#define SPOP_FRAME_MIN_NEGOTIATED 256u
#define SPOP_VARINT_MAX_LEN 10u

enum spop_frame_type {
	SPOP_FRAME_UNSET = 0,
	SPOP_FRAME_HAPROXY_HELLO = 1,
	SPOP_FRAME_HAPROXY_DISCONNECT = 2,
	SPOP_FRAME_NOTIFY = 3,
	SPOP_FRAME_AGENT_HELLO = 101,
	SPOP_FRAME_AGENT_DISCONNECT = 102,
	SPOP_FRAME_ACK = 103,
};

#define SPOP_FLAG_FIN   0x00000001u
#define SPOP_FLAG_ABORT 0x00000002u

/* Status codes carried by DISCONNECT frames (SPOE.txt §3.5). */
enum spop_status {
	SPOP_ST_NORMAL = 0,
	SPOP_ST_IO = 1,
	SPOP_ST_TIMEOUT = 2,
	SPOP_ST_TOO_BIG = 3,
	SPOP_ST_INVALID = 4,
	SPOP_ST_NO_VSN = 5,
	SPOP_ST_NO_FRAME_SIZE = 6,
	SPOP_ST_NO_CAP = 7,
	SPOP_ST_BAD_VSN = 8,
	SPOP_ST_BAD_FRAME_SIZE = 9,
	SPOP_ST_FRAG_NOT_SUPPORTED = 10,
	SPOP_ST_INTERLACED_FRAMES = 11,
	SPOP_ST_FRAMEID_NOTFOUND = 12,
	SPOP_ST_RES = 13,
	SPOP_ST_UNKNOWN = 99,
};

/* Human-readable text for a status (never NULL). */
const char *spop_status_str(int status);

enum spop_data_type {
	SPOP_DATA_NULL = 0,
	SPOP_DATA_BOOL = 1,
	SPOP_DATA_INT32 = 2,
	SPOP_DATA_UINT32 = 3,
	SPOP_DATA_INT64 = 4,
	SPOP_DATA_UINT64 = 5,
	SPOP_DATA_IPV4 = 6,
	SPOP_DATA_IPV6 = 7,
	SPOP_DATA_STRING = 8,
	SPOP_DATA_BINARY = 9,
};

/* One typed value. For STRING and BINARY, str.ptr points into the decoded buffer. */
struct spop_data {
	enum spop_data_type type;
	union {
		int boolean;
		int32_t i32;
		uint32_t u32;
		int64_t i64;
		uint64_t u64;
		uint8_t ipv4[4];
		uint8_t ipv6[16];
		struct {
			const uint8_t *ptr;
			size_t len;
		} str;
	} u;
};

/* ---- varints -------------------------------------------------------------------- */

/* Encodes v into buf[0..cap). Returns bytes written (1..10) or -1 when cap is too small. */
int spop_varint_encode(uint64_t v, uint8_t *buf, size_t cap);

/* Decodes one varint from p[0..len). Returns bytes used (1..10), 0 if the input ends
 * inside the varint, or -SPOP_ST_INVALID if it runs past 10 bytes or overflows 64 bits. */
int spop_varint_decode(const uint8_t *p, size_t len, uint64_t *out);

/* ---- frames --------------------------------------------------------------------- */

/* Reads the 4-byte length prefix. avail is how many bytes the caller has buffered.
 * Returns 0 if fewer than 4 bytes are available; -SPOP_ST_INVALID if the length is below
 * SPOP_FRAME_MIN_LEN; -SPOP_ST_TOO_BIG if above max_frame; otherwise 4 and *len is set.
 * Callers must call this before reading or allocating anything for the frame. */
int spop_frame_length(const uint8_t *p, size_t avail, uint32_t max_frame, uint32_t *len);

struct spop_frame {
	enum spop_frame_type type;
	uint32_t flags;
	uint64_t stream_id;
	uint64_t frame_id;
	const uint8_t *payload; /* points into the decoded buffer */
	size_t payload_len;
};

/* Decodes a frame body (the bytes after the 4-byte length, exactly len of them).
 * Returns 0 on success or a negative status. Unknown frame types decode fine (the caller
 * decides); flags are returned as is. */
int spop_frame_decode(const uint8_t *body, size_t len, struct spop_frame *f);

/* ---- lists ----------------------------------------------------------------------- */

/* A bounded cursor over a payload or a sub-list. */
struct spop_reader {
	const uint8_t *p;
	const uint8_t *end;
};

void spop_reader_init(struct spop_reader *r, const uint8_t *p, size_t len);

/* Decodes one TYPED-DATA. Returns bytes used (>0), or a negative status on truncated or
 * invalid input (unknown type id, length past the end). Never returns 0. */
int spop_data_decode(struct spop_reader *r, struct spop_data *d);

struct spop_kv {
	const uint8_t *name;
	size_t name_len;
	struct spop_data value;
};

/* Next item of a KV-LIST. Returns 1 with *kv filled, 0 at the end of the list, or a
 * negative status on malformed input. */
int spop_kv_next(struct spop_reader *r, struct spop_kv *kv);

struct spop_msg {
	const uint8_t *name;
	size_t name_len;
	unsigned nargs;
	struct spop_reader args; /* cursor over exactly nargs KV items: use spop_kv_next */
};

/* Next message of a LIST-OF-MESSAGES (NOTIFY payload). The arguments are validated and
 * skipped so the cursor lands on the next message. Returns 1, 0 at the end, or < 0. */
int spop_msg_next(struct spop_reader *r, struct spop_msg *m);

/* True when the name equals the NUL-terminated literal (length-exact, not a prefix). */
int spop_name_eq(const uint8_t *name, size_t name_len, const char *lit);

/* ---- HELLO and DISCONNECT payloads ------------------------------------------------ */

struct spop_hello {
	int has_version;        /* "supported-versions" present */
	int version_ok;         /* it lists "2.0" (the list is comma separated, spaces allowed) */
	int has_max_frame_size;
	uint32_t max_frame_size;
	int has_capabilities;
	int cap_pipelining;     /* HAProxy offers pipelining */
	int healthcheck;        /* "healthcheck" true: answer HELLO, then close */
	const uint8_t *engine_id;
	size_t engine_id_len;
};

/* Parses a HAPROXY-HELLO payload. Unknown items are skipped. Returns 0 or < 0 on a
 * malformed KV-LIST. Semantic checks (version, size) are the caller's, using the flags. */
int spop_hello_parse(const uint8_t *payload, size_t len, struct spop_hello *h);

struct spop_disconnect {
	uint32_t status_code;
	const uint8_t *message;
	size_t message_len;
};

/* Parses a HAPROXY-DISCONNECT payload; missing items leave status 0 / empty message. */
int spop_disconnect_parse(const uint8_t *payload, size_t len, struct spop_disconnect *d);

/* ---- encoding ---------------------------------------------------------------------- */

/* Builds one frame into a caller buffer. Any write that does not fit sets overflow and
 * further writes are ignored; spop_frame_end() then fails. Frames are always built whole
 * (length prefix included) so the caller can send them with a single write. */
struct spop_writer {
	uint8_t *buf;
	size_t cap;
	size_t len;
	int overflow;
};

void spop_writer_init(struct spop_writer *w, uint8_t *buf, size_t cap);

/* Starts a frame: reserves the 4-byte length and writes type, flags, stream and frame id. */
void spop_frame_begin(struct spop_writer *w, enum spop_frame_type type, uint32_t flags,
		      uint64_t stream_id, uint64_t frame_id);

/* Patches the length. Returns the total frame size (prefix included) or -1 on overflow.
 * max_frame bounds the body length (the negotiated size). */
int spop_frame_end(struct spop_writer *w, uint32_t max_frame);

void spop_put_data(struct spop_writer *w, const struct spop_data *d);
void spop_put_kv(struct spop_writer *w, const char *name, const struct spop_data *d);
void spop_put_kv_string(struct spop_writer *w, const char *name, const char *s, size_t len);
void spop_put_kv_uint32(struct spop_writer *w, const char *name, uint32_t v);

enum spop_scope {
	SPOP_SCOPE_PROC = 0,
	SPOP_SCOPE_SESS = 1,
	SPOP_SCOPE_TXN = 2,
	SPOP_SCOPE_REQ = 3,
	SPOP_SCOPE_RES = 4,
};

/* ACK actions. */
void spop_action_set_var(struct spop_writer *w, enum spop_scope scope, const char *name,
			 const struct spop_data *value);
void spop_action_unset_var(struct spop_writer *w, enum spop_scope scope, const char *name);

/* Convenience constructors for spop_data. */
struct spop_data spop_str(const char *s, size_t len);
struct spop_data spop_cstr(const char *s);
struct spop_data spop_int64(int64_t v);
struct spop_data spop_bool(int v);
struct spop_data spop_uint32(uint32_t v);

/* Whole frames the agent sends. Each returns the frame size or -1 if buf is too small.
 * AGENT-HELLO: version "2.0", the given max-frame-size, capabilities as given ("" allowed).
 * AGENT-DISCONNECT: status code and message (truncated to 255 bytes: HAProxy 2.6 limit). */
int spop_agent_hello_encode(uint8_t *buf, size_t cap, uint32_t max_frame_size,
			    const char *capabilities);
int spop_agent_disconnect_encode(uint8_t *buf, size_t cap, uint32_t status, const char *message);

#endif /* JR_SPOP_H */
