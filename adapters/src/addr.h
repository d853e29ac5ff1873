/*
 * addr: the adapter's numeric socket addresses, "HOST:PORT" or "[V6]:PORT" (its report
 * target, its realtime listener), and the port a bound socket got (":0" lets the kernel
 * choose, as the tests do; the adapter prints it).
 */
#ifndef JR_ADAPTER_ADDR_H
#define JR_ADAPTER_ADDR_H

#include <sys/socket.h>

/* Parses a numeric HOST:PORT for a socket of socktype (SOCK_STREAM, SOCK_DGRAM); passive
 * for an address to bind. 0, or -1 when it is not one. */
int addr_parse(const char *hostport, int socktype, int passive, struct sockaddr_storage *ss, socklen_t *len);

/* The port of a bound socket, in host order; -1 when getsockname fails. */
int addr_bound_port(int fd);

#endif /* JR_ADAPTER_ADDR_H */
