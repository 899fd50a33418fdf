/** `nestjs-redis-cache --help`. */
export const MAIN_USAGE = `Usage: nestjs-redis-cache <command> [options]

Commands:
  audit    Audit the keyspace of a cache Redis: keys, memory and TTLs per prefix,
           the server's hit rate and memory settings, and the red flags among them.

Run 'nestjs-redis-cache audit --help' for its options.
`;

/** `nestjs-redis-cache audit --help`. */
export const AUDIT_USAGE = `Usage: nestjs-redis-cache audit [options]

Scans the keyspace (SCAN, never KEYS) and reports per key prefix: key count, memory
(MEMORY USAGE), keys without a TTL and the spread of remaining TTLs; then the server's
hit rate, evictions, fragmentation, maxmemory and its policy, and the red flags.
It only reads, but walks every key: on a big Redis, run it against a replica or off-peak.

Options:
  --url <url>          Redis to audit (redis:// or rediss://, with user, password, db).
                       Default: $REDIS_URL, else redis://127.0.0.1:6379
  --cluster            The URL is one node of a Redis Cluster: audit every primary
  --match <glob>       SCAN MATCH pattern (default: *)
  --separator <text>   Separator of key segments (default: :)
  --depth <n>          Segments that name a prefix: cache:user:42 -> cache:user at 2 (default: 2)
  --sample <n>         Keys per prefix measured with MEMORY USAGE before sampling and
                       extrapolating ("~" marks estimates) (default: 1000)
  --count <n>          SCAN COUNT per call (default: 1000)
  --json               Print the report as one JSON document
  --progress           Draw the progress bar on stderr even when it is not a terminal
  --no-progress        Never draw the progress bar
  -h, --help           Show this help

Exit codes: 0 no red flags, 1 red flags found, 2 usage or connection error.
`;
