# JAiRouter: one image for the three processes of a gateway node (Debian 12).
#
#   build stage    compilers and -dev packages; `make` builds the release agent and adapter
#   runtime stage  only what runs: jairouter-spoa, jairouter-adapter, HAProxy with every file
#                  the gateway's configuration loads (/etc/jairouter/haproxy), jairouterctl and
#                  jairouter-migrate with psql and the migrations, curl for the
#                  health check. User "jairouter" (uid 10001), never root.
#
# One image, not one per component: the three share every library, are released together and
# must agree on one version of the HAProxy <-> agent contract; choose the process with the
# command. docs/deploy.md ("Containers") has the whole procedure.
#
#   agent (default)  the default command, jairouter-spoa -c /etc/jairouter/jairouter-spoa.conf:
#                    mount that file. The three processes sharing one network namespace
#                    (a pod, --network host) keep its 127.0.0.1 addresses; in separate ones
#                    set listen, metrics_listen, report_listen and admin_api_listen to 0.0.0.0
#   adapter          jairouter-adapter --listen 0.0.0.0:8090 --report AGENT:12346
#                    [--realtime-listen 0.0.0.0:8091] (Realtime API sessions, JR_ADAPTER_RT_ADDR)
#   HAProxy          haproxy -W -db -dMglobal -f /etc/jairouter/haproxy/haproxy.cfg
#                         -f /etc/jairouter/haproxy/jairouter.cfg -f /etc/jairouter/haproxy/models.cfg
#                    (haproxy.cfg and models.cfg are the demo's: mount your own over them)
#                    stop it with SIGUSR1 (graceful; SIGTERM is its hard stop)
#   migrations       jairouter-migrate, with JAIROUTER_DATABASE set
#   administration   jairouterctl ..., with JAIROUTER_DATABASE set
#
# Ports: 12345 SPOP, 12346 report lines (TCP and UDP), 9180 agent metrics, /healthz and
# /readyz; 8090 adapter (/health, /metrics); 8080 HAProxy's client listener and 8404 its
# stats page and Prometheus /metrics (JR_LISTEN, JR_STATS_LISTEN).
# HEALTHCHECK: GET $JR_HEALTH_URL (the agent's /healthz by default; the adapter's /health
# or HAProxy's stats page for the other roles).
#
#   buildah bud --format docker --layers -t jairouter .      (or: docker build -t jairouter .)
# tests/image/run.sh builds it and serves a chat completion through it (scripts/test, suite image).
FROM debian:12 AS build

ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
    && apt-get install -y --no-install-recommends make gcc libc6-dev pkg-config \
       libevent-dev libpq-dev libssl-dev libjansson-dev libhiredis-dev libcurl4-openssl-dev \
       postgresql-client-15 \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY Makefile ./
COPY spoa ./spoa
COPY adapters ./adapters
RUN make -j"$(nproc)" MODE=release \
    && strip build/release/jairouter-spoa build/release/jairouter-adapter

FROM debian:12

ARG DEBIAN_FRONTEND=noninteractive
# The shared libraries of the two binaries (the run-time halves of the build stage's -dev
# packages) and of psql, HAProxy, curl for HEALTHCHECK. psql itself comes from the build
# stage: Debian's postgresql-client package would add 46 MB of Perl for its version wrapper.
RUN apt-get update \
    && apt-get install -y --no-install-recommends haproxy curl ca-certificates \
       libevent-2.1-7 libevent-pthreads-2.1-7 libevent-openssl-2.1-7 libpq5 libssl3 libjansson4 libhiredis0.14 libcurl4 \
       libreadline8 liblz4-1 libzstd1 zlib1g \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log \
    && useradd --system --uid 10001 --user-group --home-dir /nonexistent --no-create-home \
       --shell /usr/sbin/nologin jairouter \
    && install -d -o jairouter -g jairouter -m 0750 /run/jairouter

COPY --from=build /src/build/release/jairouter-spoa /src/build/release/jairouter-adapter \
     /usr/lib/postgresql/15/bin/psql /usr/local/bin/
COPY --chmod=0755 scripts/jairouterctl /usr/local/bin/jairouterctl
# jairouterctl's command files (scripts/lib/ctl-*.sh), where it looks for them when
# they are not next to it in lib/.
COPY scripts/lib/ctl-*.sh /usr/local/lib/jairouter/
COPY --chmod=0755 scripts/migrate /usr/local/bin/jairouter-migrate
COPY --chmod=0755 deploy/container/jairouter-healthcheck /usr/local/bin/jairouter-healthcheck
COPY sql /usr/share/jairouter/sql
COPY haproxy /etc/jairouter/haproxy

# MALLOC_*: glibc keeps HAProxy's 1 MiB buffers instead of returning each one to the kernel
# (docs/haproxy.md, "Memory allocator"); harmless for the agent and the adapter.
ENV JAIROUTER_SQL_DIR=/usr/share/jairouter/sql \
    JAIROUTER_SPOA=/usr/local/bin/jairouter-spoa \
    JR_HAPROXY_DIR=/etc/jairouter/haproxy \
    JR_STATS_SOCK=/run/jairouter/haproxy.sock \
    JR_LISTEN=0.0.0.0:8080 \
    JR_STATS_LISTEN=0.0.0.0:8404 \
    JR_HEALTH_URL=http://127.0.0.1:9180/healthz \
    MALLOC_MMAP_THRESHOLD_=16777216 \
    MALLOC_TRIM_THRESHOLD_=33554432

LABEL org.opencontainers.image.title="JAiRouter" \
      org.opencontainers.image.description="AI model gateway: HAProxy, the jairouter-spoa policy agent and the jairouter-adapter sidecar" \
      org.opencontainers.image.documentation="docs/deploy.md" \
      org.opencontainers.image.base.name="debian:12"

USER jairouter
WORKDIR /
EXPOSE 12345/tcp 12346/tcp 12346/udp 9180/tcp 8090/tcp 8080/tcp 8404/tcp
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/jairouter-healthcheck"]
CMD ["/usr/local/bin/jairouter-spoa", "-c", "/etc/jairouter/jairouter-spoa.conf"]
