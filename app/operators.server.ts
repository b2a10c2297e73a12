import { AUDIT_ACTIONS } from '../db/repositories/audit-actions.js';
import { z } from 'zod';
import {
  countOperators,
  findOperatorByEmail,
  findOperatorById,
  listOperators,
  setOperatorDisabled,
  setOperatorRole,
} from '../db/repositories/operators.js';
import { createOperator, setOperatorPassword } from './operator-accounts.server';
import { revokeOperatorSessions } from '../db/repositories/sessions.js';
import { auditAction, type SignedIn } from './auth.server';
import { formErrors, formToObject, OperatorCreateSchema, type FormError } from './schemas';
import { services } from './services.server';

export async function operatorsData() {
  const { db } = await services();
  return { operators: await listOperators(db) };
}

const ManageSchema = z.discriminatedUnion('intent', [
  OperatorCreateSchema,
  z.object({ intent: z.literal('disable'), id: z.string().min(1) }),
  z.object({ intent: z.literal('enable'), id: z.string().min(1) }),
  z.object({ intent: z.literal('role'), id: z.string().min(1), role: z.enum(['viewer', 'compliance', 'admin']) }),
  z.object({
    intent: z.literal('reset-password'),
    id: z.string().min(1),
    password: z.string().min(10, 'operators:errors.password_short').max(200, 'operators:errors.password_long'),
  }),
]);

/** `code` is the toast's catalogue key; `errors` are per-field codes (the schema's messages). */
export type ManageResult = { tone: 'ok' | 'error'; code: string; values?: Record<string, string>; errors?: Record<string, FormError> };

const say = (tone: ManageResult['tone'], key: string, values?: Record<string, string>): ManageResult => ({
  tone,
  code: `operators:messages.${key}`,
  ...(values ? { values } : {}),
});

export async function manageOperator(request: Request, who: SignedIn, form: FormData): Promise<ManageResult> {
  const { db } = await services();
  const parsed = ManageSchema.safeParse(formToObject(form));
  if (!parsed.success) return { ...say('error', 'check_form'), errors: formErrors(parsed.error, 'operators:errors.invalid') };
  const a = parsed.data;
  const audit = (action: string, targetId: string | null, outcome: 'ok' | 'error', detail?: Record<string, unknown>) =>
    auditAction(request, who, { action, targetType: 'operator', targetId, outcome, detail: detail ?? null });

  if (a.intent === 'create') {
    if (await findOperatorByEmail(db, a.email)) {
      await audit(AUDIT_ACTIONS.operatorAdd, null, 'error', { reason: 'email exists' });
      return { ...say('error', 'email_exists'), errors: { email: { code: 'operators:errors.email_exists' } } };
    }
    const op = await createOperator(db, a);
    await audit(AUDIT_ACTIONS.operatorAdd, op.id, 'ok', { role: a.role });
    return say('ok', 'added', { email: op.email, role: op.role });
  }

  const target = await findOperatorById(db, a.id);
  if (!target) return say('error', 'no_operator');
  // Never leave the console without an active admin (and never lock yourself out by accident).
  const removesAdmin =
    target.role === 'admin' && !target.disabled && (a.intent === 'disable' || (a.intent === 'role' && a.role !== 'admin'));
  if (removesAdmin && (await countOperators(db, { activeAdminsOnly: true })) <= 1) {
    await audit(`operator.${a.intent}`, target.id, 'error', { reason: 'last admin' });
    return say('error', 'last_admin');
  }
  if (target.id === who.operator.id && (a.intent === 'disable' || a.intent === 'role')) {
    await audit(`operator.${a.intent}`, target.id, 'error', { reason: 'self' });
    return say('error', 'self');
  }
  switch (a.intent) {
    case 'disable':
      await setOperatorDisabled(db, target.id, true);
      await revokeOperatorSessions(db, target.id);
      await audit('operator.disable', target.id, 'ok');
      return say('ok', 'disabled', { email: target.email });
    case 'enable':
      await setOperatorDisabled(db, target.id, false);
      await audit('operator.enable', target.id, 'ok');
      return say('ok', 'enabled', { email: target.email });
    case 'role':
      await setOperatorRole(db, target.id, a.role);
      await audit(AUDIT_ACTIONS.operatorRole, target.id, 'ok', { from: target.role, to: a.role });
      return say('ok', 'role_changed', { email: target.email, role: a.role });
    case 'reset-password':
      await setOperatorPassword(db, target.id, a.password);
      await revokeOperatorSessions(db, target.id);
      await audit(AUDIT_ACTIONS.operatorResetPassword, target.id, 'ok');
      return say('ok', 'password_reset', { email: target.email });
  }
}
