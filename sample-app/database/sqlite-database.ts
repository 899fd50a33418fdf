import type { OnApplicationShutdown } from '@nestjs/common';
import BetterSqlite3 from 'better-sqlite3';
import type { Database, RunResult, Statement } from 'better-sqlite3';
import { setTimeout as sleep } from 'node:timers/promises';
import { SCHEMA_SQL } from './schema.js';
import { seedDatabase } from './seed.js';

export type SqlParam = string | number | bigint | null;

/** Synchronous statements for use inside {@link SqliteDatabase.transaction}. */
export interface SqlTransaction {
  all<T>(sql: string, ...params: SqlParam[]): T[];
  get<T>(sql: string, ...params: SqlParam[]): T | undefined;
  run(sql: string, ...params: SqlParam[]): RunResult;
}

/**
 * The sample app's database: one embedded SQLite file through better-sqlite3, behind an async API
 * shaped like a networked driver's.
 *
 * Every read outside a transaction waits `queryDelayMs` first, standing in for the network round
 * trip and query time of a real database, so the difference between a cache hit and a miss is
 * visible in response times. `readCount` counts those reads, which lets tests prove that a hit
 * never reached the database.
 */
export class SqliteDatabase implements OnApplicationShutdown {
  private readonly statements = new Map<string, Statement>();
  private reads = 0;

  private constructor(
    private readonly db: Database,
    private readonly queryDelayMs: number,
  ) {}

  /** Opens (or creates) the file, creates the schema and seeds an empty database. */
  static open(path: string, options: { queryDelayMs: number }): SqliteDatabase {
    const db = new BetterSqlite3(path);
    db.pragma('journal_mode = WAL');
    db.pragma('foreign_keys = ON');
    db.exec(SCHEMA_SQL);
    seedDatabase(db);
    return new SqliteDatabase(db, options.queryDelayMs);
  }

  /** Read queries answered so far (each one paid the artificial delay). */
  get readCount(): number {
    return this.reads;
  }

  async query<T>(sql: string, ...params: SqlParam[]): Promise<T[]> {
    await this.delay();
    return this.prepare(sql).all(...params) as T[];
  }

  async queryOne<T>(sql: string, ...params: SqlParam[]): Promise<T | undefined> {
    await this.delay();
    return this.prepare(sql).get(...params) as T | undefined;
  }

  /** A write (`INSERT`, `UPDATE`, `DELETE`). Not delayed: the delay stands for read latency. */
  async execute(sql: string, ...params: SqlParam[]): Promise<RunResult> {
    return this.prepare(sql).run(...params);
  }

  /** A write that returns the row of its `RETURNING` clause, or undefined when no row matched. */
  async executeReturning<T>(sql: string, ...params: SqlParam[]): Promise<T | undefined> {
    return this.prepare(sql).get(...params) as T | undefined;
  }

  /** Runs `work` atomically. Reads inside belong to the write and are not delayed. */
  async transaction<T>(work: (tx: SqlTransaction) => T): Promise<T> {
    const tx: SqlTransaction = {
      all: <R>(sql: string, ...params: SqlParam[]) => this.prepare(sql).all(...params) as R[],
      get: <R>(sql: string, ...params: SqlParam[]) => this.prepare(sql).get(...params) as R | undefined,
      run: (sql, ...params) => this.prepare(sql).run(...params),
    };
    return this.db.transaction(() => work(tx))();
  }

  onApplicationShutdown(): void {
    if (this.db.open) this.db.close();
  }

  private async delay(): Promise<void> {
    this.reads++;
    if (this.queryDelayMs > 0) await sleep(this.queryDelayMs);
  }

  private prepare(sql: string): Statement {
    let statement = this.statements.get(sql);
    if (!statement) {
      statement = this.db.prepare(sql);
      this.statements.set(sql, statement);
    }
    return statement;
  }
}

/**
 * True when `error` is SQLite's report of a violated constraint of the given kind. By name and code,
 * not `instanceof`: better-sqlite3's native addon keeps the SqliteError class of the first copy of
 * the package loaded in the process, so errors thrown for a second copy (a test runner's fresh
 * module registry, in its own realm) are instances of neither that copy's SqliteError nor its Error.
 */
export function isConstraintError(error: unknown, kind: 'UNIQUE' | 'FOREIGNKEY'): boolean {
  const { name, code } = (typeof error === 'object' && error !== null ? error : {}) as {
    name?: unknown;
    code?: unknown;
  };
  return name === 'SqliteError' && code === `SQLITE_CONSTRAINT_${kind}`;
}
