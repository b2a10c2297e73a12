import pino from 'pino';

/**
 * The one logger. PII never reaches logs: known PII keys are redacted wherever they appear
 * two levels deep, and callers log ids (user id, inbox id, job id), not payloads.
 */
export const PII_KEYS = [
  'email',
  'alias',
  'password',
  'passwordHash',
  'idNumber',
  'taxId',
  'birthDate',
  'fullName',
  'firstName',
  'lastName',
  'phoneNumber',
  'address',
  'fullAddress',
  'media',
  'body',
  'rawBody',
  'payload',
  'kycLink',
  'url',
  'cookie',
  'authorization',
  'partner-api-key',
  'capa-signature',
];

const paths = PII_KEYS.flatMap((k) => [k, `*.${k}`, `*.*.${k}`].map((p) => (/[^A-Za-z0-9_*.]/.test(k) ? p.replace(k, `["${k}"]`) : p)));

export const logger = pino({
  level: process.env.LOG_LEVEL ?? (process.env.NODE_ENV === 'test' ? 'silent' : 'info'),
  base: { svc: process.env.KYC_PROCESS ?? 'kyc-desk' },
  redact: { paths, censor: '[redacted]' },
});

export type Logger = typeof logger;
