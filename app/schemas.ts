import { z } from 'zod';
import { emailSchema, type EmailProblem } from '../domain/email';

/**
 * Form schemas shared by the browser (instant feedback) and the server (the authority).
 * Inputs arrive as strings from FormData; empty strings mean "not given".
 */
const blankToUndefined = (v: unknown) => (typeof v === 'string' && v.trim() === '' ? undefined : v);

/**
 * The one address rule (domain/email.ts): the form accepts exactly what the CSV import and the mail
 * channel accept. `missing` and `invalid` word the two refusals; the customer forms give catalogue
 * keys (the issue's params carry the problem, its character and its limit for the catalogue).
 */
const emailField = (missing: string, invalid: (r: { problem: EmailProblem; char?: string }) => string) =>
  z.string({ required_error: missing }).pipe(emailSchema({ message: (r) => (r.problem === 'missing' ? missing : invalid(r)) }));

/**
 * A link is e-mailed unless the operator ticks "don't e-mail" (handing it over in person): a
 * form that leaves the box out still sends. The language defaults from the country (server).
 */
const noEmailField = z.preprocess((v) => v === 'on' || v === 'true' || v === true, z.boolean());
const localeField = z.preprocess(
  blankToUndefined,
  z.enum(['es', 'en'], { errorMap: () => ({ message: 'users:errors.locale' }) }).optional(),
);
const countryField = z.enum(['MX', 'DO'], { errorMap: () => ({ message: 'users:errors.country' }) });
/** A request id that fails its rule was not made by our page (or is from an old one). */
const requestIdField = z
  .string({ required_error: 'users:errors.request_id' })
  .trim()
  .min(8, 'users:errors.request_id')
  .max(100, 'users:errors.request_id')
  .regex(/^[A-Za-z0-9_-]+$/, 'users:errors.request_id');

/** Messages are catalogue keys (`users:errors.*`); formErrors hands them to the page with their values. */
export const CreateUserSchema = z
  .object({
    email: emailField('users:errors.email_missing', () => 'users:errors.email_invalid'),
    type: z.enum(['INDIVIDUAL', 'BUSINESS'], { errorMap: () => ({ message: 'users:errors.type' }) }),
    externalUserId: z.preprocess(
      blankToUndefined,
      z
        .string()
        .trim()
        .min(3, 'users:errors.external_id_short')
        .max(100, 'users:errors.external_id_long')
        .regex(/^[A-Za-z0-9._:-]+$/, 'users:errors.external_id_chars')
        .optional(),
    ),
    alias: z.preprocess(blankToUndefined, z.string().trim().max(100, 'users:errors.alias_long').optional()),
    country: countryField,
    sendLink: z.preprocess((v) => v === 'on' || v === 'true' || v === true, z.boolean()),
    noEmail: noEmailField,
    locale: localeField,
    requestId: requestIdField,
  })
  .strip();
export type CreateUserForm = z.infer<typeof CreateUserSchema>;

export const LinkActionSchema = z.object({
  intent: z.literal('link'),
  country: countryField,
  noEmail: noEmailField,
  locale: localeField,
  requestId: requestIdField,
});

export const FetchActionSchema = z.object({
  intent: z.literal('fetch'),
  requestId: requestIdField,
});

export const UserActionSchema = z.discriminatedUnion('intent', [LinkActionSchema, FetchActionSchema]);

/** A form error as the page words it: a catalogue key and its values. */
export interface FormError {
  code: string;
  values?: Record<string, string | number>;
}

/**
 * Field errors keyed by field name (first issue wins), for forms whose schema messages are
 * catalogue keys. An issue zod words itself (a rule without a message of ours) becomes `fallback`.
 */
export function formErrors(err: z.ZodError, fallback = 'users:errors.invalid'): Record<string, FormError> {
  const out: Record<string, FormError> = {};
  for (const i of err.issues) {
    const k = String(i.path[0] ?? 'form');
    if (out[k]) continue;
    const code = /^[a-z][a-z0-9-]*:[a-z0-9_.]+$/.test(i.message) ? i.message : fallback;
    const values: Record<string, string | number> = {};
    const params = (i as { params?: Record<string, unknown> }).params ?? {};
    for (const [pk, pv] of Object.entries(params)) if (typeof pv === 'string' || typeof pv === 'number') values[pk] = pv;
    out[k] = Object.keys(values).length ? { code, values } : { code };
  }
  return out;
}

/** Field errors keyed by field name (first message wins), for forms whose schema messages are words. */
export function fieldErrors(err: z.ZodError): Record<string, string> {
  const out: Record<string, string> = {};
  for (const i of err.issues) {
    const k = String(i.path[0] ?? 'form');
    out[k] ??= i.message;
  }
  return out;
}

export function formToObject(form: FormData): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of form.entries()) if (typeof v === 'string' && k !== 'csrf') out[k] = v;
  return out;
}

/** A request id made at render time: a double click (or a resubmitted form) reuses it. */
export function newRequestId(): string {
  const bytes = new Uint8Array(12);
  globalThis.crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** The operators page's "add an operator" form; messages are catalogue keys (`operators:errors.*`). */
export const OperatorCreateSchema = z.object({
  intent: z.literal('create'),
  email: emailField('operators:errors.email_missing', () => 'operators:errors.email_invalid'),
  name: z.string().trim().min(1, 'operators:errors.name_missing').max(100, 'operators:errors.name_long'),
  role: z.enum(['viewer', 'compliance', 'admin'], { errorMap: () => ({ message: 'operators:errors.role' }) }),
  password: z.string().min(10, 'operators:errors.password_short').max(200, 'operators:errors.password_long'),
});
