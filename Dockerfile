# One image with every Tributary binary: tributary-ingest, -processor, -sink,
# -registry, -query, -server, -console (its web assets are embedded), -stack
# and trib. docker-compose.yml picks the binary per service.
FROM rust:1.95-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends cmake pkg-config libcurl4-openssl-dev libssl-dev zlib1g-dev libsasl2-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bins \
 && mkdir /out \
 && cp target/release/tributary-ingest target/release/tributary-processor target/release/tributary-sink \
       target/release/tributary-registry target/release/tributary-query target/release/tributary-server \
       target/release/tributary-console target/release/tributary-stack target/release/trib /out/

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libssl3 libcurl4 libsasl2-2 zlib1g \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/ /usr/local/bin/
USER nobody
ENV TRIBUTARY_LOG_FORMAT=json
