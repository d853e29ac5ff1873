/*
 * util/addr: socket addresses as operators write them in the configuration.
 */
#ifndef JR_UTIL_ADDR_H
#define JR_UTIL_ADDR_H

#include <sys/socket.h>

/* Resolves "host:port" or "[v6]:port" (port 0 picks a free one) for a socket of type
 * socktype (SOCK_STREAM, SOCK_DGRAM). Numeric ports only. Returns 0 or -1. */
int addr_resolve(const char *addr, int socktype, struct sockaddr_storage *ss, socklen_t *sslen);

/* The same for a numeric host too (an address, never a name to look up). */
int addr_resolve_numeric(const char *addr, int socktype, struct sockaddr_storage *ss, socklen_t *sslen);

/* The port a bound socket got, in host order (":0" lets the kernel choose); 0 when
 * unknown. */
int addr_bound_port(int fd);

#endif /* JR_UTIL_ADDR_H */
