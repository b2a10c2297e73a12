import path from 'node:path';
import { z } from 'zod';
import { LANGUAGES, TIME_ZONES } from './locales.js';
import type { RedisTarget } from './redis.js';

/**
 * One environment schema for every process (web, worker, sandbox, CLI).
 * A bad or missing value stops the process with a message naming the variable.
 */
const csv = z.string().transform((s) =>
  s
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean),
);

/** One sentinel: `host:port`, `[ipv6]:port`, or a bare host (port 26379, Sentinel's own default). */
const sentinelAddress = z.string().transform((raw, ctx) => {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:\s[\]]+))(?::(\d+))?$/.exec(raw);
  const port = m?.[3] === undefined ? 26379 : Number(m[3]);
  if (!m || !Number.isInteger(port) || port < 1 || port > 65535) {
    ctx.addIssue({ code: 'custom', message: `"${raw}" is not host:port (e.g. redis-sentinel-1:26379, [::1]:26379)` });
    return z.NEVER;
  }
  return { host: m[1] ?? m[2], port };
});

const retentionYears = z.coerce.number().int('whole years').min(0).max(100).default(0);

/**
 * The AML rules (CNBV/UIF in Mexico, Ley 155-17 in the Dominican Republic) keep a customer's
 * identification for at least ten years after the relationship ends; the desk only sees the last
 * state change, which for these states is never later than that, so less than ten is refused.
 */
export const RETENTION_MIN_YEARS_CUSTOMERS = 10;

/** One OIDC_ROLE_MAP entry, `value:role`; the value may itself contain colons (split at the last one). */
const roleMapEntry = z.string().transform((raw, ctx) => {
  const at = raw.lastIndexOf(':');
  const value = raw.slice(0, at).trim();
  const role = raw.slice(at + 1).trim();
  if (at <= 0 || !value || !['admin', 'compliance', 'viewer'].includes(role)) {
    ctx.addIssue({ code: 'custom', message: `"${raw}" is not group:role with role admin, compliance or viewer (e.g. kyc-admins:admin)` });
    return z.NEVER;
  }
  return { value, role: role as 'admin' | 'compliance' | 'viewer' };
});

function parseMfaRequired(v: string): Array<'admin' | 'compliance' | 'viewer'> {
  if (v.trim() === 'none') return [];
  return [...new Set(v.split(',').map((r) => r.trim() as 'admin' | 'compliance' | 'viewer'))];
}

const bool = z.enum(['true', 'false', '1', '0', 'yes', 'no', '']).transform((v) => v === 'true' || v === '1' || v === 'yes');

