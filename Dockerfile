# Build and run flowgate. The page is embedded in the binary.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY migrations ./migrations
COPY static ./static
COPY benches ./benches
RUN cargo build --release --locked

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/flowgate /usr/local/bin/flowgate
ENV FLOWGATE_ADDR=0.0.0.0:8080
EXPOSE 8080
USER nobody
ENTRYPOINT ["flowgate"]
CMD ["serve"]
