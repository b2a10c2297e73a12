import type { Generated, Insertable, Selectable, Updateable } from 'kysely';
import type { KycState } from '../domain/kyc-states.js';
import type { Role } from '../domain/roles.js';
import type { Language, TimeZone } from '../lib/locales.js';
import type { AlertRuleId, AlertState, Severity } from '../domain/alerts.js';
import type { CaseStatus } from '../domain/review-sla.js';

/**
 * One Database interface for SQLite and PostgreSQL. Column names are camelCase here and
 * snake_case in SQL (CamelCasePlugin). Timestamps are ISO-8601 UTC strings (sortable text on
 * both engines); booleans are 0/1 integers; JSON is text.
 */
// The product's own vocabulary lives in domain/; re-exported so rows and rules name one type.
export { FINAL_STATES, KYC_STATES, type KycState } from '../domain/kyc-states.js';
export { ROLES, type Role } from '../domain/roles.js';

export type CapaSync = 'pending' | 'created' | 'failed';
export type WebhookStatus = 'received' | 'processed' | 'ignored' | 'rejected' | 'failed';
export type SignatureVerdict = 'valid' | 'missing' | 'malformed' | 'mismatch';

export interface OperatorsTable {
  id: string;
  email: string;
  name: string;
  role: Role;
  passwordHash: string;
  disabled: number;
  failedLogins: Generated<number>;
  lastFailedLoginAt: string | null;
  lastLoginAt: string | null;
  createdAt: string;
  updatedAt: string;
  /** The operator's own console language and time zone; null: the browser's language, the instance's zone. */
  locale: Generated<Language | null>;
  timeZone: Generated<TimeZone | null>;
  /** The provider (issuer) and subject of the person, once they signed in through single sign-on. */
  oidcIssuer: Generated<string | null>;
  oidcSubject: Generated<string | null>;
}

export interface SessionsTable {
  /** sha256 of the cookie value: a leaked table does not leak live sessions. */
  idHash: string;
  operatorId: string;
  csrfToken: string;
  createdAt: string;
  lastSeenAt: string;
  expiresAt: string;
  revokedAt: string | null;
  userAgent: string | null;
  ip: string | null;
  /** full: signed in; mfa: password accepted, second factor pending; enrol: a second factor must be set up first. */
  stage: Generated<SessionStage>;
  /** How the session was opened: password, password+totp, password+passkey, password+recovery, oidc. */
  method: Generated<string | null>;
  /** The provider's refresh and ID tokens, encrypted like KYC details (single sign-on sessions only). */
  oidcTokens: Generated<string | null>;
  oidcCheckedAt: Generated<string | null>;
  /** The WebAuthn challenge last handed to this session; cleared when used. */
  challenge: Generated<string | null>;
}

export type SessionStage = 'full' | 'mfa' | 'enrol';

/** An operator's TOTP secret (encrypted like KYC details); confirmed once a first code was accepted. */
export interface OperatorTotpTable {
  operatorId: string;
  secret: string;
  confirmedAt: string | null;
  /** The last accepted time step: a code from that step or earlier is a replay. */
  lastTimeStep: number | null;
  createdAt: string;
}

/** One-time recovery codes, stored as sha256 (they are long random strings, not passwords). */
export interface OperatorRecoveryCodesTable {
  id: Generated<number>;
  operatorId: string;
  codeHash: string;
  createdAt: string;
  usedAt: string | null;
}

/** WebAuthn credentials (passkeys, security keys). */
export interface OperatorPasskeysTable {
  /** The credential id, base64url. */
  id: string;
  operatorId: string;
  /** COSE public key, base64url. */
  publicKey: string;
  counter: number;
  /** JSON array of transports the authenticator reported. */
  transports: string | null;
  deviceType: string | null;
  backedUp: number;
  name: string;
  createdAt: string;
  lastUsedAt: string | null;
}

export interface SetupTokensTable {
  tokenHash: string;
  createdAt: string;
  expiresAt: string;
  usedAt: string | null;
}

