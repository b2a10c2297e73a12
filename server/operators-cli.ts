import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { createDb, migrateToLatest, type Db } from '../db/client.js';
import { appendAudit } from '../db/repositories/audit.js';
import { countOperators, findOperatorByEmail, listOperators, setOperatorDisabled } from '../db/repositories/operators.js';
import { createOperator, setOperatorPassword } from '../app/operator-accounts.server.js';
import { revokeOperatorSessions } from '../db/repositories/sessions.js';
import { AUDIT_ACTIONS } from '../db/repositories/audit-actions.js';
import { deleteAllFactors } from '../db/repositories/factors.js';
import { ROLES, type Role } from '../db/schema.js';
import { env as readEnv } from '../lib/config.js';

const USAGE = `Manage KYC Desk operators.

  npm run operators -- list
  npm run operators -- add <email> --role admin|compliance|viewer [--name "Full Name"] [--password <pw>]
  npm run operators -- disable <email>
  npm run operators -- enable <email>
  npm run operators -- reset-password <email> [--password <pw>]
  npm run operators -- reset-factors <email>     (removes their second factors and ends their sessions)
  npm run operators -- sign-out <email>          (ends every session of theirs)

Without --password, the password is read from the OPERATOR_PASSWORD variable or, on a terminal,
asked for (hidden). Passwords need at least 10 characters.`;

async function readPassword(given: string | undefined, io: CliIo): Promise<string> {
  if (given) return given;
  if (process.env.OPERATOR_PASSWORD) return process.env.OPERATOR_PASSWORD;
  return io.prompt('Password (10+ characters): ');
}

export interface CliIo {
  out(m: string): void;
  err(m: string): void;
  prompt(q: string): Promise<string>;
}

const audit = (db: Db, action: string, targetId: string, detail?: Record<string, unknown>) =>
  appendAudit(db, {
    operatorId: null,
    actor: `cli:${process.env.USER ?? 'unknown'}`,
    action,
    targetType: 'operator',
    targetId,
    outcome: 'ok',
    detail: detail ?? null,
  });

/** Runs one command; returns the exit code. Exported for tests. */
export async function runOperatorsCli(argv: string[], db: Db, io: CliIo): Promise<number> {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { role: { type: 'string' }, name: { type: 'string' }, password: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
  });
  const [cmd, email] = positionals;
  if (values.help || !cmd) {
    io.out(USAGE);
    return cmd ? 0 : 64;
  }
  switch (cmd) {
    case 'list': {
      const ops = await listOperators(db);
      if (ops.length === 0) io.out('No operators yet.');
      for (const o of ops) io.out(`${o.email.padEnd(36)} ${o.role.padEnd(11)} ${o.disabled ? 'disabled' : 'active  '} ${o.name}`);
      return 0;
    }
    case 'add': {
      if (!email) return fail(io, 'add needs an e-mail');
      const role = (values.role ?? '') as Role;
      if (!ROLES.includes(role)) return fail(io, `--role must be one of ${ROLES.join(', ')}`);
      if (await findOperatorByEmail(db, email)) return fail(io, `${email} already exists`);
      const password = await readPassword(values.password, io);
      const op = await createOperator(db, { email, name: values.name ?? email, role, password });
      await audit(db, 'operator.add', op.id, { role });
      io.out(`Added ${op.email} (${op.role}).`);
      return 0;
    }
    case 'disable':
    case 'enable': {
      if (!email) return fail(io, `${cmd} needs an e-mail`);
      const op = await findOperatorByEmail(db, email);
      if (!op) return fail(io, `no operator ${email}`);
      if (cmd === 'disable' && op.role === 'admin' && !op.disabled && (await countOperators(db, { activeAdminsOnly: true })) <= 1) {
        return fail(io, `${email} is the last active admin; add another admin first`);
      }
      await setOperatorDisabled(db, op.id, cmd === 'disable');
      if (cmd === 'disable') await revokeOperatorSessions(db, op.id);
      await audit(db, `operator.${cmd}`, op.id);
      io.out(cmd === 'disable' ? `Disabled ${op.email} and ended their sessions.` : `Enabled ${op.email}.`);
      return 0;
    }
    case 'reset-password': {
      if (!email) return fail(io, 'reset-password needs an e-mail');
      const op = await findOperatorByEmail(db, email);
      if (!op) return fail(io, `no operator ${email}`);
      const password = await readPassword(values.password, io);
      await setOperatorPassword(db, op.id, password);
      await revokeOperatorSessions(db, op.id);
      await audit(db, 'operator.reset_password', op.id);
      io.out(`Password reset for ${op.email}; their sessions were ended.`);
      return 0;
    }
    case 'reset-factors':
    case 'sign-out': {
      if (!email) return fail(io, `${cmd} needs an e-mail`);
      const op = await findOperatorByEmail(db, email);
      if (!op) return fail(io, `no operator ${email}`);
      if (cmd === 'reset-factors') await deleteAllFactors(db, op.id);
      const ended = await revokeOperatorSessions(db, op.id);
      await audit(db, cmd === 'reset-factors' ? AUDIT_ACTIONS.operatorFactorsReset : AUDIT_ACTIONS.operatorSignOut, op.id, {
        sessionsEnded: ended,
      });
      io.out(
        cmd === 'reset-factors'
          ? `Second factors removed for ${op.email} and ${ended} session(s) ended; they set one up again at their next sign-in if their role requires it.`
          : `Ended ${ended} session(s) of ${op.email}.`,
      );
      return 0;
    }
    default:
      return fail(io, `unknown command ${cmd}\n\n${USAGE}`);
  }
}

function fail(io: CliIo, m: string): number {
  io.err(`error: ${m}`);
  return 1;
}

async function promptHidden(q: string): Promise<string> {
  if (!process.stdin.isTTY) throw new Error('no password given: pass --password, set OPERATOR_PASSWORD, or run on a terminal');
  process.stdout.write(q);
  return new Promise((resolve) => {
    let buf = '';
    process.stdin.setRawMode(true);
    process.stdin.resume();
    process.stdin.setEncoding('utf8');
    const onData = (ch: string) => {
      if (ch === '\r' || ch === '\n' || ch === '\u0004') {
        process.stdin.setRawMode(false);
        process.stdin.pause();
        process.stdin.off('data', onData);
        process.stdout.write('\n');
        resolve(buf);
      } else if (ch === '\u0003') {
        process.exit(130);
      } else if (ch === '\u007f') {
        buf = buf.slice(0, -1);
      } else {
        buf += ch;
      }
    };
    process.stdin.on('data', onData);
  });
}

async function main(): Promise<void> {
  const e = readEnv();
  const db = createDb(e.DATABASE_URL);
  try {
    await migrateToLatest(db);
    const code = await runOperatorsCli(process.argv.slice(2), db, {
      out: (m) => console.log(m),
      err: (m) => console.error(m),
      prompt: promptHidden,
    });
    process.exitCode = code;
  } catch (err) {
    console.error(`error: ${(err as Error).message}`);
    process.exitCode = 1;
  } finally {
    await db.destroy();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) void main();
