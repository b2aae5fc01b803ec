# syntax=docker/dockerfile:1
#
# Warren controller image.
#
#   docker build -t warren .
#   docker run --rm warren --help
#
# Multi-arch (linux/amd64 and linux/arm64 in one manifest list; docs/helm.md, "Building the image"):
#
#   docker buildx build --platform linux/amd64,linux/arm64 -t registry.example.com/warren:0.1.0 --push .
#
# Nothing here names an architecture. The compile stage runs on the build machine's own platform (its output is
# JavaScript, the same for every target); the runtime tree is installed and the final image assembled per target
# platform, from base images published for each.
#
# Stage 1 compiles every workspace with the full (dev) dependency set and bundles core with the built-in plugins
# (scripts/bundle.js: one module graph instead of ~850 modules, for a cheaper start). Stage 2 assembles only what
# runs — package manifests plus that bundle, in core's `build/src` — and installs production dependencies into it
# (for custom plugins, which load from node_modules, and the Cloudflare SDK, loaded only with an API token). The final stage is distroless: Node 24, no shell, no package manager, numeric non-root
# user. Custom plugins: build a derived image (`FROM warren`, then copy an installed plugin package into
# /app/node_modules) and list it under `extraPlugins` in the Helm values.

ARG BUILD_IMAGE=node:24-bookworm-slim
ARG RUNTIME_IMAGE=gcr.io/distroless/nodejs24-debian12:nonroot

FROM --platform=$BUILDPLATFORM ${BUILD_IMAGE} AS build
WORKDIR /src
ENV npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false
COPY . .
RUN npm ci
# Only the shipped projects: core and the built-in plugins (not bench, not the example plugins).
RUN npx tsc -b core plugins/*
# The runtime tree: every workspace manifest (npm ci needs them all to honour the lockfile) and, as core's
# `build/src`, the bundle of core and the built-in plugins with its source maps; no sources, tests or dev tooling.
# Every path core/package.json exports (the bin, `@warren/core`, `@warren/core/plugin`) is an entry of the
# bundle, so a custom plugin shares the bundled core's modules.
RUN mkdir -p /out \
 && cp package.json package-lock.json /out/ \
 && for dir in core plugins/* examples/plugins/*; do mkdir -p "/out/$dir" && cp "$dir/package.json" "/out/$dir/"; done \
 && node scripts/bundle.js --out /out/core/build/src

FROM ${BUILD_IMAGE} AS runtime-tree
WORKDIR /app
ENV npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false
COPY --from=build /out /app
# Production dependencies only; no runtime dependency needs an install script.
RUN npm ci --omit=dev --ignore-scripts && rm -rf /root/.npm

# V8's compiled code for the bundle (Node's compile cache), made by the final image's own Node as the user the pod
# runs and under the entry point's own Node flags: Node keys the cache by its version, V8's flags and the user id, and
# checks each entry against the source it was made from (anything else is compiled as usual). A start then skips compiling ~2 MB of source: 40–60 ms less
# CPU before the first tunnel registration for ~1.6 MiB more RSS (docs/benchmarks.md, "Start-up").
FROM ${RUNTIME_IMAGE} AS compile-cache
WORKDIR /app
COPY --from=runtime-tree /app /app
USER 65532:65532
ENV NODE_COMPILE_CACHE=/tmp/compile-cache
RUN ["/nodejs/bin/node", "--max-semi-space-size=2", "--min-semi-space-size=2", "--initial-old-space-size=64", "core/build/src/warm-compile-cache.js"]

FROM ${RUNTIME_IMAGE}
WORKDIR /app
# One glibc malloc arena for every thread (docs/operations.md#memory, docs/benchmarks.md "Where the peak RSS goes"):
# by default each thread that allocates (V8's compiler and GC threads, libuv's pool) gets an arena of its own, up to
# eight per core, and each keeps what it once held; JavaScript runs on one thread, so little contends for the lock.
# Serving 1 MiB responses the peak RSS was 7–24 MiB lower (median 16) for the same CPU per request. The base is
# Debian (glibc): on a musl base the variable would do nothing.
ENV NODE_ENV=production NODE_COMPILE_CACHE=/app/compile-cache MALLOC_ARENA_MAX=1
# Owned by root and not writable by the process: the pod runs with a read-only root filesystem anyway. (Node does
# not write to a compile cache it cannot write to: the two files left out of it, the entry points, compile as usual.)
COPY --from=runtime-tree /app /app
COPY --from=compile-cache /tmp/compile-cache /app/compile-cache
USER 65532:65532
# Health (/healthz, /readyz) and metrics (/metrics): setting server.listen.
EXPOSE 10254
# Exec form: node is PID 1 and receives SIGTERM directly (graceful drain, then exit).
# V8's heap is sized for a proxy that streams bodies (docs/operations.md#memory, docs/benchmarks.md "The V8 heap
# for streamed bodies"): young generation at 2 MB semi-spaces, old generation's first limit at 64 MB. A larger young
# generation makes V8 mark the old generation without pause while that holds little (it starts marking whenever
# the room left under the old limit is below the young generation's size) and keeps every upstream read's buffer
# until a scavenge: with 8 MB semi-spaces a 1 MiB response cost twice the CPU. The floor keeps a small old
# generation from being collected after every few MiB of bodies; it is below the chart's smallest old-space limit.
# The old generation's limit comes from NODE_OPTIONS, which the Helm chart derives from the memory limit.
ENTRYPOINT ["/nodejs/bin/node", "--max-semi-space-size=2", "--min-semi-space-size=2", "--initial-old-space-size=64", "core/build/src/main.js"]
