/**
 * Plain TypeScript types for the slice of Capa's partner API v2 that KYC Desk uses
 * (users, KYC links, KYC details, webhook settings, webhook notification log, webhook events).
 * Source: ../shared/capa-api.md. No runtime validation here on purpose — the client checks the
 * few fields it relies on, and everything the provider may omit is optional.
 */

export type CapaUserType = 'INDIVIDUAL' | 'BUSINESS';

export interface CreateUserInput {
  type: CapaUserType;
  /** Validated by Capa and unique per partner. */
  email: string;
  /** Our own id; unique per partner and echoed back in every KYC webhook. */
  externalUserId: string;
  alias?: string;
}

export interface CreateUserResult {
  /** Capa's id (UUID). Store it next to externalUserId: Capa offers no user lookup. */
  userId: string;
}

/** Only these two countries are accepted by the KYC-link endpoint. */
export type KycCountry = 'MX' | 'DO';
export const KYC_COUNTRIES = ['MX', 'DO'] as const satisfies readonly KycCountry[];

export interface GenerateKycLinkOptions {
  country: KycCountry;
  /** `https://…` or a custom app scheme (`myapp://…`). */
  partnerRedirectUri?: string;
}

export interface GenerateKycLinkResult {
  /** Opaque provider URL; one provider session per link. */
  kycLink: string;
}

// ---------------------------------------------------------------------------------------------
// Get KYC Details (AiPrise-shaped). Every field optional: sections only exist when a check ran,
// and Capa publishes no enum for verificationResult (docs show VERIFIED; AiPrise says APPROVED).

export interface KycStatusReason {
  code?: string;
  message?: string;
}

export interface KycWarning {
  code?: string;
  message?: string;
  warningId?: string;
  resolutionStatus?: string;
}

/** Common sub-shape of every provider check section. */
export interface KycCheckSection {
  checkSummary?: Record<string, unknown>;
  /** e.g. PASSED, CLEAN, FAILED (no published enum). */
  result?: string;
  section_id?: string;
  /** e.g. APPROVED, DECLINED (no published enum). */
  status?: string;
  statusReasons?: KycStatusReason[];
  warnings?: KycWarning[];
}

export interface KycIdInfo extends KycCheckSection {
  address?: { fullAddress?: string; [k: string]: unknown };
  birthDate?: string;
  documentDetails?: Record<string, unknown>;
  firstName?: string;
  middleName?: string;
  lastName?: string;
  secondLastName?: string;
  fullName?: string;
  gender?: string;
  idExpiryDate?: string;
  idIssueDate?: string;
  /** e.g. INE */
  idType?: string;
  idNumber?: string;
  nationality?: string;
  nationalityCode?: string;
  issueCountry?: string;
  issueCountryCode?: string;
}

export interface KycFaceMatchInfo extends KycCheckSection {
  faceMatchScore?: number;
}

export interface KycFraudInsights extends KycCheckSection {
  relatedSessionInsights?: KycCheckSection;
}

export interface KycAmlEntityHit {
  entityType?: string;
  name?: string;
  nameMatchScore?: number;
  alsoKnownAs?: string[];
  amlHits?: unknown[];
  dateOfBirth?: string;
  dateOfBirthMatchScore?: number;
  id?: string;
  resolutionStatus?: string;
}

export interface KycAmlInfo {
  numHits?: number;
  entityHits?: KycAmlEntityHit[];
  amlHitSummary?: Record<string, unknown>;
  searchCriteria?: { searchTerm?: string; fuzzinessScore?: number; exactMatch?: boolean };
}

export interface KycPersonalInfo {
  profession?: string;
  phoneNumber?: string;
  birthCountry?: string;
  taxId?: string;
}

export interface KycMedia {
  frontIdImageUrl?: string;
  backIdImageUrl?: string;
  selfieImageUrl?: string;
  selfieVideoUrl?: string;
}

export interface KycDetails {
  aipriseSummary?: { verificationResult?: string; [k: string]: unknown };
  /** Equals Capa's userId. */
  clientReferenceId?: string;
  clientReferenceData?: { personalInfo?: KycPersonalInfo; [k: string]: unknown };
  faceLivenessInfo?: KycCheckSection;
  faceMatchInfo?: KycFaceMatchInfo;
  fraudInsights?: KycFraudInsights;
  idInfo?: KycIdInfo;
  amlInfo?: KycAmlInfo;
  media?: KycMedia;
  verificationSessionId?: string;
  createdAt?: string;
  [k: string]: unknown;
}

// ---------------------------------------------------------------------------------------------
// Webhook settings and notification log

export interface WebhookSettings {
  id: string;
  partnerId: string;
  url: string | null;
  /** `YYYY-MM-DD HH:mm:ss.SSS`, no zone (assume UTC) — unlike the notification log. */
  createdAt: string;
  updatedAt: string;
}

export type WebhookNotificationStatus = 'PENDING' | 'SENT' | 'FAILED' | 'NOT_SENT';
export const WEBHOOK_NOTIFICATION_STATUSES = [
  'PENDING',
  'SENT',
  'FAILED',
  'NOT_SENT',
] as const satisfies readonly WebhookNotificationStatus[];

/** Item of `GET /webhook-notifications`. Timestamps are ISO-8601 with `Z`. */
export interface WebhookNotificationListItem {
  id: string;
  status: WebhookNotificationStatus;
  /** Mirrors the payload's `event`. */
  eventType: string;
  retryAttempts: number;
  manualRetryCount: number;
  createdAt: string;
  updatedAt: string;
}

/** `GET /webhook-notifications/{id}` (also what the sandbox answers to a manual retry). */
export interface WebhookNotificationDetail {
  id: string;
  status: WebhookNotificationStatus;
  retryAttempts: number;
  manualRetryCount: number;
  /** The exact event that was (to be) sent. */
  payload: CapaWebhookEvent;
  /** What the partner endpoint answered on the last failure. */
  latestErrorPayload: unknown;
  lastManualRetryAt: string | null;
  version: number;
  createdAt: string;
  updatedAt: string;
}

export interface WebhookNotificationList {
  /** Size of this page. */
  count: number;
  /** Overall number of matches. */
  total: number;
  data: WebhookNotificationListItem[];
}

export interface ListWebhookNotificationsQuery {
  status?: WebhookNotificationStatus;
  skip?: number;
  /** Default 20, max 100. */
  limit?: number;
}

// ---------------------------------------------------------------------------------------------
// Webhook events: flat JSON, no id, no timestamp, no Capa userId.

export const KYC_EVENTS = ['CREATED_KYC', 'VERIFIED_USER', 'REJECTED_KYC', 'REVIEW_NEEDED_KYC'] as const;
export type KycEvent = (typeof KYC_EVENTS)[number];

export interface CapaWebhookEvent {
  /** Only KYC and TRANSACTION exist today; tolerate anything else. */
  type: 'KYC' | 'TRANSACTION' | (string & {});
  event: string;
  externalUserId?: string;
  [k: string]: unknown;
}

export interface KycWebhookEvent extends CapaWebhookEvent {
  type: 'KYC';
  event: KycEvent;
  externalUserId: string;
}

export function isKycEvent(e: CapaWebhookEvent): e is KycWebhookEvent {
  return e.type === 'KYC' && (KYC_EVENTS as readonly string[]).includes(e.event) && typeof e.externalUserId === 'string';
}
