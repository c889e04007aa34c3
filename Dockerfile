# mim in a container: `docker build -t mim .` (docker-compose.yml builds it).
# Multi-stage: the Go toolchain builds the binary (cgo on, so the Oracle
# driver godror is built in), the runtime is a slim Debian of the same
# release with tzdata for CRON_TZ and libaio1 for Oracle's client.
#
# Oracle Instant Client. Reading SITS/CMIS from Oracle (driver godror) needs
# Oracle Instant Client at run time, which Oracle's licence keeps out of
# this image by default: the stage oracle-client below is empty, and the
# image builds and runs without it (pgx and sqlserver sources and the
# Moodle sites need nothing more; a godror source then fails with DPI-1047,
# which `mim check` shows). Give the client as the build context named
# oracle-client, which replaces that stage, from a directory or an image:
#   docker build --build-context oracle-client=/opt/oracle/instantclient_23_7 -t mim .
#   docker build --build-context oracle-client=docker-image://registry.example.ac.uk/oracle/instantclient:23.7 -t mim .
# The directory (or the image's /) must hold the client's files as unzipped
# from Oracle's "Basic" or "Basic Light" package (libclntsh.so and friends);
# they go to /opt/oracle/instantclient, which LD_LIBRARY_PATH names.
FROM scratch AS oracle-client

FROM golang:1.26.8-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=container
RUN CGO_ENABLED=1 go build -trimpath \
        -ldflags "-s -w -X github.com/mimwarehouse/mim/internal/app.Version=${VERSION}" \
        -o /out/mim ./cmd/mim

FROM debian:12.11-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates tzdata libaio1 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/mim --create-home mim \
    && mkdir -p /var/lib/mim/out /etc/mim \
    && chown -R mim /var/lib/mim
COPY --from=oracle-client / /opt/oracle/instantclient/
ENV LD_LIBRARY_PATH=/opt/oracle/instantclient
COPY --from=build /out/mim /usr/local/bin/mim
USER mim
WORKDIR /var/lib/mim
EXPOSE 9464
ENTRYPOINT ["/usr/local/bin/mim"]
CMD ["--config", "/etc/mim/mim.yaml", "serve"]