export interface UsersTable {
  id: string;
  externalUserId: string;
  capaUserId: string | null;
  type: 'INDIVIDUAL' | 'BUSINESS';
  email: string;
  alias: string | null;
  country: 'MX' | 'DO' | null;
  kycState: KycState;
  kycStateChangedAt: string;
  kycStateReason: string | null;
  /** What caused the last change: webhook:<id>, job:<id>, operator:<id>, poll:<job id>. */
  kycStateCause: string | null;
  capaConfirmedAt: string | null;
  capaSync: CapaSync;
  capaSyncError: string | null;
  /** Verification result string last read from Capa that we could not map (kept raw). */
  unmappedResult: string | null;
  linkExpired: Generated<number>;
  assigneeId: string | null;
  createdBy: string | null;
  createdAt: string;
  updatedAt: string;
  /** 1 while a legal hold blocks erasure and retention (migration 20261129_0601). */
  legalHold: Generated<number>;
  legalHoldReason: Generated<string | null>;
  /** When the personal data was erased; the row is then a non-personal tombstone. */
  erasedAt: Generated<string | null>;
}

/** One erasure (on request or by the retention policy) and its report of what was removed. */
export interface ErasuresTable {
  id: string;
  userId: string;
  kind: 'request' | 'retention';
  reason: string;
  requestedBy: string | null;
  at: string;
  /** JSON: rows changed per table. */
  report: string;
  /** The retention run that erased this customer (migration 20261130_0101); null on request. */
  runId: Generated<string | null>;
}

/**
 * Customers per (state, type, country, assigned), kept by triggers on users through
 * user_count_deltas (migration 20261130_0201_user_counts); read through db/repositories/user-counts.ts.
 */
export interface UserCountsTable {
  kycState: KycState;
  type: 'INDIVIDUAL' | 'BUSINESS';
  /** '' for a customer without a country. */
  country: string;
  assigned: number;
  n: number;
}

/** A change to user_counts not folded in yet: +1 for a row as it is now, -1 for it as it was. */
export interface UserCountDeltasTable {
  id: Generated<number>;
  kycState: KycState;
  type: 'INDIVIDUAL' | 'BUSINESS';
  country: string;
  assigned: number;
  d: number;
}

/** One run of the retention job; counts are JSON objects keyed by KYC state. */
export interface RetentionRunsTable {
  id: string;
  jobId: string | null;
  startedAt: string;
  finishedAt: string | null;
  /** JSON: years kept per KYC state (0 = kept for ever). */
  policy: string;
  /** JSON: customers erased per KYC state. */
  erased: Generated<string>;
  /** JSON: customers past their retention whom a legal hold kept, per KYC state. */
  held: Generated<string>;
  /** Customers whose erasure failed (retried on the next run). */
  failed: Generated<number>;
}

export interface KycLinksTable {
  id: string;
  userId: string;
  url: string;
  country: 'MX' | 'DO';
  redirectUri: string | null;
  status: 'active' | 'superseded' | 'expired';
  createdBy: string | null;
  createdAt: string;
  endedAt: string | null;
}

export interface KycDetailsTable {
  id: string;
  userId: string;
  fetchedAt: string;
  verificationResult: string | null;
  mappedState: KycState | null;
  /** JSON of Capa's details, encrypted (enc:v1:<keyId>:…) when KYC_DETAILS_KEY is set. */
  payload: string;
  keyId: string | null;
  cause: string | null;
}

export interface WebhookInboxTable {
  id: Generated<number>;
  receivedAt: string;
  rawBody: string;
  /** JSON: content-type, user-agent, content-length, capa-signature (as received). */
  headers: string;
  signatureVerdict: SignatureVerdict;
  secretIndex: number | null;
  eventType: string | null;
  eventName: string | null;
  externalUserId: string | null;
  dedupeKey: string | null;
  duplicateOf: number | null;
  status: WebhookStatus;
  enqueuedAt: string | null;
  processedAt: string | null;
  attempts: Generated<number>;
  userId: string | null;
  stateFrom: KycState | null;
  stateTo: KycState | null;
  effect: string | null;
  error: string | null;
}

export interface StateChangesTable {
  id: Generated<number>;
  userId: string;
  at: string;
  fromState: KycState;
  toState: KycState;
  causeType: 'webhook' | 'poll' | 'operator' | 'job' | 'import' | 'system';
  causeId: string | null;
  reason: string | null;
  /** 1 when a poll found Capa's state differed from ours (a missed or late event). */
  drift: Generated<number>;
}

