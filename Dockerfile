# The sample app (sample-app/) using nestjs-redis-cache built from this repository.
#   ADMIN_TOKEN=$(openssl rand -hex 16) docker compose up --build   # with the Redis service from docker-compose.yml
#   docker build -t nestjs-redis-cache-sample . && docker run -p 3000:3000 -e REDIS_URL=redis://host:6379 \
#     -e ADMIN_TOKEN=$(openssl rand -hex 16) nestjs-redis-cache-sample
# The image runs with NODE_ENV=production, so the app refuses to start without ADMIN_TOKEN.

FROM node:20-slim AS build
WORKDIR /app
# Compilers only for the case where better-sqlite3 has no prebuilt binary for this platform.
RUN apt-get update \
  && apt-get install -y --no-install-recommends python3 make g++ \
  && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
RUN npm ci
COPY tsconfig.json tsconfig.build.json tsconfig.cjs.json ./
COPY lib ./lib
COPY sample-app ./sample-app
COPY tools ./tools
RUN npm run build

FROM node:20-slim
WORKDIR /app
# better-sqlite3 and @nestjs/platform-express are devDependencies of the library, and the app
# needs them, so node_modules is copied whole (same base image: the native addon matches).
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
RUN mkdir -p /data && chown node:node /data
USER node
ENV NODE_ENV=production \
    PORT=3000 \
    DB_PATH=/data/sample-app.db
EXPOSE 3000
# Node runs as PID 1 and handles SIGTERM itself (sample-app/main.ts closes the app cleanly).
CMD ["node", "dist/sample-app/main.js"]
