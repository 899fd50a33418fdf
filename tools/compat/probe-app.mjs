// Asks a compat app that is starting on 127.0.0.1:PORT for its cached routes, twice each, and exits
// non-zero unless the first answer is an X-Cache MISS and the second a HIT with the same body.
// Usage: node probe-app.mjs PORT PID (PID: the app's process, to stop waiting if it exits).
/* global fetch */
const [port, pid] = process.argv.slice(2).map(Number);
const base = `http://127.0.0.1:${port}`;

async function get(path) {
  const response = await fetch(base + path);
  return { status: response.status, xCache: response.headers.get('x-cache'), body: await response.text() };
}

function running(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

// Any HTTP answer (a 404 here) means the app listens; no cached route is touched while waiting.
const deadline = Date.now() + 30_000;
for (;;) {
  try {
    await get('/ready');
    break;
  } catch {
    if (!running(pid)) throw new Error('the app exited before it answered');
    if (Date.now() > deadline) throw new Error(`nothing answered on ${base} within 30 s`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

for (const path of ['/items/1', '/', '/sessions/abc']) {
  const first = await get(path);
  const second = await get(path);
  console.log(
    `GET ${path}: ${first.status} X-Cache ${first.xCache}, then ${second.status} ${second.xCache}; ${first.body}`,
  );
  if (first.status !== 200 || second.status !== 200) throw new Error(`GET ${path}: expected 200 twice`);
  if (first.xCache !== 'MISS' || second.xCache !== 'HIT')
    throw new Error(`GET ${path}: expected X-Cache MISS, then HIT`);
  if (second.body !== first.body) throw new Error(`GET ${path}: the HIT's body differs from the MISS's`);
}