export interface JobRunsTable {
  id: Generated<number>;
  userId: string | null;
  jobName: string;
  jobId: string;
  status: 'running' | 'completed' | 'failed' | 'retrying';
  attempt: number;
  error: string | null;
  result: string | null;
  startedAt: string;
  finishedAt: string | null;
}

/** Side effects (Capa create, link, e-mail) recorded before they are attempted. */
export interface IdempotencyTable {
  key: string;
  kind: string;
  status: 'started' | 'done' | 'failed';
  result: string | null;
  createdAt: string;
  updatedAt: string;
}

export interface AuditLogTable {
  id: Generated<number>;
  at: string;
  operatorId: string | null;
  actor: string;
  action: string;
  targetType: string | null;
  targetId: string | null;
  outcome: 'ok' | 'error' | 'denied' | 'queued';
  detail: string | null;
  ip: string | null;
  prevHash: string;
  hash: string;
}

/** The audit chain's head and length at a moment (also written to the log stream). Append-only. */
export interface AuditAnchorsTable {
  id: Generated<number>;
  at: string;
  rowCount: number;
  /** Null while the log is empty (headHash is then GENESIS). */
  headId: number | null;
  headHash: string;
}

// ---- manual-review cases (db/repositories/cases.ts)
export { CASE_STATUSES, type CaseStatus } from '../domain/review-sla.js';
export const RESOLUTION_REASONS = [
  'verified_by_capa',
  'rejection_confirmed',
  'customer_retried',
  'customer_unreachable',
  'duplicate',
  'other',
] as const;
export type ResolutionReason = (typeof RESOLUTION_REASONS)[number];
export type CaseEventKind = 'opened' | 'reopened' | 'claimed' | 'assigned' | 'unassigned' | 'status' | 'task_added' | 'task_done';

/** One follow-up case per customer (reopened when the customer re-enters review after a resolution). */
export interface ReviewCasesTable {
  userId: string;
  status: CaseStatus;
  resolutionReason: ResolutionReason | null;
  resolutionComment: string | null;
  openedAt: string;
  statusChangedAt: string;
  resolvedAt: string | null;
  resolvedBy: string | null;
  updatedAt: string;
}

/** Append-only (triggers refuse UPDATE/DELETE). */
export interface CaseNotesTable {
  id: Generated<number>;
  userId: string;
  at: string;
  authorId: string | null;
  author: string;
  body: string;
}

export interface CaseTasksTable {
  id: Generated<number>;
  userId: string;
  title: string;
  /** YYYY-MM-DD. */
  dueOn: string;
  createdAt: string;
  createdBy: string | null;
  doneAt: string | null;
  doneBy: string | null;
}

/** Append-only history of a case: assignment, status and task changes (JSON detail). */
export interface CaseEventsTable {
  id: Generated<number>;
  userId: string;
  at: string;
  actorId: string | null;
  actor: string;
  kind: CaseEventKind;
  detail: string | null;
}

// ---- notifications (db/repositories/notifications.ts)
/** Messages to a customer (templates in jobs/notifications/templates.ts). */
export const NOTIFICATION_KINDS = ['kyc_link', 'kyc_retry', 'kyc_retry_reminder'] as const;
export type CustomerNotificationKind = (typeof NOTIFICATION_KINDS)[number];
/** Messages about an alert: to operators (an address list per severity) and a webhook, never a customer. */
export const ALERT_NOTIFICATION_KINDS = ['alert_firing', 'alert_resolved'] as const;
export type AlertNotificationKind = (typeof ALERT_NOTIFICATION_KINDS)[number];
export type NotificationKind = CustomerNotificationKind | AlertNotificationKind;
export const isAlertKind = (k: NotificationKind): k is AlertNotificationKind => k === 'alert_firing' || k === 'alert_resolved';
export const NOTIFICATION_STATUSES = ['queued', 'sent', 'failed', 'cancelled'] as const;
export type NotificationStatus = (typeof NOTIFICATION_STATUSES)[number];
export const NOTIFICATION_CHANNELS = ['email', 'sms', 'webhook'] as const;
export type NotificationChannelName = (typeof NOTIFICATION_CHANNELS)[number];
export type NotificationLocale = 'es' | 'en';

