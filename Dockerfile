# livecdn: one image for every role (origin, edge, shield; see
# config/compose.yaml and config/k8s/). Build from the repository root:
#
#   docker build -t livecdn:dev .
#
# The binary is the entrypoint: `docker run livecdn:dev origin ...`,
# `... edge --role shield ...`, `... cluster-key NODE`.

# --- build: the release binary -------------------------------------------
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
# Cache mounts keep the crate registry and target/ between builds (BuildKit,
# the default builder since Docker 23); the binary is copied out of the
# cached target/ because a cache mount is not part of the layer.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin livecdn \
    && install -D -m 0755 target/release/livecdn /out/livecdn \
    && strip /out/livecdn

# --- player: the engines' scripts the player page loads ---------------------
# player/index.html and player/chat.js are compiled into the binary, but
# hls.js, Shaka Player and dash.js are read from disk at run time
# (origin/src/http/player.rs: LIVECDN_PLAYER_DIR, then the npm layout around
# it). --omit=dev leaves out playwright-core, which only the tests use.
FROM node:20-bookworm-slim AS player
WORKDIR /player
COPY player/package.json player/package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund --loglevel=error

# --- runtime -----------------------------------------------------------------
FROM debian:bookworm-slim

# ffmpeg: the ABR ladder transcodes through it (without it the origin serves
# the source rendition only). ca-certificates: HTTPS webhooks and S3 uploads.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ffmpeg ca-certificates \
    && rm -rf /var/lib/apt/lists/*

# A fixed non-root uid so that Kubernetes' runAsUser and volume ownership
# (fsGroup) can name it. /var/lib/livecdn is the working directory: the
# default recording dir ("recordings") and a control database go there.
# /var/cache/livecdn is for the edge's optional disk tier (cache.disk_dir).
RUN groupadd --system --gid 10001 livecdn \
    && useradd --system --uid 10001 --gid 10001 --no-create-home \
        --home-dir /var/lib/livecdn --shell /usr/sbin/nologin livecdn \
    && install -d -o 10001 -g 10001 -m 0750 /var/lib/livecdn /var/cache/livecdn

COPY --from=build /out/livecdn /usr/local/bin/livecdn
# Only the three scripts, in the layout player.rs expects: hls.js under
# LIVECDN_PLAYER_DIR, the others two levels up, under node_modules/.
ARG NM=/usr/share/livecdn/player/node_modules
COPY --from=player /player/node_modules/hls.js/dist/hls.min.js ${NM}/hls.js/dist/
COPY --from=player /player/node_modules/shaka-player/dist/shaka-player.compiled.js ${NM}/shaka-player/dist/
COPY --from=player /player/node_modules/dashjs/dist/modern/umd/dash.all.min.js ${NM}/dashjs/dist/modern/umd/
ENV LIVECDN_PLAYER_DIR=${NM}/hls.js/dist
# The commented example configs, for reference (`--config` picks one).
COPY config/origin.toml config/edge.toml config/shield.toml /etc/livecdn/examples/

# Disk I/O and io_uring: recordings and the edge's disk tier use io_uring
# (tokio-uring) when the kernel allows it and fall back to ordinary file
# I/O otherwise; /metrics and the start-up log say which ran. Docker's and
# containerd's default seccomp profiles block io_uring_setup,
# io_uring_enter and io_uring_register (since 2023), so in a container it
# falls back unless the operator runs it with a seccomp profile that allows
# those three syscalls (`docker run --security-opt seccomp=PROFILE.json`;
# Kubernetes: securityContext.seccompProfile of type Localhost). Set
# `recording.io = "std"` (origin) or `cache.disk_io = "std"` (edge) to make
# the choice explicit. Both paths are correct; io_uring recorded for 4.2 to
# 4.3 ms of CPU per stream-second against 4.8 to 5.0 (bench/README.md).

# Origin: RTMP, HTTP (LL-HLS, API, metrics), push (QUIC; listens on
# 127.0.0.1 by default: pass --push-listen 0.0.0.0:8444 in a container),
# WebRTC (WHEP, one UDP port). Edge: cleartext HTTP/1.1 + h2c, HTTPS +
# HTTP/3. Shield: 8091 as in config/shield.toml.
EXPOSE 1935/tcp 8080/tcp 8444/udp 8189/udp 8081/tcp 8443/tcp 8443/udp 8091/tcp

# No HEALTHCHECK: the slim image has no curl or wget, and orchestrators
# probe /healthz and /readyz themselves (config/k8s/).
USER 10001:10001
WORKDIR /var/lib/livecdn
ENTRYPOINT ["livecdn"]
CMD ["--help"]
