# JAiRouter agent image (Debian 12). Installs exactly the packages listed in
# packages.txt (the same list scripts/setup and CI use), builds the release
# agent, and runs it. The image also carries the HAProxy configuration in
# /etc/jairouter/haproxy, so the same image can run HAProxy:
#   docker run -e JR_STATS_SOCK=/tmp/haproxy.sock -e JR_SPOA_ADDR=agent:12345 ... \
#       --entrypoint haproxy IMAGE -db -f /etc/jairouter/haproxy/haproxy.cfg \
#       -f /etc/jairouter/haproxy/jairouter.cfg -f /etc/jairouter/haproxy/models.cfg
#
#   docker build -t jairouter .
#   docker run -v $PWD/agent.conf:/etc/jairouter/jairouter-spoa.conf:ro jairouter
# and the adapter sidecar (docs/adapter.md) from the same image:
#   docker run --entrypoint jairouter-adapter IMAGE --listen 0.0.0.0:8090 --report agent:12346
# In a container, set "listen = 0.0.0.0:12345" and "metrics_listen = 0.0.0.0:9180"
# in the agent configuration (the defaults bind 127.0.0.1).
FROM debian:12

ENV DEBIAN_FRONTEND=noninteractive
WORKDIR /src

COPY packages.txt ./
RUN apt-get update \
    && sed -e 's/#.*//' -e 's/[[:space:]]//g' packages.txt | grep -v '^$' \
       | xargs apt-get install -y --no-install-recommends \
    && rm -rf /var/lib/apt/lists/*

COPY Makefile ./
COPY spoa ./spoa
COPY adapters ./adapters
COPY haproxy ./haproxy
RUN make -j"$(nproc)" \
    && install -D -m 0755 build/release/jairouter-spoa /usr/local/bin/jairouter-spoa \
    && install -D -m 0755 build/release/jairouter-adapter /usr/local/bin/jairouter-adapter \
    && install -d /etc/jairouter/haproxy \
    && install -m 0644 haproxy/haproxy.cfg haproxy/jairouter.cfg haproxy/models.cfg haproxy/spoe.conf \
        haproxy/jairouter.lua haproxy/trusted-proxies.lst /etc/jairouter/haproxy/

USER nobody
EXPOSE 12345 9180
ENTRYPOINT ["/usr/local/bin/jairouter-spoa"]
CMD ["-c", "/etc/jairouter/jairouter-spoa.conf"]