/** The ledger: one row per message we mean to send, whatever became of it. */
export interface NotificationsTable {
  id: string;
  /** The customer; null for an alert message (its recipient is `address`, its subject `alertId`). */
  userId: string | null;
  kind: NotificationKind;
  channel: NotificationChannelName;
  locale: NotificationLocale;
  address: string;
  /** Why this message exists, unique: link:<linkId>, programme:<id>:<step>, resend:<requestId>. */
  dedupeKey: string;
  programmeId: string | null;
  step: number | null;
  linkId: string | null;
  linkUrl: string | null;
  /** generate-link requestId whose link this message waits for (null when it needs none or has it). */
  linkRequestId: string | null;
  status: NotificationStatus;
  failureReason: string | null;
  /** Last transient error while still queued (retrying). */
  lastError: string | null;
  attempts: Generated<number>;
  subject: string | null;
  providerMessageId: string | null;
  cause: string | null;
  createdBy: string | null;
  createdAt: string;
  updatedAt: string;
  enqueuedAt: string | null;
  lastAttemptAt: string | null;
  sentAt: string | null;
  failedAt: string | null;
  cancelledAt: string | null;
  alertId: Generated<string | null>;
}

export type RetryProgrammeStatus = 'active' | 'stopped' | 'finished';

/** A rejected customer's follow-up programme (one per rejection). */
export interface RetryProgrammesTable {
  id: string;
  userId: string;
  /** users.kycStateChangedAt of the rejection that started it (unique with userId). */
  rejectedAt: string;
  status: RetryProgrammeStatus;
  stopReason: string | null;
  stoppedBy: string | null;
  stoppedAt: string | null;
  /** JSON array of day offsets from the start, snapshotted when the programme began. */
  cadenceDays: string;
  /** Next follow-up step (1-based); past the cadence's length means none left. */
  nextStep: number;
  nextDueAt: string | null;
  reinvitedAt: string | null;
  resubmittedAt: string | null;
  verifiedAt: string | null;
  createdAt: string;
  updatedAt: string;
}

// ---- operations (db/repositories/settings.ts)
/** Key/value settings written by operators (e.g. the webhook URL we last registered at Capa). JSON value. */
export interface SettingsTable {
  key: string;
  value: string;
  updatedAt: string;
  updatedBy: string | null;
}

// ---- bulk CSV imports (db/repositories/imports.ts)
export const IMPORT_STATUSES = ['staged', 'discarded', 'running', 'paused', 'cancelled', 'completed'] as const;
export type ImportStatus = (typeof IMPORT_STATUSES)[number];
export const IMPORT_ROW_STATUSES = ['invalid', 'pending', 'queued', 'linking', 'done', 'failed', 'cancelled'] as const;
export type ImportRowStatus = (typeof IMPORT_ROW_STATUSES)[number];

export interface ImportsTable {
  id: string;
  fileName: string;
  fileSha256: string;
  fileBytes: number;
  delimiter: string;
  status: ImportStatus;
  /** Why it is paused: an operator, or a Capa outage (status_reason says what failed). */
  pauseKind: 'operator' | 'outage' | null;
  statusReason: string | null;
  totalRows: number;
  validRows: number;
  invalidRows: number;
  /** JSON array of header names that were ignored. */
  unknownColumns: string;
  /** JSON: { byReason: Record<reasonCode, number> } from the dry run. */
  summary: string;
  /** Consecutive retryable Capa failures; at the threshold the import pauses (outage). */
  capaErrorStreak: Generated<number>;
  createdBy: string | null;
  createdAt: string;
  committedBy: string | null;
  committedAt: string | null;
  statusChangedAt: string;
  finishedAt: string | null;
  updatedAt: string;
}

