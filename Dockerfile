# mim in a container: `docker build -t mim .` (docker-compose.yml builds it).
# Multi-stage: the Go toolchain builds the binary (cgo on, for godror), the
# runtime is a slim Debian of the same release with tzdata for CRON_TZ.
# Reading SITS/CMIS from Oracle (driver godror) needs Oracle Instant Client at
# run time, which Oracle's licence keeps out of this image: add it in a
# derived image (unzip it into /opt/oracle and set LD_LIBRARY_PATH). A pgx
# source and the Moodle sites need nothing more.
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
COPY --from=build /out/mim /usr/local/bin/mim
USER mim
WORKDIR /var/lib/mim
EXPOSE 9464
ENTRYPOINT ["/usr/local/bin/mim"]
CMD ["--config", "/etc/mim/mim.yaml", "serve"]
