/*
 * ports: loopback ports for the tests that start real servers (the agent's admin endpoint,
 * redis-server): one nothing listens on, whether one accepts connections yet, a
 * connection to one and the parts of an HTTP answer read from it.
 */
#ifndef JR_TEST_PORTS_H
#define JR_TEST_PORTS_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

/* A loopback port nothing listens on right now (the kernel's choice for port 0). */
static inline int fx_free_port(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &len) < 0)
		abort();
	port = ntohs(sa.sin_port);
	close(fd);
	return port;
}

/* Whether something accepts TCP connections on the loopback port. */
static inline int fx_port_open(int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int fd = socket(AF_INET, SOCK_STREAM, 0), ok;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return ok;
}

/* A TCP connection to the loopback port whose reads time out after 3 s; -1 if none. */
static inline int fx_connect(int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	struct timeval tv = { 3, 0 };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0)
		return -1;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* The HTTP answer resp's status (-1 if it has none); its body copied into body. */
static inline int fx_http_answer(const char *resp, char *body, size_t cap)
{
	const char *b = strstr(resp, "\r\n\r\n");
	int status = -1;

	sscanf(resp, "HTTP/1.%*d %d", &status);
	snprintf(body, cap, "%s", b ? b + 4 : "");
	return status;
}

#endif /* JR_TEST_PORTS_H */