export interface ImportRowsTable {
  importId: string;
  /** 1-based data row number (the header is row 0). */
  rowNo: number;
  /** Line in the file where the row starts. */
  line: number;
  externalUserId: string | null;
  /** 1 when externalUserId was blank in the file and generated at staging. */
  generatedId: Generated<number>;
  email: string | null;
  type: string | null;
  alias: string | null;
  country: string | null;
  sendLink: Generated<number>;
  status: ImportRowStatus;
  reasonCode: string | null;
  reason: string | null;
  userId: string | null;
  capaUserId: string | null;
  linkId: string | null;
  /** Bumped each time the row is (re)queued; part of its job ids. */
  gen: Generated<number>;
  /** Retryable Capa failures seen by this row. */
  attempts: Generated<number>;
  enqueuedAt: string | null;
  finishedAt: string | null;
  updatedAt: string;
}

// ---- stale-status refresh and drift (db/repositories/refresh.ts, drift.ts)
export type RefreshRunKind = 'scheduled' | 'all_stale' | 'selected';
export type RefreshRunStatus = 'queued' | 'enqueuing' | 'running' | 'done' | 'failed';

/** One refresh cycle (scheduled) or operator request, tracked with progress. */
export interface RefreshRunsTable {
  id: Generated<number>;
  kind: RefreshRunKind;
  status: RefreshRunStatus;
  requestedBy: string | null;
  requestId: string | null;
  createdAt: string;
  startedAt: string | null;
  /** When every fetch of the run was handed to the queue. */
  enqueuedAt: string | null;
  finishedAt: string | null;
  total: Generated<number>;
  enqueued: Generated<number>;
  /** Customers not in Capa yet (nothing to ask). */
  skipped: Generated<number>;
  /** Settled counts, written when the run finishes (live progress is computed). */
  answered: Generated<number>;
  failed: Generated<number>;
  drift: Generated<number>;
  ratePerSec: number;
  etaSeconds: number | null;
  error: string | null;
}

export interface RefreshRunUsersTable {
  runId: number;
  userId: string;
}

/** Every time Capa's polled truth differed from our state. */
export interface DriftEventsTable {
  id: Generated<number>;
  userId: string;
  stateChangeId: number | null;
  detectedAt: string;
  wasState: KycState;
  nowState: KycState;
  /** 1 when the state machine applied Capa's state. */
  applied: Generated<number>;
  jobName: string;
  jobId: string | null;
  /** What asked for the poll: refresh:<runId>, webhook:<id>, conflict:webhook:<id>, … */
  triggeredBy: string | null;
  runId: number | null;
  /** Comma-separated webhook events we should have received to get there on our own. */
  missedEvents: string | null;
  /** What our inbox says about those events (never received, received late, bad signature…). */
  evidence: string | null;
}

// ---- alerts (db/repositories/alerts.ts; rules and states in domain/alerts.ts)
/** One alert: a rule's condition from first seen true (pending) until resolved. */
export interface AlertsTable {
  id: string;
  ruleId: AlertRuleId;
  /** The rule id while the alert is open, null once resolved (unique: one open alert per rule). */
  openKey: string | null;
  state: AlertState;
  severity: Severity;
  pendingSince: string;
  firedAt: string | null;
  acknowledgedAt: string | null;
  acknowledgedBy: string | null;
  acknowledgedByName: string | null;
  ackReason: string | null;
  /** The condition has been false since then (the resolve delay runs). */
  resolvingSince: string | null;
  resolvedAt: string | null;
  resolvedReason: 'cleared' | 'rule_disabled' | null;
  /** The figure compared with the threshold at the last evaluation, and the highest seen. */
  value: number;
  peakValue: number;
  /** JSON: the last Measurement's values (domain/alerts.ts). */
  measure: string;
  /** JSON: the rule's settings when it fired. */
  settings: string;
  page: string;
  /** The silence that kept its notification back. */
  silenceId: string | null;
  notifiedAt: string | null;
  resolutionNotifiedAt: string | null;
  evaluatedAt: string;
  updatedAt: string;
}

export type AlertEventKind = 'fired' | 'notified' | 'silenced' | 'acknowledged' | 'resolving' | 'returned' | 'resolved';

/** Append-only history of each alert (triggers refuse UPDATE/DELETE). */
export interface AlertEventsTable {
  id: Generated<number>;
  alertId: string;
  ruleId: AlertRuleId;
  at: string;
  kind: AlertEventKind;
  operatorId: string | null;
  /** `system` for the evaluator, else the operator's e-mail. */
  actor: string;
  /** JSON. */
  detail: string | null;
}

