#!/usr/bin/env bash
# The compat matrix (`npm run compat`; CI runs it after `npm test`). Builds and packs this package,
# starts a throwaway redis-server, then installs the tarball the way users do and proves it works:
#
#   newcomer            an empty folder, `npm init -y`, the README's plain install line (latest NestJS
#                       and ioredis), a CommonJS and an ESM script: 1 load, then 1 hit; one copy.
#   apps/<name>        four apps shaped like `nest new` output (NestJS 12 ESM with vitest, NestJS 11
#                       CommonJS with Jest + ts-jest; each on Express and on Fastify): install, build,
#                       boot dist/main.js and GET each cached route twice (X-Cache MISS, then HIT), then
#                       the app's own `npm test` and `npm run test:e2e`. nest11-cjs-express runs on
#                       ioredis 5, the low end of the peer range; it is also type-checked with the
#                       older `moduleResolution: node10` of NestJS 10-era tsconfigs.
#
# Each app keeps the generated tsconfig files, test configs (package.json `jest` + test/jest-e2e.json,
# or vitest.config*.ts) and test scripts verbatim. Left out: @nestjs/cli (`build` runs
# `tsc -p tsconfig.build.json`, which is what `nest build` does for such an app) and the generated
# lint and format tooling. Dependencies come from the plain install line below.
#
# The apps live in a dot folder because the package's own tsconfig includes tools/, and tsc's
# directory wildcards skip dot folders: each app compiles only with its own tsconfig and packages.
#
# Needs node, npm (the registry), redis-server and redis-cli. Exits non-zero on the first
# failure, after printing the failing step's log and the summary. COMPAT_KEEP=1 keeps the work folder.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
apps=$root/tools/compat/apps
work=$(mktemp -d "${TMPDIR:-/tmp}/nestjs-redis-cache-compat.XXXXXX")
logs=$work/logs
mkdir -p "$logs"
started=$SECONDS
summary=()
current=setup
case_started=$SECONDS
app_pid=
redis_port=

finish() {
  local status=$?
  if [ -n "$app_pid" ]; then kill "$app_pid" 2>/dev/null || true; fi
  if [ -n "$redis_port" ]; then redis-cli -p "$redis_port" shutdown nosave >/dev/null 2>&1 || true; fi
  echo
  printf '%-20s %-8s %-8s %-8s %-8s %s\n' 'case' 'nest' 'adapter' 'ioredis' 'seconds' 'result'
  local row
  for row in "${summary[@]}"; do printf '%-20s %-8s %-8s %-8s %-8s %s\n' $row; done
  echo "compat: $([ "$status" = 0 ] && echo 'all passed' || echo FAILED) in $((SECONDS - started)) s"
  if [ "${COMPAT_KEEP:-}" = 1 ]; then echo "compat: work folder kept: $work"; else rm -rf "$work"; fi
  exit "$status"
}
trap finish EXIT

fail() {
  summary+=("$current - - - $((SECONDS - case_started)) FAILED")
  echo "compat: FAIL: $*" >&2
  exit 1
}

# step NAME COMMAND...: runs COMMAND with its output in a log; on failure shows the log's end.
step() {
  local name=$1
  shift
  echo "compat: $current: $name"
  if ! "$@" >"$logs/$current.$name.log" 2>&1; then
    tail -n 60 "$logs/$current.$name.log" >&2
    fail "$current: '$name' failed ($*); the log's end is above"
  fi
}

free_port() {
  node -e "const s = require('net').createServer().listen(0, '127.0.0.1', () => { console.log(s.address().port); s.close(); })"
}

# Boots the built app on a free port and asserts X-Cache MISS then HIT, same body, on both routes.
boot_and_probe() {
  local db=$1 port status=0
  port=$(free_port)
  redis-cli -p "$redis_port" -n "$db" flushdb >/dev/null
  PORT=$port REDIS_URL="redis://127.0.0.1:$redis_port/$db" node dist/main.js >"$logs/$current.server.log" 2>&1 &
  app_pid=$!
  node "$root/tools/compat/probe-app.mjs" "$port" "$app_pid" || status=$?
  kill "$app_pid" 2>/dev/null || true
  wait "$app_pid" 2>/dev/null || true
  app_pid=
  if [ "$status" != 0 ]; then
    echo "--- the app's output:"
    cat "$logs/$current.server.log"
  fi
  return "$status"
}

installed_version() {
  node -p "require('./node_modules/$1/package.json').version"
}

# --- the package -----------------------------------------------------------------------------
current=package
step readme-snippets node "$root/tools/compat/readme-snippets.mjs"
step build bash -c "cd '$root' && npm run build"
step pack bash -c "cd '$root' && npm pack --pack-destination '$work'"
tarball=$(ls "$work"/nestjs-redis-cache-*.tgz)

# --- one throwaway redis-server, one database per case ------------------------------------------
redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no --dir "$work" \
  --daemonize yes --logfile "$logs/redis.log" >/dev/null
for i in $(seq 1 100); do
  [ "$(redis-cli -p "$redis_port" ping 2>/dev/null)" = PONG ] && break
  [ "$i" = 100 ] && fail "redis-server did not answer PING on port $redis_port (see $logs/redis.log)"
  sleep 0.1
done

# --- a newcomer: an empty app and the README's plain install line --------------------------------
current=newcomer
case_started=$SECONDS
mkdir "$work/newcomer" && cd "$work/newcomer"
step init npm init -y
step install npm install "$tarball" @nestjs/common @nestjs/core reflect-metadata rxjs ioredis
cp "$root"/tools/compat/newcomer-app.* .
export REDIS_URL="redis://127.0.0.1:$redis_port/1"
step require-app node newcomer-app.cjs
step import-app node newcomer-app.mjs
unset REDIS_URL
cat "$logs/newcomer.require-app.log" "$logs/newcomer.import-app.log"
summary+=("newcomer $(installed_version @nestjs/core) - $(installed_version ioredis) $((SECONDS - case_started)) passed")

# --- the four app shapes ---------------------------------------------------------------------------
db=2
for app in nest12-esm-express nest12-esm-fastify nest11-cjs-express nest11-cjs-fastify; do
  current=$app
  case_started=$SECONDS
  major=${app:4:2}
  adapter=${app##*-}
  ioredis=ioredis
  [ "$app" = nest11-cjs-express ] && ioredis=ioredis@5
  cp -R "$apps/$app" "$work/$app" && cd "$work/$app"
  step install npm install "$tarball" "@nestjs/common@$major" "@nestjs/core@$major" \
    "@nestjs/platform-$adapter@$major" reflect-metadata rxjs "$ioredis"
  nest=$(installed_version @nestjs/core)
  redis=$(installed_version ioredis)
  [ "${nest%%.*}" = "$major" ] || fail "$app: installed @nestjs/core $nest, expected $major.x"
  if [ "$app" = nest11-cjs-express ]; then
    [ "${redis%%.*}" = 5 ] || fail "$app: installed ioredis $redis, expected 5.x"
    step typecheck-node10 npx tsc -p tsconfig.json --noEmit --module commonjs --moduleResolution node10 \
      --resolvePackageJsonExports false
  fi
  step build npm run build
  step boot boot_and_probe "$db"
  cat "$logs/$app.boot.log"
  export REDIS_URL="redis://127.0.0.1:$redis_port/$db"
  step test npm test
  step test-e2e npm run test:e2e
  unset REDIS_URL
  summary+=("$app $nest $adapter $redis $((SECONDS - case_started)) passed")
  db=$((db + 1))
done
