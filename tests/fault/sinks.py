#!/usr/bin/env python3
"""Misbehaving peers for the fault suite's side-channel scenarios (tests/fault/channels.bats).

  sinks.py blackhole PORT        a TCP listener on 127.0.0.1:PORT that accepts every
                                 connection and never reads from it (an OTLP collector
                                 that black-holes); SIGTERM closes it
  sinks.py fifo PATH OUT         holds the FIFO PATH open for reading and reads nothing (a
                                 stalled access log target) until SIGUSR1, then copies
                                 everything to OUT
  sinks.py stall HOST:PORT N     opens N connections that each send half an HTTP request
                                 and stall (slow clients); SIGTERM closes them

Each prints one line when it is in place ("LISTENING", "OPEN", "HELD N"), then waits.
"""
import os
import select
import signal
import socket
import sys
import time


def ready(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def blackhole(port):
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen(128)
    held = []
    ready("LISTENING")
    while True:
        conn, _ = srv.accept()
        held.append(conn)  # kept open, never read


def fifo(path, out):
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    copying = []
    signal.signal(signal.SIGUSR1, lambda *_: copying.append(True))
    ready("OPEN")
    while not copying:
        time.sleep(0.05)
    with open(out, "ab", buffering=0) as f:
        while True:
            select.select([fd], [], [], 0.2)
            try:
                data = os.read(fd, 65536)
            except BlockingIOError:
                continue
            if data:
                f.write(data)
            else:
                time.sleep(0.05)  # no writer at the moment


def stall(addr, n):
    host, port = addr.rsplit(":", 1)
    held = []
    for _ in range(n):
        s = socket.create_connection((host, int(port)))
        s.sendall(b"GET /jairouter/admin/v1/me HTTP/1.1\r\nHost: " + host.encode() + b"\r\n")
        held.append(s)
    ready("HELD %d" % len(held))
    while True:
        time.sleep(1)


def main():
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    mode = sys.argv[1]
    if mode == "blackhole":
        blackhole(int(sys.argv[2]))
    elif mode == "fifo":
        fifo(sys.argv[2], sys.argv[3])
    elif mode == "stall":
        stall(sys.argv[2], int(sys.argv[3]))
    else:
        sys.exit("sinks.py: unknown mode " + mode)


if __name__ == "__main__":
    main()