/** No notification for a rule until endsAt (or until ended by hand). */
export interface AlertSilencesTable {
  id: string;
  ruleId: AlertRuleId;
  reason: string;
  startsAt: string;
  endsAt: string;
  createdBy: string | null;
  createdByName: string;
  createdAt: string;
  endedAt: string | null;
  endedByName: string | null;
}

/** What each rule saw at its last evaluation, and what it keeps between two (samples of counters). */
export interface AlertRuleStateTable {
  ruleId: AlertRuleId;
  evaluatedAt: string;
  /** JSON Measurement, null when the evaluation failed. */
  measure: string | null;
  /** Why the last evaluation could not measure (a source did not answer). */
  error: string | null;
  memory: string | null;
}

export interface Database {
  operators: OperatorsTable;
  sessions: SessionsTable;
  operatorTotp: OperatorTotpTable;
  operatorRecoveryCodes: OperatorRecoveryCodesTable;
  operatorPasskeys: OperatorPasskeysTable;
  setupTokens: SetupTokensTable;
  users: UsersTable;
  kycLinks: KycLinksTable;
  kycDetails: KycDetailsTable;
  erasures: ErasuresTable;
  retentionRuns: RetentionRunsTable;
  userCounts: UserCountsTable;
  userCountDeltas: UserCountDeltasTable;
  webhookInbox: WebhookInboxTable;
  stateChanges: StateChangesTable;
  jobRuns: JobRunsTable;
  idempotency: IdempotencyTable;
  auditLog: AuditLogTable;
  auditAnchors: AuditAnchorsTable;
  refreshRuns: RefreshRunsTable;
  refreshRunUsers: RefreshRunUsersTable;
  driftEvents: DriftEventsTable;
  settings: SettingsTable;
  reviewCases: ReviewCasesTable;
  caseNotes: CaseNotesTable;
  caseTasks: CaseTasksTable;
  caseEvents: CaseEventsTable;
  notifications: NotificationsTable;
  retryProgrammes: RetryProgrammesTable;
  imports: ImportsTable;
  importRows: ImportRowsTable;
  alerts: AlertsTable;
  alertEvents: AlertEventsTable;
  alertSilences: AlertSilencesTable;
  alertRuleState: AlertRuleStateTable;
}

export type Operator = Selectable<OperatorsTable>;
export type NewOperator = Insertable<OperatorsTable>;
export type Session = Selectable<SessionsTable>;
export type OperatorTotp = Selectable<OperatorTotpTable>;
export type OperatorPasskey = Selectable<OperatorPasskeysTable>;
export type User = Selectable<UsersTable>;
export type NewUser = Insertable<UsersTable>;
export type UserUpdate = Updateable<UsersTable>;
export type KycLink = Selectable<KycLinksTable>;
export type KycDetailsRow = Selectable<KycDetailsTable>;
export type WebhookDelivery = Selectable<WebhookInboxTable>;
export type NewWebhookDelivery = Insertable<WebhookInboxTable>;
export type StateChange = Selectable<StateChangesTable>;
export type JobRun = Selectable<JobRunsTable>;
export type AuditEntry = Selectable<AuditLogTable>;
export type Erasure = Selectable<ErasuresTable>;
export type RetentionRun = Selectable<RetentionRunsTable>;
export type AuditAnchor = Selectable<AuditAnchorsTable>;
export type RefreshRun = Selectable<RefreshRunsTable>;
export type DriftEvent = Selectable<DriftEventsTable>;
export type ReviewCase = Selectable<ReviewCasesTable>;
export type CaseNote = Selectable<CaseNotesTable>;
export type CaseTask = Selectable<CaseTasksTable>;
export type CaseEvent = Selectable<CaseEventsTable>;
export type Notification = Selectable<NotificationsTable>;
export type NewNotification = Insertable<NotificationsTable>;
export type RetryProgramme = Selectable<RetryProgrammesTable>;
export type Import = Selectable<ImportsTable>;
export type ImportRow = Selectable<ImportRowsTable>;
export type NewImportRow = Insertable<ImportRowsTable>;
export type Alert = Selectable<AlertsTable>;
export type AlertEvent = Selectable<AlertEventsTable>;
export type AlertSilence = Selectable<AlertSilencesTable>;
