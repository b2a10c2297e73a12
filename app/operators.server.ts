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
import { fieldErrors, formToObject, OperatorCreateSchema } from './schemas';
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
    password: z.string().min(10, 'At least 10 characters.').max(200),
  }),
]);

export type ManageResult = { tone: 'ok' | 'error'; text: string; errors?: Record<string, string> };

export async function manageOperator(request: Request, who: SignedIn, form: FormData): Promise<ManageResult> {
  const { db } = await services();
  const parsed = ManageSchema.safeParse(formToObject(form));
  if (!parsed.success) return { tone: 'error', text: 'Check the form.', errors: fieldErrors(parsed.error) };
  const a = parsed.data;
  const audit = (action: string, targetId: string | null, outcome: 'ok' | 'error', detail?: Record<string, unknown>) =>
    auditAction(request, who, { action, targetType: 'operator', targetId, outcome, detail: detail ?? null });

  if (a.intent === 'create') {
    if (await findOperatorByEmail(db, a.email)) {
      await audit('operator.add', null, 'error', { reason: 'email exists' });
      return { tone: 'error', text: 'An operator with this e-mail already exists.', errors: { email: 'Already exists.' } };
    }
    const op = await createOperator(db, a);
    await audit('operator.add', op.id, 'ok', { role: a.role });
    return { tone: 'ok', text: `Added ${op.email} as ${op.role}.` };
  }

  const target = await findOperatorById(db, a.id);
  if (!target) return { tone: 'error', text: 'No such operator.' };
  // Never leave the console without an active admin (and never lock yourself out by accident).
  const removesAdmin =
    target.role === 'admin' && !target.disabled && (a.intent === 'disable' || (a.intent === 'role' && a.role !== 'admin'));
  if (removesAdmin && (await countOperators(db, { activeAdminsOnly: true })) <= 1) {
    await audit(`operator.${a.intent}`, target.id, 'error', { reason: 'last admin' });
    return { tone: 'error', text: 'This is the last active admin; add another admin first.' };
  }
  if (target.id === who.operator.id && (a.intent === 'disable' || a.intent === 'role')) {
    await audit(`operator.${a.intent}`, target.id, 'error', { reason: 'self' });
    return { tone: 'error', text: 'You cannot disable yourself or change your own role; ask another admin.' };
  }
  switch (a.intent) {
    case 'disable':
      await setOperatorDisabled(db, target.id, true);
      await revokeOperatorSessions(db, target.id);
      await audit('operator.disable', target.id, 'ok');
      return { tone: 'ok', text: `${target.email} is disabled and signed out everywhere.` };
    case 'enable':
      await setOperatorDisabled(db, target.id, false);
      await audit('operator.enable', target.id, 'ok');
      return { tone: 'ok', text: `${target.email} is enabled.` };
    case 'role':
      await setOperatorRole(db, target.id, a.role);
      await audit('operator.role', target.id, 'ok', { from: target.role, to: a.role });
      return { tone: 'ok', text: `${target.email} is now ${a.role}.` };
    case 'reset-password':
      await setOperatorPassword(db, target.id, a.password);
      await revokeOperatorSessions(db, target.id);
      await audit('operator.reset_password', target.id, 'ok');
      return { tone: 'ok', text: `Password reset for ${target.email}; their sessions were ended.` };
  }
}
