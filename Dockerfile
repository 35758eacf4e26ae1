# Kerno's container image: the `kerno` binary on a distroless glibc base, nothing else.
#
# One command, on any machine with Docker (BuildKit) or Podman and access to the registries,
# builds both stages (the Rust toolchain, then the runtime):
#
#   docker build -t kerno:dev .          # or: podman build -t kerno:dev .
#
# From a binary built beforehand (what CI does: no image registry is reachable there, and
# Debian 12's rustc is older than Kerno's minimum 1.89), skip the Rust stage:
#
#   cargo build --release -p kerno-cli
#   podman build --build-arg KERNO_BINARY=prebuilt -t kerno:dev .
#
# `prebuilt` copies target/release/kerno from the build context (.dockerignore lets that
# one file through). Build it on glibc <= 2.36 (Debian 12) or it will not run on the base.
#
# The image is x86-64 only: the committed eBPF object is built for bpf_target_arch
# x86_64 (see docs/deploy.md, "Multi-arch", for what arm64 would need).
#
# Run it the way deploy/helm/kerno runs it: docs/deploy.md.

# The toolchain stage's image (Rust >= 1.89, Debian 12 so the binary's glibc matches the
# runtime base).
ARG RUST_IMAGE=docker.io/library/rust:1.89-bookworm
# The runtime base: glibc and libgcc only (Debian 12). CI builds an equivalent locally with
# mmdebstrap and imports it under this name (scripts/image.sh base).
ARG BASE_IMAGE=gcr.io/distroless/cc-debian12:latest
# Where the binary comes from: `build` (compile here) or `prebuilt` (target/release/kerno).
ARG KERNO_BINARY=build

FROM ${RUST_IMAGE} AS build
WORKDIR /src
COPY . .
# The eBPF object is committed (kerno-probes/ebpf/prebuilt/kerno.bpf.o): a stable toolchain
# builds everything; no nightly, no bpf-linker.
RUN cargo build --release --locked -p kerno-cli \
    && install -D -m 0755 target/release/kerno /out/kerno

FROM scratch AS prebuilt
COPY target/release/kerno /out/kerno

FROM ${KERNO_BINARY} AS binary

FROM ${BASE_IMAGE} AS runtime
COPY --from=binary /out/kerno /usr/bin/kerno
LABEL org.opencontainers.image.title="kerno" \
      org.opencontainers.image.description="Kernel-level incident diagnosis for Linux and Kubernetes nodes" \
      org.opencontainers.image.licenses="MIT OR Apache-2.0"
# Runs as uid 0 with only the capabilities the pod or `podman run` grants (docs/deploy.md);
# the metrics port.
EXPOSE 9090
ENTRYPOINT ["/usr/bin/kerno"]
CMD ["start"]
