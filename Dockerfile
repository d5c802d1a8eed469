# syntax=docker/dockerfile:1
# The gateway's container image, in turbo's convention:
#   prune    the workspace down to the gateway and what it depends on (turbo prune --docker)
#   build    install from the pruned lockfile with the pinned pnpm, build, then
#            `pnpm deploy --prod`: the gateway alone with its production dependencies
#   runtime  Node LTS, that bundle, a non-root user; runs with a read-only root filesystem
# scripts/bundle.sh runs the same steps without Docker, and CI starts its bundle (deploy/test).
#
#   docker build -t smtp-gateway .
#   docker run --read-only -p 587:2587 -p 465:2465 -p 8080:8080 \
#     -v "$PWD/tls:/etc/smtp-gateway/tls:ro" -e SMTP_HOSTNAME=smtp.example.com smtp-gateway

# Node and pnpm: one version each, also read by scripts/bundle.sh and checked against package.json.
ARG NODE_VERSION=24.22.3
ARG PNPM_VERSION=12.21.0
ARG TURBO_VERSION=2.11.11

FROM node:${NODE_VERSION}-slim AS tools
ARG PNPM_VERSION
ARG TURBO_VERSION
RUN npm install --global --no-audit --no-fund "pnpm@${PNPM_VERSION}" "turbo@${TURBO_VERSION}"
WORKDIR /src

FROM tools AS prune
COPY . .
RUN turbo prune @cakemail-smtp/gateway --docker --out-dir /out

FROM tools AS build
# Dependencies first: this layer is reused while only sources change.
COPY --from=prune /out/json/ .
RUN pnpm install --frozen-lockfile
COPY --from=prune /out/full/ .
COPY tsconfig.base.json ./
RUN turbo run build --filter=@cakemail-smtp/gateway \
 && pnpm --filter @cakemail-smtp/gateway deploy --prod /bundle

FROM node:${NODE_VERSION}-slim AS runtime
ENV NODE_ENV=production \
    SMTP_PORT=2587 \
    SMTPS_PORT=2465
WORKDIR /app
# Owned by root and not writable by the gateway's user.
COPY --from=build /bundle/dist ./dist
COPY --from=build /bundle/node_modules ./node_modules
COPY --from=build /bundle/package.json ./package.json
# The TLS folder, the gateway's: a volume when nothing is mounted there.
RUN mkdir -p /etc/smtp-gateway/tls && chown 1000:1000 /etc/smtp-gateway/tls
# The image's `node` user; numeric, so Kubernetes can check runAsNonRoot.
USER 1000:1000
# A non-root user cannot bind below 1024: 2587 (STARTTLS) and 2465 (implicit TLS),
# mapped to 587 and 465 by `docker run -p` or the Kubernetes Service. 8080: health and metrics.
EXPOSE 2587 2465 8080
# The only place the gateway writes is TLS_CERT_PATH's folder, and only when no
# certificate is mounted there (a self-signed one, for development).
VOLUME ["/etc/smtp-gateway/tls"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "--enable-source-maps", "dist/main.js"]
CMD ["start"]