export const EnvSchema = z
  .object({
    NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
    PORT: z.coerce.number().int().min(0).max(65535).default(3000),
    HOST: z.string().default('127.0.0.1'),
    DATABASE_URL: z
      .string()
      .default('file:./data/kyc-desk.sqlite')
      .refine((v) => /^(file:|postgres(ql)?:\/\/)/.test(v), {
        message: 'must start with file: (SQLite) or postgres:// (PostgreSQL)',
      }),
    REDIS_URL: z.string().url().default('redis://127.0.0.1:6379'),
    /**
     * Redis Sentinel instead of REDIS_URL: the sentinels (comma-separated host:port, a few are
     * enough — they tell each other) and the master group name they monitor. When set, they take
     * precedence over REDIS_URL: every (re)connect asks the sentinels for the current primary.
     */
    REDIS_SENTINELS: csv.pipe(z.array(sentinelAddress).min(1, 'needs at least one host:port')).optional(),
    REDIS_SENTINEL_NAME: z
      .string()
      .regex(/^[A-Za-z0-9_.-]+$/, 'the master group name: letters, digits, dot, dash and underscore (e.g. mymaster)')
      .optional(),
    /** AUTH of the sentinels (their `requirepass`), and of the primary and replicas, in sentinel mode. */
    REDIS_SENTINEL_PASSWORD: z.string().optional(),
    REDIS_PASSWORD: z.string().optional(),
    /** Prefix for every BullMQ key; lets tests and several deployments share one Redis. */
    QUEUE_PREFIX: z
      .string()
      .regex(/^[A-Za-z0-9_.-]+$/)
      .default('kyc'),
    CAPA_BASE_URL: z.string().url().optional(),
    CAPA_API_KEY: z.string().min(1).default('sandbox-partner-key'),
    CAPA_WEBHOOK_SECRET: csv
      .pipe(z.array(z.string().min(8, 'each secret needs at least 8 characters')).min(1))
      .default('sandbox-webhook-secret'),
    CAPA_TIMEOUT_MS: z.coerce.number().int().positive().default(10_000),
    /** Shared limiter for every Capa call, across all workers (requests per second). */
    CAPA_RATE_LIMIT_PER_SEC: z.coerce.number().positive().default(20),
    SANDBOX_PORT: z.coerce.number().int().min(0).max(65535).default(4010),
    PUBLIC_URL: z.string().url().optional(),
    SESSION_SECRET: z.string().min(16).optional(),
    ADMIN_EMAIL: z.string().email().optional(),
    ADMIN_PASSWORD: z.string().min(10).optional(),
    SESSION_IDLE_MINUTES: z.coerce.number().int().positive().default(30),
    SESSION_MAX_HOURS: z.coerce.number().int().positive().default(12),
    /**
     * Single sign-on through an OpenID Connect provider (docs/deploy.md): discovery from the
     * issuer, authorization code + PKCE. The provider redirects back to PUBLIC_URL/auth/oidc/callback.
     */
    OIDC_ISSUER: z.string().url().optional(),
    OIDC_CLIENT_ID: z.string().min(1).optional(),
    OIDC_CLIENT_SECRET: z.string().min(1).optional(),
    /** The provider's name on the sign-in button ("Sign in with Okta"). */
    OIDC_DISPLAY_NAME: z.string().min(1).max(60).optional(),
    OIDC_SCOPES: z.string().default('openid email profile'),
    /** The claim holding the person's groups or roles; a dotted path reaches nested claims (realm_access.roles). */
    OIDC_ROLE_CLAIM: z.string().min(1).default('groups'),
    /** `group:role,…` — which claim value gives which console role; the highest wins. Empty: roles are kept in the console. */
    OIDC_ROLE_MAP: csv.pipe(z.array(roleMapEntry)).default(''),
    /** Create an operator on first sign-in through the provider (needs OIDC_ROLE_MAP). */
    OIDC_JIT: bool.default('false'),
    /** How often a session opened through the provider is re-checked there (refresh token); 0 = on every request. */
    OIDC_RECHECK_SECONDS: z.coerce.number().int().min(0).default(300),
    /** Password sign-in off for everyone except the break-glass admin(s). */
    SSO_ONLY: bool.default('false'),
    SSO_BREAK_GLASS_EMAIL: csv.pipe(z.array(z.string().email('each break-glass address must be an e-mail'))).default(''),
    /**
     * Roles that must use a second factor with password sign-in (`none` for nobody). Default
     * `admin,compliance`, except under NODE_ENV=test (see mfaRequired below).
     */
    MFA_REQUIRED: z
      .string()
      .regex(
        /^\s*(none|((admin|compliance|viewer)\s*(,\s*(admin|compliance|viewer)\s*)*))\s*$/,
        'must be none or a comma-separated list of admin, compliance, viewer',
      )
      .optional(),
    KYC_DETAILS_KEY: z
      .string()
      .regex(
        /^(([A-Za-z0-9_-]+:)?[0-9a-fA-F]{64})(,([A-Za-z0-9_-]+:)?[0-9a-fA-F]{64})*$/,
        'must be [keyId:]64 hex characters (a 256-bit key), comma-separated for rotation',
      )
      .optional(),
    SMTP_URL: z.string().optional(),
    MAIL_FROM: z.string().default('KYC Desk <kyc@localhost>'),
    LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    WORKER_CONCURRENCY: z.coerce.number().int().positive().default(8),
    // Deliveries in flight per worker process; on SQLite they share commits (db/group-commit.ts).
    WEBHOOK_CONCURRENCY: z.coerce.number().int().positive().default(128),
    WEBHOOK_BATCH_WAIT_MS: z.coerce.number().int().min(0).max(1000).default(25),
    // Worker processes lower their CPU priority (Unix niceness) to this at start: on a machine
    // shared with the web process, the intake answers first and the backlog takes what is left.
    WORKER_NICE: z.coerce.number().int().min(0).max(19).default(10),
    SHUTDOWN_TIMEOUT_MS: z.coerce.number().int().positive().default(10_000),
    REDIS_AUTOSTART: bool.default('true'),
    /** Stale-status refresh: how often the scheduled scan runs (one schedule for all workers). */
    REFRESH_SCAN_EVERY_SECONDS: z.coerce.number().int().min(1).default(300),
    /** A customer is stale when Capa last confirmed its state longer ago than this, per state (minutes). */
    REFRESH_STALE_LINK_ISSUED_MINUTES: z.coerce.number().min(0).default(360),
    REFRESH_STALE_IN_PROGRESS_MINUTES: z.coerce.number().min(0).default(35),
    REFRESH_STALE_REVIEW_NEEDED_MINUTES: z.coerce.number().min(0).default(240),
    /** Most customers one scheduled scan hands to the Capa queue (the backlog already queued counts). */
    REFRESH_MAX_PER_SCAN: z.coerce.number().int().positive().default(5000),
    /** KYC links older than this are marked expired and the customer is flagged "link expired — resend". */
    KYC_LINK_LIFETIME_HOURS: z.coerce.number().positive().default(168),
    /**
     * Retention: whole years a customer's personal data is kept after their last KYC state
     * change, per state, before the daily retention job erases it (0 = kept for ever, the
     * default: nothing is erased until someone chooses a policy). A legal hold always wins.
     */
    RETENTION_NOT_STARTED_YEARS: retentionYears,
    RETENTION_LINK_ISSUED_YEARS: retentionYears,
    RETENTION_IN_PROGRESS_YEARS: retentionYears,
    RETENTION_VERIFIED_YEARS: retentionYears,
    RETENTION_REJECTED_YEARS: retentionYears,
    RETENTION_REVIEW_NEEDED_YEARS: retentionYears,
    /** Bulk CSV imports: file size and data-row limits (a bigger file is refused with a clear message). */
    IMPORT_MAX_BYTES: z.coerce
      .number()
      .int()
      .positive()
      .default(20 * 1024 * 1024),
    IMPORT_MAX_ROWS: z.coerce.number().int().positive().default(100_000),
    /** Consecutive Capa failures (5xx, network, timeout) that pause an import as an outage. */
    IMPORT_OUTAGE_THRESHOLD: z.coerce.number().int().min(1).default(5),
    /** An outage-paused import is resumed automatically after this many seconds to probe Capa (0 = never). */
    IMPORT_OUTAGE_PROBE_SECONDS: z.coerce.number().int().min(0).default(60),
    /** Retryable Capa failures one row may see before it is marked failed. */
    IMPORT_ROW_MAX_ATTEMPTS: z.coerce.number().int().min(1).default(8),
    /** Capa sandbox SMTP mail sink port; with no SMTP_URL and the sandbox, mail goes there. "off" disables it. */
    SANDBOX_SMTP_PORT: z.union([z.literal('off'), z.coerce.number().int().min(0).max(65535)]).default(2525),
    /** Retry programme: follow-up offsets in days from the rejection (at most NOTIFY_MAX_FOLLOWUPS are used). */
    NOTIFY_FOLLOWUP_DAYS: csv.pipe(z.array(z.coerce.number().positive('each follow-up offset must be > 0 days')).max(20)).default('1,3,7'),
    NOTIFY_MAX_FOLLOWUPS: z.coerce.number().int().min(0).max(20).default(3),
    /** Send attempts per message (SMTP down, 4xx) and the first backoff delay (doubles each time). */
    NOTIFY_SEND_ATTEMPTS: z.coerce.number().int().min(1).max(50).default(8),
    NOTIFY_BACKOFF_MS: z.coerce.number().int().min(10).default(5_000),
    /** Review queue SLA targets (hours) per party we wait on; past these a case shows as breached. */
    REVIEW_SLA_CUSTOMER_HOURS: z.coerce.number().positive().default(72),
    REVIEW_SLA_CAPA_HOURS: z.coerce.number().positive().default(48),
    REVIEW_SLA_US_HOURS: z.coerce.number().positive().default(24),
    /** Bearer token for /metrics. Unset: /metrics answers loopback clients only (see docs/decisions/ops). */
    METRICS_TOKEN: z.string().min(16, 'needs at least 16 characters').optional(),
    /**
     * Which proxies may set X-Forwarded-For (express "trust proxy"): `loopback` (default), a
     * comma-separated list of addresses/subnets, or a hop count. The client address in the audit
     * log and /metrics' loopback check depend on it. `true` (trust anyone) is refused.
     */
    TRUST_PROXY: z
      .string()
      .default('loopback')
      .refine(
        (v) => !/^(true|yes|\*)$/i.test(v.trim()),
        'trusting every proxy lets any client choose its address; list the proxy addresses or subnets instead',
      )
      .transform((v) => (/^\d+$/.test(v.trim()) ? Number(v.trim()) : v.trim())),
    /** Waiting jobs in one queue above which /readyz and the Queues page report a backlog. */
    OPS_BACKLOG_WARN: z.coerce.number().int().positive().default(1000),
    /** How often the alert rules are evaluated (one schedule for all workers; the web process checks for workers as often). */
    ALERTS_EVERY_SECONDS: z.coerce.number().int().min(1).max(3600).default(60),
    /** Changes to the alert rules' defaults, `rule.field=value,…` (domain/alerts.ts); admins' settings on /alerts come on top. */
    ALERTS_RULES: z.string().optional(),
    /** Who is e-mailed when an alert fires, per severity (comma-separated; admins may change them on /alerts). */
    ALERTS_EMAIL_CRITICAL: csv.default(''),
    ALERTS_EMAIL_WARNING: csv.default(''),
    /** A webhook told of every alert that fires or resolves, signed with ALERTS_WEBHOOK_SECRET (HMAC-SHA256 of the body). */
    ALERTS_WEBHOOK_URL: z.string().url().optional(),
    ALERTS_WEBHOOK_SECRET: z.string().min(16, 'needs at least 16 characters').optional(),
    /** `json` (KYC Desk's own body) or `slack` (a Slack-compatible `{ text }` body, e.g. an incoming webhook). */
    ALERTS_WEBHOOK_FORMAT: z.enum(['json', 'slack']).default('json'),
    /**
     * The console's language for an operator who has not chosen one and whose browser asks for
     * neither Spanish nor English; and their time zone. English/UTC keep existing installs as
     * they were; a Mexican deployment sets es and America/Mexico_City.
     */
    DEFAULT_LOCALE: z.enum(LANGUAGES).default('en'),
    DEFAULT_TIME_ZONE: z.enum(TIME_ZONES).default('UTC'),
  })
  .superRefine((env, ctx) => {
    if (env.NODE_ENV === 'production' && !env.SESSION_SECRET) {
      ctx.addIssue({ code: 'custom', path: ['SESSION_SECRET'], message: 'is required when NODE_ENV=production' });
    }
    if (env.REDIS_SENTINELS && !env.REDIS_SENTINEL_NAME) {
      ctx.addIssue({
        code: 'custom',
        path: ['REDIS_SENTINEL_NAME'],
        message: 'is required with REDIS_SENTINELS: the master group name the sentinels monitor (e.g. mymaster)',
      });
    }
    if (!env.REDIS_SENTINELS) {
      for (const v of ['REDIS_SENTINEL_NAME', 'REDIS_SENTINEL_PASSWORD'] as const) {
        if (env[v]) ctx.addIssue({ code: 'custom', path: [v], message: 'needs REDIS_SENTINELS (host:port of the sentinels)' });
      }
      if (env.REDIS_PASSWORD) {
        ctx.addIssue({
          code: 'custom',
          path: ['REDIS_PASSWORD'],
          message: 'is for the Redis behind REDIS_SENTINELS; with REDIS_URL put the password in the URL (redis://:password@host:6379)',
        });
      }
    }
    for (const v of ['RETENTION_VERIFIED_YEARS', 'RETENTION_REVIEW_NEEDED_YEARS'] as const) {
      if (env[v] > 0 && env[v] < RETENTION_MIN_YEARS_CUSTOMERS) {
        ctx.addIssue({
          code: 'custom',
          path: [v],
          message: `must be 0 (kept for ever) or at least ${RETENTION_MIN_YEARS_CUSTOMERS}: the AML rules keep a customer's identification ten years after the relationship ends`,
        });
      }
    }
    if (Boolean(env.ADMIN_EMAIL) !== Boolean(env.ADMIN_PASSWORD)) {
      ctx.addIssue({ code: 'custom', path: ['ADMIN_PASSWORD'], message: 'ADMIN_EMAIL and ADMIN_PASSWORD go together' });
    }
    if (env.ALERTS_WEBHOOK_URL && !env.ALERTS_WEBHOOK_SECRET) {
      ctx.addIssue({
        code: 'custom',
        path: ['ALERTS_WEBHOOK_SECRET'],
        message: 'is required with ALERTS_WEBHOOK_URL (the receiver checks the signature)',
      });
    }
    if (Boolean(env.OIDC_ISSUER) !== Boolean(env.OIDC_CLIENT_ID)) {
      ctx.addIssue({ code: 'custom', path: ['OIDC_CLIENT_ID'], message: 'OIDC_ISSUER and OIDC_CLIENT_ID go together' });
    }
    if (env.NODE_ENV === 'production' && env.OIDC_ISSUER?.startsWith('http:')) {
      ctx.addIssue({ code: 'custom', path: ['OIDC_ISSUER'], message: 'must be https:// when NODE_ENV=production' });
    }
    if (env.SSO_ONLY && !env.OIDC_ISSUER) {
      ctx.addIssue({ code: 'custom', path: ['SSO_ONLY'], message: 'needs OIDC_ISSUER: with single sign-on off nobody could sign in' });
    }
    if (env.OIDC_JIT && env.OIDC_ROLE_MAP.length === 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['OIDC_JIT'],
        message: 'needs OIDC_ROLE_MAP: an operator created on first sign-in takes the role the provider gives',
      });
    }
  });

