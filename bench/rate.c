/*
 * Benchmark only (scripts/bench): a fixed-rate HTTP/1.1 client.
 *
 * wrk sends as fast as the server answers; an operator's fleet runs at a steady,
 * moderate rate most of the time, where the cost per request is dominated by wake-ups,
 * not by batching. This client sends one request every 1/RATE seconds (open loop: the
 * schedule does not wait for answers) over up to CONNS keep-alive connections, each
 * carrying at most one request at a time.
 *
 *   rate HOST PORT RATE SECONDS CONNS REQUEST_FILE
 *
 * REQUEST_FILE holds the whole request, headers and body, sent as is. Answers must
 * carry a Content-Length (no chunked encoding). Bounded: at most RATE * SECONDS
 * requests, RATE <= 100000, SECONDS <= 600, CONNS <= 1024, and it stops 5 s after the
 * schedule ends whatever is still in flight. A request that is due while every
 * connection is busy is sent when one frees up; one sent more than 1 ms after its time
 * is counted as "late" (the client or the server could not keep the rate).
 *
 * Prints one line:
 *   RATE sent=N ok=N non2xx=N errors=N late=N p50_us=N p99_us=N max_us=N duration_us=N
 * and exits 0 when every request got a 2xx answer, 1 otherwise, 2 on bad usage.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS 1024
#define MAX_RATE 100000L
#define MAX_SECONDS 600L
#define RESP_MAX 65536 /* an answer larger than this is an error */

struct conn {
	int fd;
	int busy;
	uint64_t sent_at;      /* µs, monotonic */
	size_t wpos;           /* bytes of the request written */
	char buf[RESP_MAX];
	size_t len;
};

static const char *req;
static size_t req_len;
static struct sockaddr_in addr;

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static int conn_open(struct conn *c)
{
	int one = 1;

	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return -1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(c->fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 && errno != EINPROGRESS) {
		close(c->fd);
		c->fd = -1;
		return -1;
	}
	c->busy = 0;
	c->len = 0;
	return 0;
}

static void conn_close(struct conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->busy = 0;
	c->len = 0;
}

/* Returns the status when buf holds a whole answer (and its length in *total), 0 when
 * more is needed, -1 when it cannot be parsed. */
static int parse(const char *buf, size_t len, size_t *total)
{
	const char *end = memmem(buf, len, "\r\n\r\n", 4);
	const char *p;
	long cl = -1;
	int status;

	if (!end)
		return len >= RESP_MAX ? -1 : 0;
	if (len < 12 || strncmp(buf, "HTTP/1.", 7) != 0)
		return -1;
	status = atoi(buf + 9);
	for (p = buf; p && p < end; p = memchr(p, '\n', (size_t)(end - p))) {
		p++;
		if ((size_t)(end - p) > 15 && strncasecmp(p, "content-length:", 15) == 0)
			cl = strtol(p + 15, NULL, 10);
	}
	if (cl < 0)
		return -1;
	if ((size_t)(end + 4 - buf) + (size_t)cl > RESP_MAX)
		return -1;
	if (len < (size_t)(end + 4 - buf) + (size_t)cl)
		return 0;
	*total = (size_t)(end + 4 - buf) + (size_t)cl;
	return status;
}

/* The first few failures are told on stderr, to say what went wrong. */
static int told;

