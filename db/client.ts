import { mkdirSync } from 'node:fs';
import path from 'node:path';
import SQLite from 'better-sqlite3';
import {
  CamelCasePlugin,
  Kysely,
  Migrator,
  PostgresAdapter,
  PostgresDialect,
  SqliteDialect,
  SqliteDriver,
  sql,
  type DatabaseConnection,
  type Driver,
  type MigrationProvider,
  type Transaction,
} from 'kysely';
import pg from 'pg';
import { migrations } from './migrations/index.js';
import type { Database } from './schema.js';

export type Db = Kysely<Database>;
/** What a repository function takes first: the database, or a transaction opened on it. */
export type Executor = Kysely<Database> | Transaction<Database>;
export type DbKind = 'sqlite' | 'postgres';

export interface DbOptions {
  /** PostgreSQL only: use (and create) this schema — lets tests isolate themselves. */
  schema?: string;
  poolSize?: number;
  /**
   * SQLite only. `full` (default): every commit is fsynced — required where we acknowledge
   * something to the outside (the webhook intake, operator actions). `normal`: WAL commits are
   * durable against a process crash, not a power cut — used by workers, whose writes are derived
   * from rows already stored durably and are redone if lost (docs/decisions/003).
   */
  durability?: 'full' | 'normal';
}

/** How long a SQLite writer waits for another process's write lock before "database is locked". */
const BUSY_TIMEOUT_MS = 5000;

export function dbKind(url: string): DbKind {
  return /^postgres(ql)?:\/\//.test(url) ? 'postgres' : 'sqlite';
}

/** Which engine a Kysely instance or transaction talks to. */
export function kindOf(db: Kysely<any>): DbKind {
  return db.getExecutor().adapter instanceof PostgresAdapter ? 'postgres' : 'sqlite';
}

/** Opens the database named by url: `file:./data/x.sqlite` (SQLite) or `postgres://…`. */
export function createDb(url: string, opts: DbOptions = {}): Db {
  let db: Db;
  if (dbKind(url) === 'postgres') {
    const pool = new pg.Pool({
      connectionString: url,
      max: opts.poolSize ?? 10,
      ...(opts.schema ? { options: `-c search_path=${opts.schema}` } : {}),
    });
    db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }), plugins: [new CamelCasePlugin()] });
  } else {
    const file = url.replace(/^file:/, '');
    if (file !== ':memory:') mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
    const sqlite = new SQLite(file);
    // WAL lets readers (the console) run while a writer (intake, workers) commits.
    // synchronous=FULL: an acknowledged webhook survives power loss, not just a process crash.
    sqlite.pragma('journal_mode = WAL');
    sqlite.pragma(`synchronous = ${opts.durability === 'normal' ? 'NORMAL' : 'FULL'}`);
    if (opts.durability === 'normal') {
      // Workers copy the WAL back into the database (a checkpoint) every second, off the web
      // process's event loop; see docs/decisions/003.
      const timer = setInterval(() => {
        try {
          sqlite.pragma('wal_checkpoint(PASSIVE)');
        } catch {
          /* busy: the next tick tries again */
        }
      }, 1000);
      timer.unref();
      // Stop with the connection (Kysely's destroy closes it); before, the timer outlived it.
      const close = sqlite.close.bind(sqlite);
      sqlite.close = () => {
        clearInterval(timer);
        return close();
      };
    } else {
      // The web process (intake, operator actions) leaves checkpoints to the workers; this much
      // larger automatic threshold is only a safety net when no worker runs.
      sqlite.pragma('wal_autocheckpoint = 20000');
    }
    sqlite.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
    sqlite.pragma('foreign_keys = ON');
    cachePreparedStatements(sqlite);
    db = new Kysely<Database>({ dialect: new ImmediateSqliteDialect(sqlite, { database: sqlite }), plugins: [new CamelCasePlugin()] });
  }
  return db;
}

/**
 * Kysely's SQLite driver prepares every statement on every call; the hot paths (webhook intake,
 * job processing) run the same few statements thousands of times. Cache them by SQL text. Safe
 * because statements are run to completion synchronously (no interleaved iterators).
 */
