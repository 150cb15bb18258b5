# syntax=docker/dockerfile:1
# Build: docker build -t cramp-cds .   Run: see docker-compose.yml and docs/deployment.md.

FROM rust:1.95-bookworm AS build
# The profile-guided release build (tools/pgo/build.sh): llvm-profdata of
# rustc's own LLVM from rustup, python3 for the training run.
RUN rustup component add llvm-tools \
    && apt-get update \
    && apt-get install -y --no-install-recommends python3 \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src src
COPY benches benches
COPY cds-hooks cds-hooks
COPY schemas schemas
COPY migrations migrations
# The training run's charts (tools/pgo/train.py).
COPY tests/scenarios tests/scenarios
COPY tools/pgo tools/pgo
RUN PGO=on tools/pgo/build.sh --service-only >built.txt && cp "$(head -n 1 built.txt)" /src/cramp-cds

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --home-dir /var/lib/cramp-cds --create-home cramp
COPY --from=build /src/cramp-cds /usr/local/bin/cramp-cds
USER 10001:10001
WORKDIR /var/lib/cramp-cds
# Listening beyond loopback requires trusted issuers (CRAMP_CDS_ISSUERS) or,
# for a closed test network only, CRAMP_CDS_ALLOW_UNAUTHENTICATED=true.
ENV CRAMP_CDS_HOST=0.0.0.0 \
    CRAMP_CDS_PORT=8080 \
    CRAMP_CDS_LOG_FORMAT=json
EXPOSE 8080
STOPSIGNAL SIGTERM
ENTRYPOINT ["cramp-cds"]
CMD ["serve"]
