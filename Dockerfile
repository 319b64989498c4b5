# Build and run flowgate. The page and the migrations are embedded in the binary, so the
# build needs only the manifest, the lock file, src/, migrations/, static/ and .sqlx/ (the
# query descriptions the SQL macros check against, so no database is needed to build;
# `.ci/docker-check.sh` checks that the crate builds from exactly these files).
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY migrations ./migrations
COPY static ./static
COPY .sqlx ./.sqlx
COPY clients/js/flowgate.js ./clients/js/flowgate.js
ENV SQLX_OFFLINE=true
RUN cargo build --release --locked --bin flowgate

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/flowgate /usr/local/bin/flowgate
ENV FLOWGATE_ADDR=0.0.0.0:8080
EXPOSE 8080
USER nobody
ENTRYPOINT ["flowgate"]
CMD ["serve"]
