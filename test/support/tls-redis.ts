// A throwaway redis-server that also listens with TLS on loopback, for specs of `rediss://`
// connections. Everything it needs is made here, in a fresh temporary folder, with the `openssl`
// CLI: a CA, a server certificate that CA signs (for 127.0.0.1 and localhost), and a second CA that
// signed nothing the server sends (what a client trusting the wrong CA sees). The server is
// tools/local-redis-server.mjs's, with TLS arguments on top: its plain port still answers, so a
// spec can also aim a TLS client at a port that does not speak TLS.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { freePort, startLocalRedis, type LocalRedisServer } from '../../tools/local-redis-server.mjs';

export const OPENSSL_INSTALL_HINT =
  'openssl was not found on PATH: the TLS test server makes its certificates with it. Install it ' +
  '(Debian/Ubuntu: `sudo apt-get install -y openssl`, macOS: `brew install openssl`).';

export const REDIS_TLS_HINT =
  'redis-server on PATH has no TLS support (`--tls-port` is a bad directive): install a build made ' +
  'with BUILD_TLS=yes (the Debian/Ubuntu and Homebrew packages are).';

/** How long a certificate is valid: a test run never gets near it, a leftover file soon expires. */
const VALIDITY_DAYS = '2';

export interface TlsRedis {
  /** The TLS port: `rediss://127.0.0.1:<tlsPort>`. */
  readonly tlsPort: number;
  /** The same server's plain-text port: `redis://127.0.0.1:<plainPort>`. */
  readonly plainPort: number;
  /** `rediss://127.0.0.1:<tlsPort>` (trusting it needs `caPem`, e.g. `{ tls: { ca } }`). */
  readonly tlsUrl: string;
  /** `redis://127.0.0.1:<plainPort>`. */
  readonly plainUrl: string;
  /** PEM of the CA that signed the server's certificate (subjectAltName IP:127.0.0.1, DNS:localhost). */
  readonly caPem: string;
  /** PEM of an unrelated CA: a client trusting only it rejects the server's certificate. */
  readonly otherCaPem: string;
  /** Path of `caPem` on disk, e.g. for NODE_EXTRA_CA_CERTS of a child process. Gone after `stop()`. */
  readonly caFile: string;
  /** Stops the server and removes the certificates' folder. Idempotent. */
  stop(): Promise<void>;
}

export interface StartTlsRedisOptions {
  /** Extra `redis-server` arguments, after the TLS ones. */
  args?: string[];
  /** How long to wait for each port to answer PING; default 10 s. */
  readyTimeoutMs?: number;
}

