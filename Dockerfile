# The Node LTS line the service is built for, pinned to a full release so that a rebuild does not move
# it: Node 24 'Krypton'. CI runs the whole test suite on this exact version too (.ci/run reads it here).
ARG NODE_VERSION=24.22.3

# Build: compile TypeScript with the dev dependencies.
FROM node:${NODE_VERSION}-trixie-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# Production dependencies only, installed apart so the final stage copies no build tooling.
FROM node:${NODE_VERSION}-trixie-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

FROM node:${NODE_VERSION}-trixie-slim
ARG NODE_VERSION
# `npm run image` passes the package version.
ARG VERSION=unversioned
LABEL org.opencontainers.image.title="nxcloud-bff" \
      org.opencontainers.image.description="Backend-for-frontend that reads the WhatsApp phone numbers of NxCloud customer applications without exposing the integrator secret" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.base.name="docker.io/library/node:${NODE_VERSION}-trixie-slim"
ENV NODE_ENV=production
WORKDIR /app
# Owned by root and not writable by the user the service runs as: a compromised process cannot
# rewrite the code it will run next.
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
USER node
EXPOSE 3000
# No HEALTHCHECK: it would start a process per probe, and orchestrators probe over HTTP themselves
# (Kubernetes: /healthz for liveness, /readyz for readiness; see deploy/kubernetes/ and compose.yaml).
# node as PID 1 receives SIGTERM directly; the server drains, then finishes in-flight requests, then exits.
CMD ["node", "dist/server.js"]
