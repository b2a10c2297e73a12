import { z } from 'zod';
import { describeEmailProblem, emailSchema } from '../domain/email';

/**
 * Form schemas shared by the browser (instant feedback) and the server (the authority).
 * Inputs arrive as strings from FormData; empty strings mean "not given".
 */
const blankToUndefined = (v: unknown) => (typeof v === 'string' && v.trim() === '' ? undefined : v);

/** The one address rule (domain/email.ts): the form accepts exactly what the CSV import and the mail channel accept. */
const emailField = (missing: string) =>
  z
    .string({ required_error: missing })
    .pipe(
      emailSchema({ message: (r) => (r.problem === 'missing' ? missing : `Enter a valid e-mail address: ${describeEmailProblem(r)}.`) }),
    );

/**
 * A link is e-mailed unless the operator ticks "don't e-mail" (handing it over in person): a
 * form that leaves the box out still sends. The language defaults from the country (server).
 */
const noEmailField = z.preprocess((v) => v === 'on' || v === 'true' || v === true, z.boolean());
const localeField = z.preprocess(
  blankToUndefined,
  z.enum(['es', 'en'], { errorMap: () => ({ message: 'Choose Spanish or English.' }) }).optional(),
);

export const CreateUserSchema = z
  .object({
    email: emailField('Enter the customer’s e-mail.'),
    type: z.enum(['INDIVIDUAL', 'BUSINESS'], { errorMap: () => ({ message: 'Choose Individual or Business.' }) }),
    externalUserId: z.preprocess(
      blankToUndefined,
      z
        .string()
        .trim()
        .min(3, 'At least 3 characters.')
        .max(100, 'At most 100 characters.')
        .regex(/^[A-Za-z0-9._:-]+$/, 'Use letters, digits and . _ : - only.')
        .optional(),
    ),
    alias: z.preprocess(blankToUndefined, z.string().trim().max(100, 'At most 100 characters.').optional()),
    country: z.enum(['MX', 'DO'], { errorMap: () => ({ message: 'Choose Mexico or Dominican Republic.' }) }),
    sendLink: z.preprocess((v) => v === 'on' || v === 'true' || v === true, z.boolean()),
    noEmail: noEmailField,
    locale: localeField,
    requestId: z
      .string()
      .trim()
      .min(8)
      .max(100)
      .regex(/^[A-Za-z0-9_-]+$/),
  })
  .strip();
export type CreateUserForm = z.infer<typeof CreateUserSchema>;

export const LinkActionSchema = z.object({
  intent: z.literal('link'),
  country: z.enum(['MX', 'DO'], { errorMap: () => ({ message: 'Choose Mexico or Dominican Republic.' }) }),
  noEmail: noEmailField,
  locale: localeField,
  requestId: z
    .string()
    .trim()
    .min(8)
    .max(100)
    .regex(/^[A-Za-z0-9_-]+$/),
});

export const FetchActionSchema = z.object({
  intent: z.literal('fetch'),
  requestId: z
    .string()
    .trim()
    .min(8)
    .max(100)
    .regex(/^[A-Za-z0-9_-]+$/),
});

export const UserActionSchema = z.discriminatedUnion('intent', [LinkActionSchema, FetchActionSchema]);

/** Field errors keyed by field name (first message wins) — the shape forms render. */
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

export const OperatorCreateSchema = z.object({
  intent: z.literal('create'),
  email: emailField('Enter the operator’s e-mail.'),
  name: z.string().trim().min(1, 'Enter a name.').max(100),
  role: z.enum(['viewer', 'compliance', 'admin']),
  password: z.string().min(10, 'At least 10 characters.').max(200),
});