function cachePreparedStatements(sqlite: SQLite.Database, max = 1000): void {
  const cache = new Map<string, SQLite.Statement>();
  const prepare = sqlite.prepare.bind(sqlite);
  sqlite.prepare = ((source: string) => {
    let st = cache.get(source);
    if (!st) {
      st = prepare(source);
      if (cache.size >= max) cache.clear();
      cache.set(source, st);
    }
    return st;
  }) as typeof sqlite.prepare;
}

/**
 * SQLite transactions start with BEGIN IMMEDIATE. Several processes (web, workers) write the same
 * file; a deferred transaction that reads first and then writes fails at once with "database is
 * locked" when another process committed in between (busy_timeout cannot help there). Taking the
 * write lock up front makes concurrent writers wait their turn instead.
 *
 * The wait is asynchronous. SQLite's own busy handler sleeps inside the call, and better-sqlite3
 * is synchronous: a web process waiting for the worker's commit would stop answering requests
 * for the whole wait (its sleeps grow to 100 ms each), which is how intake latency reached seconds
 * with the worker draining beside it. So the lock is tried without waiting, and tried again after
 * 1–4 ms timers while the event loop runs, up to BUSY_TIMEOUT_MS.
 */
class ImmediateSqliteDriver extends SqliteDriver {
  private readonly tryBegin: () => boolean;

  constructor(sqlite: SQLite.Database, cfg: ConstructorParameters<typeof SqliteDialect>[0]) {
    super(cfg);
    const noWait = sqlite.prepare('pragma busy_timeout = 0');
    const wait = sqlite.prepare(`pragma busy_timeout = ${BUSY_TIMEOUT_MS}`);
    const begin = sqlite.prepare('begin immediate');
    this.tryBegin = () => {
      noWait.run();
      try {
        begin.run();
        return true;
      } catch (err) {
        if ((err as { code?: string }).code === 'SQLITE_BUSY') return false;
        throw err;
      } finally {
        wait.run();
      }
    };
  }

  override async beginTransaction(_connection: DatabaseConnection): Promise<void> {
    const until = Date.now() + BUSY_TIMEOUT_MS;
    for (let pause = 1; !this.tryBegin(); pause = Math.min(pause * 2, 4)) {
      if (Date.now() > until) throw Object.assign(new Error('database is locked'), { code: 'SQLITE_BUSY' });
      await new Promise((r) => setTimeout(r, pause));
    }
  }
}

class ImmediateSqliteDialect extends SqliteDialect {
  constructor(
    private readonly sqlite: SQLite.Database,
    private readonly cfg: ConstructorParameters<typeof SqliteDialect>[0],
  ) {
    super(cfg);
  }
  override createDriver(): Driver {
    return new ImmediateSqliteDriver(this.sqlite, this.cfg);
  }
}

const provider: MigrationProvider = { getMigrations: async () => migrations };

/** Runs every pending migration; throws with the failing migration's name. */
export async function migrateToLatest(db: Kysely<any>, opts: DbOptions = {}): Promise<string[]> {
  if (opts.schema && kindOf(db) === 'postgres') {
    await db.schema.createSchema(opts.schema).ifNotExists().execute();
  }
  // Migrations use snake_case names themselves: run them without the CamelCasePlugin.
  const raw = db.withoutPlugins();
  // Migrations were written by several people at once: apply any missing one, whatever its
  // timestamp. The bookkeeping tables live in the target schema (tests isolate by schema).
  const migrator = new Migrator({
    db: raw,
    provider,
    allowUnorderedMigrations: true,
    ...(opts.schema ? { migrationTableSchema: opts.schema } : {}),
  });
  const { error, results } = await migrator.migrateToLatest();
  const failed = results?.find((r) => r.status === 'Error');
  if (error || failed) {
    const msg = error instanceof Error ? error.message : String(error ?? 'unknown error');
    throw new Error(`migration ${failed?.migrationName ?? '?'} failed: ${msg}`);
  }
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}

let shared: Db | undefined;
let sharedUrl: string | undefined;

/** The process-wide database handle (web and worker each open one). */
/** Answers when the database does (a readiness probe's round trip). */
export async function pingDb(db: Kysely<any>): Promise<void> {
  await sql`select 1`.execute(db);
}

export function getDb(url: string): Db {
  if (!shared || sharedUrl !== url) {
    shared = createDb(url);
    sharedUrl = url;
  }
  return shared;
}

export async function closeSharedDb(): Promise<void> {
  const d = shared;
  shared = undefined;
  sharedUrl = undefined;
  await d?.destroy();
}
