# syntax=docker/dockerfile:1
# The podlease image: `podlease serve` (the chart's Deployment) and `podlease-cni-install` with the
# CNI plugin dist/cni/podlease (the chart's DaemonSet). Two stages: the build stage compiles with
# every dependency and packs the package as npm would publish it; the runtime stage installs that
# package with its production dependencies only and runs as a non-root user.
#
#   docker build -t podlease/podlease:0.1.0 .
#
# test/integration/image/dockerfile.test.ts runs the runtime stage's RUN steps on the packed
# package in a temp dir (WORKDIR), then starts `podlease version` and `podlease serve` from the
# result as the USER below: keep those steps to relative paths inside WORKDIR.
ARG NODE_IMAGE=node:24-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /build
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm npm ci --no-audit --no-fund
COPY . .
RUN npm run build
RUN mkdir -p /pack \
  && npm pack --pack-destination /pack \
  && mv /pack/podlease-*.tgz /pack/podlease.tgz \
  && cp package-lock.json /pack/

FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /pack/podlease.tgz /pack/package-lock.json ./
RUN --mount=type=cache,target=/root/.npm tar -xzf podlease.tgz --strip-components=1 \
  && rm podlease.tgz \
  && npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
  && mkdir -p bin \
  && ln -s ../dist/bin/podlease.js bin/podlease \
  && ln -s ../dist/bin/podlease-cni-install.js bin/podlease-cni-install
ENV PATH=/app/bin:$PATH
# Numeric, so the kubelet can check runAsNonRoot; the files stay root's: read-only to podlease.
USER 65532:65532
EXPOSE 9443 8080
ENTRYPOINT ["podlease"]
CMD ["serve"]
