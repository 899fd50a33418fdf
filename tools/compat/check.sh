#!/usr/bin/env bash
# Packs this package and runs a tiny app on it under NestJS 11 (CommonJS, through Node's require(esm))
# and NestJS 12 (ESM), against a throwaway redis-server. Needs the npm registry; not part of `npm test`.
# Usage: bash tools/compat/check.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
trap 'redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
(cd "$root" && npm run build >/dev/null && npm pack --pack-destination "$work" >/dev/null)
tarball=$(ls "$work"/nestjs-redis-cache-*.tgz)
port=$(node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")
redis-server --port "$port" --bind 127.0.0.1 --save '' --daemonize yes >/dev/null
for major in 11 12; do
  dir="$work/nest$major"
  mkdir -p "$dir" && cd "$dir"
  npm init -y >/dev/null
  [ "$major" = 12 ] && npm pkg set type=module
  npm install --no-audit --no-fund "@nestjs/common@$major" "@nestjs/core@$major" ioredis@5 reflect-metadata rxjs "$tarball" >/dev/null 2>&1
  app=$(ls "$root"/tools/compat/nest"$major"-app.*)
  cp "$app" .
  REDIS_URL="redis://127.0.0.1:$port" node "./$(basename "$app")"
done