/** Starts the server once both ports answer PING (the TLS one through a TLS session that trusts `caPem`). */
export async function startTlsRedis(options: StartTlsRedisOptions = {}): Promise<TlsRedis> {
  const readyTimeoutMs = options.readyTimeoutMs ?? 10_000;
  const dir = mkdtempSync(join(tmpdir(), 'nestjs-redis-cache-tls-'));
  leftovers.add(dir);
  removeLeftoversOnExit();
  const removeDir = () => {
    rmSync(dir, { recursive: true, force: true });
    leftovers.delete(dir);
  };

  let server: LocalRedisServer | undefined;
  try {
    const files = makeCertificates(dir);
    const tlsPort = await freePort();
    const tlsArgs = [
      '--tls-port',
      String(tlsPort),
      '--tls-cert-file',
      files.serverCert,
      '--tls-key-file',
      files.serverKey,
      '--tls-ca-cert-file',
      files.caCert,
      '--tls-auth-clients',
      'no',
    ];
    server = await startLocalRedis({ args: [...tlsArgs, ...(options.args ?? [])], readyTimeoutMs }).catch(
      (error: unknown) => {
        const message = error instanceof Error ? error.message : String(error);
        if (/Bad directive/.test(message) && /'tls-/.test(message)) throw new Error(REDIS_TLS_HINT, { cause: error });
        throw error;
      },
    );
    const caPem = readFileSync(files.caCert, 'utf8');
    await waitForTlsPong(tlsPort, caPem, readyTimeoutMs);

    const started = server;
    let stopping: Promise<void> | undefined;
    return {
      tlsPort,
      plainPort: started.port,
      tlsUrl: `rediss://127.0.0.1:${tlsPort}`,
      plainUrl: started.url,
      caPem,
      otherCaPem: readFileSync(files.otherCaCert, 'utf8'),
      caFile: files.caCert,
      stop: () => (stopping ??= started.stop().finally(removeDir)),
    };
  } catch (error) {
    await server?.stop();
    removeDir();
    throw error;
  }
}

interface CertificateFiles {
  caCert: string;
  serverCert: string;
  serverKey: string;
  otherCaCert: string;
}

/** The two CAs and the server's key and certificate, as PEM files in `dir` (EC P-256 keys). */
function makeCertificates(dir: string): CertificateFiles {
  const file = (name: string) => join(dir, name);
  // A configuration of its own, so neither the machine's openssl.cnf nor OPENSSL_CONF changes what is made.
  writeFileSync(
    file('openssl.cnf'),
    [
      '[req]',
      'distinguished_name = dn',
      'prompt = no',
      '[dn]',
      'CN = unused',
      '[ca]',
      'basicConstraints = critical, CA:TRUE',
      'keyUsage = critical, keyCertSign, cRLSign',
      'subjectKeyIdentifier = hash',
      '',
    ].join('\n'),
  );
  writeFileSync(
    file('server.ext'),
    [
      'subjectAltName = IP:127.0.0.1, DNS:localhost',
      'basicConstraints = critical, CA:FALSE',
      'keyUsage = critical, digitalSignature, keyEncipherment',
      'extendedKeyUsage = serverAuth',
      'subjectKeyIdentifier = hash',
      'authorityKeyIdentifier = keyid',
      '',
    ].join('\n'),
  );
  const newKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  const config = ['-config', file('openssl.cnf')];
  const selfSignedCa = (name: string, subject: string) => {
    openssl([
      'req',
      '-x509',
      ...config,
      '-extensions',
      'ca',
      ...newKey,
      '-keyout',
      file(`${name}.key`),
      '-out',
      file(`${name}.crt`),
      '-days',
      VALIDITY_DAYS,
      '-subj',
      subject,
    ]);
  };

  selfSignedCa('ca', '/CN=nestjs-redis-cache test CA');
  openssl([
    'req',
    '-new',
    ...config,
    ...newKey,
    '-keyout',
    file('server.key'),
    '-out',
    file('server.csr'),
    '-subj',
    '/CN=localhost',
  ]);
  openssl([
    'x509',
    '-req',
    '-in',
    file('server.csr'),
    '-CA',
    file('ca.crt'),
    '-CAkey',
    file('ca.key'),
    '-CAcreateserial',
    '-out',
    file('server.crt'),
    '-days',
    VALIDITY_DAYS,
    '-extfile',
    file('server.ext'),
  ]);
  selfSignedCa('other-ca', '/CN=nestjs-redis-cache unrelated test CA');
  return {
    caCert: file('ca.crt'),
    serverCert: file('server.crt'),
    serverKey: file('server.key'),
    otherCaCert: file('other-ca.crt'),
  };
}

function openssl(args: string[]): void {
  const run = spawnSync('openssl', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  if (run.error) {
    const missing = (run.error as NodeJS.ErrnoException).code === 'ENOENT';
    throw new Error(missing ? OPENSSL_INSTALL_HINT : `openssl ${args[0]} failed: ${run.error.message}`, {
      cause: run.error,
    });
  }
  if (run.status !== 0) {
    throw new Error(`openssl ${args.join(' ')} exited with ${run.status ?? run.signal}:\n${run.stderr}`);
  }
}

/** Readiness of the TLS port: a verified TLS session (trusting `caPem`) that answers PING with +PONG. */
async function waitForTlsPong(port: number, caPem: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const failure = await tlsPing(port, caPem);
    if (failure === undefined) return;
    if (Date.now() > deadline) {
      throw new Error(`redis-server's TLS port ${port} did not answer PING within ${timeoutMs} ms: ${failure}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** undefined when the port answered +PONG, else what went wrong. */
function tlsPing(port: number, caPem: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port, ca: caPem });
    let settled = false;
    const done = (failure: string | undefined) => {
      if (settled) return;
      settled = true;
      socket.destroy();
      resolve(failure);
    };
    socket.setTimeout(1_000, () => done('no answer within 1 s'));
    socket.once('error', (error: NodeJS.ErrnoException) => done(`${error.code ?? 'error'}: ${error.message}`));
    socket.once('close', () => done('closed before answering'));
    socket.once('secureConnect', () => socket.write('PING\r\n'));
    socket.once('data', (data: Buffer) => {
      const reply = data.toString();
      done(reply.startsWith('+PONG') ? undefined : `answered ${JSON.stringify(reply.slice(0, 80))}`);
    });
  });
}

/** Certificate folders of servers not stopped yet. */
const leftovers = new Set<string>();
let exitHandlerInstalled = false;

/**
 * Removes the certificate folders still there when the process exits (a spec that failed before its
 * `stop()`); the server itself is killed then by local-redis-server.mjs.
 */
function removeLeftoversOnExit(): void {
  if (exitHandlerInstalled) return;
  exitHandlerInstalled = true;
  process.on('exit', () => {
    for (const dir of leftovers) rmSync(dir, { recursive: true, force: true });
  });
}
