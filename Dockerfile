# syntax=docker/dockerfile:1
# keryu-auth container image. Three stages: `build` compiles TypeScript with every dependency, `deps` installs
# only the production dependencies, `runtime` holds what the server reads at run time and nothing else.
# test/deploy/image.test.ts rebuilds the runtime tree from this file's COPY lines, so a file forgotten here
# fails that test.

FROM node:22-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
# Scripts off: `prepare` would compile before the sources are here; the build runs explicitly below.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

FROM node:22-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# Production dependencies only, scripts off: `prepare` (tsc) is a dev dependency, and no runtime dependency
# needs an install script (argon2 ships prebuilt per platform, PGlite is WebAssembly).
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

FROM node:22-bookworm-slim AS runtime
# NODE_ENV=production makes the server refuse to start without KERYU_SECRET and redact secrets from logged mail.
# Everything the process may write goes to /tmp (mount an emptyDir there with a read-only root filesystem):
# DATA_DIR holds the embedded PGlite database when DATABASE_URL is unset, HOME catches any library cache.
ENV NODE_ENV=production \
    PORT=3000 \
    METRICS_PORT=9464 \
    DATA_DIR=/tmp/keryu \
    HOME=/tmp
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY package.json ./
COPY bin ./bin
COPY drizzle ./drizzle
# The page templates, the stylesheet and the pages' passkey script are read from src/views at run time
# (dist/views/render.js and passkey-script.js resolve them relative to themselves), so they ship beside dist/.
COPY src/views/pages ./src/views/pages
COPY src/views/keryu.css ./src/views/keryu.css
COPY src/views/passkeys.js ./src/views/passkeys.js
# `keryu migrate`, `keryu bootstrap FILE`, `keryu cleanup` ... on PATH, as the chart's jobs call it.
RUN ln -s /app/bin/keryu.js /usr/local/bin/keryu
# A numeric user that exists nowhere in /etc/passwd, so Kubernetes' runAsNonRoot can verify it; the files
# above stay owned by root and read-only to it.
USER 10001:10001
EXPOSE 3000 9464
CMD ["node", "dist/server.js"]