static void tell(const char *what, const char *detail, size_t len)
{
	if (told++ >= 5)
		return;
	fprintf(stderr, "rate: %s: %.*s\n", what, (int)(len > 200 ? 200 : len), detail);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static long arg_long(const char *s, long lo, long hi, const char *name)
{
	char *e;
	long v = strtol(s, &e, 10);

	if (*s == '\0' || *e != '\0' || v < lo || v > hi) {
		fprintf(stderr, "rate: %s must be an integer in [%ld, %ld]\n", name, lo, hi);
		exit(2);
	}
	return v;
}

static int try_write(struct conn *c)
{
	while (c->wpos < req_len) {
		ssize_t n = send(c->fd, req + c->wpos, req_len - c->wpos, MSG_NOSIGNAL);

		if (n < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOTCONN ? 0 : -1;
		c->wpos += (size_t)n;
	}
	return 0;
}

int main(int argc, char **argv)
{
	long next_conn = 0;
	long rate, seconds, nconns, total, sent = 0, ok = 0, non2xx = 0, errors = 0, late = 0,
					 done = 0;
	struct conn *conns;
	struct pollfd *pfd;
	uint64_t *lat, start, interval_ns, next_ns, stop_at;
	FILE *f;
	struct stat st;
	char *buf;

	if (argc != 7) {
		fprintf(stderr, "usage: rate HOST PORT RATE SECONDS CONNS REQUEST_FILE\n");
		return 2;
	}
	memset(&addr, 0, sizeof(addr));
	addr.sin_family = AF_INET;
	if (inet_pton(AF_INET, argv[1], &addr.sin_addr) != 1) {
		fprintf(stderr, "rate: HOST must be an IPv4 address\n");
		return 2;
	}
	addr.sin_port = htons((uint16_t)arg_long(argv[2], 1, 65535, "PORT"));
	rate = arg_long(argv[3], 1, MAX_RATE, "RATE");
	seconds = arg_long(argv[4], 1, MAX_SECONDS, "SECONDS");
	nconns = arg_long(argv[5], 1, MAX_CONNS, "CONNS");
	f = fopen(argv[6], "rb");
	if (!f || fstat(fileno(f), &st) != 0 || st.st_size <= 0 || st.st_size > 1 << 20) {
		fprintf(stderr, "rate: cannot read %s (or it is empty or over 1 MiB)\n", argv[6]);
		return 2;
	}
	buf = malloc((size_t)st.st_size);
	if (!buf || fread(buf, 1, (size_t)st.st_size, f) != (size_t)st.st_size) {
		fprintf(stderr, "rate: cannot read %s\n", argv[6]);
		return 2;
	}
	fclose(f);
	req = buf;
	req_len = (size_t)st.st_size;

	total = rate * seconds;
	conns = calloc((size_t)nconns, sizeof(*conns));
	pfd = calloc((size_t)nconns, sizeof(*pfd));
	lat = calloc((size_t)total, sizeof(*lat));
	if (!conns || !pfd || !lat) {
		fprintf(stderr, "rate: out of memory\n");
		return 2;
	}
	for (long i = 0; i < nconns; i++)
		if (conn_open(&conns[i]) != 0) {
			fprintf(stderr, "rate: connect: %s\n", strerror(errno));
			return 1;
		}

	interval_ns = 1000000000u / (uint64_t)rate;
	start = now_us();
	next_ns = 0;
	stop_at = start + (uint64_t)seconds * 1000000u + 5000000u;
	while (done < total && now_us() < stop_at) {
		uint64_t now = now_us();
		int timeout_ms;

		/* Send every request that is due, on idle connections. */
		while (sent < total && (uint64_t)start * 1000u + next_ns <= now * 1000u) {
			struct conn *c = NULL;

			/* Round robin, so that no connection idles long enough for a server's
			 * keep-alive timeout. */
			for (long k = 0; k < nconns; k++) {
				long i = (next_conn + k) % nconns;

				if (!conns[i].busy) {
					c = &conns[i];
					next_conn = i + 1;
					break;
				}
			}
			if (!c)
				break; /* sent when a connection frees up */
			if (now > start + next_ns / 1000u + 1000u)
				late++; /* more than 1 ms behind its schedule */
			if (c->fd < 0 && conn_open(c) != 0) {
				errors++;
				done++;
				sent++;
				next_ns += interval_ns;
				continue;
			}
			c->busy = 1;
			c->wpos = 0;
			c->len = 0;
			c->sent_at = now;
			if (try_write(c) != 0) {
				conn_close(c);
				errors++;
				done++;
			}
			sent++;
			next_ns += interval_ns;
		}
		for (long i = 0; i < nconns; i++) {
			/* Idle ones too: a server may close them (its keep-alive timeout). */
			pfd[i].fd = conns[i].fd;
			pfd[i].events = POLLIN | (conns[i].busy && conns[i].wpos < req_len ? POLLOUT : 0);
			pfd[i].revents = 0;
		}
		if (sent < total) {
			uint64_t due = start + next_ns / 1000u;
			uint64_t t = now_us();

			timeout_ms = due > t ? (int)((due - t + 999) / 1000) : 0;
		} else {
			timeout_ms = 100;
		}
		if (poll(pfd, (nfds_t)nconns, timeout_ms) < 0 && errno != EINTR) {
			perror("rate: poll");
			return 1;
		}
		for (long i = 0; i < nconns; i++) {
			struct conn *c = &conns[i];
			size_t used;
			int status;
			ssize_t n;

			if (!pfd[i].revents)
				continue;
			if (!c->busy) {
				/* Whatever an idle connection says (a close, a timeout answer), it is
				 * closed and opened again when next used. */
				conn_close(c);
				continue;
			}
			if ((pfd[i].revents & POLLOUT) && try_write(c) != 0) {
				conn_close(c);
				errors++;
				done++;
				continue;
			}
			if (!(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			n = recv(c->fd, c->buf + c->len, RESP_MAX - c->len, 0);
			if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
				continue;
			if (n <= 0) {
				tell(n == 0 ? "connection closed by the server" : "recv", strerror(errno),
				     strlen(strerror(errno)));
				conn_close(c);
				errors++;
				done++;
				continue;
			}
			c->len += (size_t)n;
			status = parse(c->buf, c->len, &used);
			if (status == 0)
				continue;
			if (status < 0) {
				tell("unparsable answer", c->buf, c->len);
				conn_close(c);
				errors++;
				done++;
				continue;
			}
			lat[ok + non2xx] = now_us() - c->sent_at;
			if (status >= 200 && status < 300)
				ok++;
			else {
				non2xx++;
				tell("non-2xx answer", c->buf, used);
			}
			done++;
			c->busy = 0;
			c->len = 0;
		}
	}

	{
		long n = ok + non2xx;
		uint64_t p50 = 0, p99 = 0, max = 0;

		if (n > 0) {
			qsort(lat, (size_t)n, sizeof(*lat), cmp_u64);
			p50 = lat[(n - 1) / 2];
			p99 = lat[(long)((double)(n - 1) * 0.99)];
			max = lat[n - 1];
		}
		errors += sent - done; /* still in flight at the stop */
		printf("RATE sent=%ld ok=%ld non2xx=%ld errors=%ld late=%ld p50_us=%llu p99_us=%llu "
		       "max_us=%llu duration_us=%llu\n",
		       sent, ok, non2xx, errors, late, (unsigned long long)p50,
		       (unsigned long long)p99, (unsigned long long)max,
		       (unsigned long long)(now_us() - start));
	}
	for (long i = 0; i < nconns; i++)
		conn_close(&conns[i]);
	free(conns);
	free(pfd);
	free(lat);
	free(buf);
	return ok == total ? 0 : 1;
}