export type Env = z.infer<typeof EnvSchema> & {
  /** The Redis every process uses: the Sentinel group when REDIS_SENTINELS is set, else REDIS_URL. */
  redis: RedisTarget;
  /** Base URL of Capa actually used (the embedded sandbox when CAPA_BASE_URL is unset). */
  capaBaseUrl: string;
  usingSandbox: boolean;
  publicUrl: string;
  sessionSecret: string;
  /** Roles whose password sign-in needs a second factor (MFA_REQUIRED). */
  mfaRequired: Array<'admin' | 'compliance' | 'viewer'>;
};

export class ConfigError extends Error {
  constructor(public readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

export function parseEnv(source: NodeJS.ProcessEnv = process.env): Env {
  // Empty strings in .env files mean "unset".
  const cleaned: Record<string, string> = {};
  for (const [k, v] of Object.entries(source)) if (v !== undefined && v !== '') cleaned[k] = v;
  const result = EnvSchema.safeParse(cleaned);
  if (!result.success) {
    throw new ConfigError(result.error.issues.map((i) => `${i.path.join('.') || '(env)'}: ${i.message}`));
  }
  const e = result.data;
  const publicUrl = (e.PUBLIC_URL ?? `http://localhost:${e.PORT}`).replace(/\/$/, '');
  return {
    ...e,
    redis: e.REDIS_SENTINELS
      ? {
          sentinels: e.REDIS_SENTINELS,
          name: e.REDIS_SENTINEL_NAME!,
          ...(e.REDIS_PASSWORD ? { password: e.REDIS_PASSWORD } : {}),
          ...(e.REDIS_SENTINEL_PASSWORD ? { sentinelPassword: e.REDIS_SENTINEL_PASSWORD } : {}),
        }
      : e.REDIS_URL,
    capaBaseUrl: (e.CAPA_BASE_URL ?? `http://127.0.0.1:${e.SANDBOX_PORT}`).replace(/\/$/, ''),
    usingSandbox: !e.CAPA_BASE_URL,
    publicUrl,
    // Development only: a per-boot random secret would sign everyone out on restart, so derive
    // a stable one; production refuses to start without SESSION_SECRET (see superRefine).
    sessionSecret: e.SESSION_SECRET ?? 'dev-only-session-secret-change-me',
    // A second factor for admins and compliance unless told otherwise; the test suite signs
    // operators in with passwords only, so under NODE_ENV=test the default is none and the
    // second-factor tests set MFA_REQUIRED themselves.
    mfaRequired: parseMfaRequired(e.MFA_REQUIRED ?? (e.NODE_ENV === 'test' ? 'none' : 'admin,compliance')),
  };
}

let cached: Env | undefined;

/** The validated environment, read once per process. Exits the process on bad config. */
export function env(): Env {
  if (!cached) {
    try {
      cached = parseEnv();
    } catch (err) {
      if (err instanceof ConfigError) {
        console.error(err.message);
        process.exit(78); // EX_CONFIG
      }
      throw err;
    }
  }
  return cached;
}

/** Tests and the all-in-one launcher change env between phases. */
export function resetEnvCache(): void {
  cached = undefined;
}

export function sqlitePathFromUrl(url: string): string {
  const p = url.replace(/^file:/, '');
  return p === ':memory:' ? p : path.resolve(p);
}
