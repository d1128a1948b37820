# importwatch as a container: a Debian bookworm build stage and a
# distroless-style runtime stage FROM scratch that holds the stripped binary,
# exactly the shared libraries it links (and the loader), CA certificates,
# passwd/group entries for its numeric user, /tmp and the state directory.
# No shell, no package manager, no libsystemd. Build it with
#
#   podman build --format docker -t importwatch .
#
# (`--format docker`: the OCI image format has no HEALTHCHECK.) Operating it
# is described in docs/operations.md, "Running in a container".

ARG DEBIAN_IMAGE=docker.io/library/debian:bookworm

FROM ${DEBIAN_IMAGE} AS build
# The build dependencies of scripts/install-deps, minus the test-only ones and
# libsystemd-dev: -DIMPORTWATCH_SYSTEMD=OFF compiles sd_notify out.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      g++ make cmake pkg-config ccache ca-certificates \
      libboost1.81-dev libboost-json1.81-dev libboost-program-options1.81-dev \
      libspdlog-dev libyaml-cpp-dev libssl-dev libsqlite3-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
ARG JOBS=2
# The ccache directory is a build cache mount: it outlives this stage, so a
# rebuild after a source change recompiles only what changed.
ENV CCACHE_DIR=/root/.cache/ccache CCACHE_MAXSIZE=1G
RUN --mount=type=cache,target=/root/.cache/ccache \
    cmake -S . -B /build -DCMAKE_BUILD_TYPE=Release -DIMPORTWATCH_SYSTEMD=OFF \
 && cmake --build /build -j"${JOBS}" --target importwatch \
 && DESTDIR=/staging cmake --install /build --prefix /usr --strip \
 && { ccache --show-stats | grep -Ei 'hits|misses' || true; }

# The runtime root, what the binary needs and nothing else: every shared
# library ldd resolves and the loader, at the same paths, each with the
# Debian copyright file of its package (identical ones hard-linked: Boost's
# is 2 MB); the system trust store where Debian's OpenSSL looks for it; the
# numeric user; /tmp; the state directory owned by that user; the
# container's default config.
RUN set -eu; \
    root=/rootfs; bin=/staging/usr/bin/importwatch; \
    install -D -m 0755 "$bin" "$root/usr/bin/importwatch"; \
    for lib in $(ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}'); do \
      cp -L --parents "$lib" "$root/"; \
      pkg=$(dpkg -S "$lib" 2>/dev/null || dpkg -S "$(readlink -f "$lib")"); pkg=${pkg%%:*}; \
      install -D -m 0644 "/usr/share/doc/$pkg/copyright" "$root/usr/share/doc/$pkg/copyright"; \
    done; \
    md5sum "$root"/usr/share/doc/*/copyright | sort | \
      awk 'first[$1] { print first[$1], $2; next } { first[$1] = $2 }' | \
      while read -r keep same; do ln -f "$keep" "$same"; done; \
    install -D -m 0644 /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"; \
    mkdir -p "$root/usr/lib/ssl"; \
    ln -s /etc/ssl/certs/ca-certificates.crt "$root/usr/lib/ssl/cert.pem"; \
    ln -s /etc/ssl/certs "$root/usr/lib/ssl/certs"; \
    printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' > "$root/etc/passwd"; \
    printf 'root:x:0:\nnonroot:x:65532:\n' > "$root/etc/group"; \
    printf 'hosts: files dns\n' > "$root/etc/nsswitch.conf"; \
    install -d -m 1777 "$root/tmp"; \
    install -d -m 0700 -o 65532 -g 65532 "$root/home/nonroot" "$root/var/lib/importwatch"; \
    install -d -m 0755 "$root/etc/importwatch/watches.d"; \
    install -m 0644 config/container.yaml "$root/etc/importwatch/config.yaml"; \
    if [ -f LICENSE ]; then install -D -m 0644 LICENSE "$root/usr/share/doc/importwatch/LICENSE"; fi

FROM scratch
COPY --from=build /rootfs/ /
ARG VERSION=dev
ARG REVISION=
ARG SOURCE=
LABEL org.opencontainers.image.title="importwatch" \
      org.opencontainers.image.description="Watches LaunchDarkly big-segment imports and reports every status change in JSON logs and signed, durable webhooks" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="Apache-2.0"
USER 65532:65532
VOLUME ["/var/lib/importwatch"]
EXPOSE 9464
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["/usr/bin/importwatch", "healthcheck"]
ENTRYPOINT ["/usr/bin/importwatch"]
CMD ["run", "--config", "/etc/importwatch/config.yaml", "--log-format", "json"]
