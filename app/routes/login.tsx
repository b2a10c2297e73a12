import type { ActionFunctionArgs, LoaderFunctionArgs, MetaFunction } from '@remix-run/node';
import { data, redirect } from '@remix-run/node';
import { Form, useActionData, useNavigation, useSearchParams } from '@remix-run/react';
import { currentSession, readPublicForm, safeNext, sameOrigin, signIn } from '~/auth.server';
import { FlashToast } from '~/components/toast';

export const meta: MetaFunction = () => [{ title: 'Sign in — KYC Desk' }];

/** Public. A signed-in operator is sent on to where they were going. */
export async function loader({ request }: LoaderFunctionArgs) {
  const next = safeNext(new URL(request.url).searchParams.get('next'));
  if (await currentSession(request)) throw redirect(next);
  return { next };
}

/** Public, but only from our own pages (login CSRF: nobody can sign a browser into their account). */
export async function action({ request }: ActionFunctionArgs) {
  if (!(await sameOrigin(request)))
    return data({ error: 'This sign-in form was sent from another site and was refused.' }, { status: 403 });
  const read = await readPublicForm(request);
  if (!read.ok) return data({ error: read.error }, { status: read.status });
  const { form } = read;
  const email = String(form.get('email') ?? '');
  const password = String(form.get('password') ?? '');
  const next = safeNext(String(form.get('next') ?? '/'));
  if (!email || !password) return data({ error: 'Enter your e-mail and password.' }, { status: 400 });
  const r = await signIn(request, email, password);
  if (!r.ok) return data({ error: r.error }, { status: r.status });
  throw redirect(next, { headers: r.headers });
}

export default function Login() {
  const actionData = useActionData<typeof action>();
  const [params] = useSearchParams();
  const busy = useNavigation().state === 'submitting';
  return (
    <main className="page narrow">
      <h1>Sign in to KYC Desk</h1>
      <FlashToast />
      {actionData?.error ? (
        <div className="toast error" role="alert">
          {actionData.error}
        </div>
      ) : null}
      <Form method="post" className="card">
        <input type="hidden" name="next" value={safeNextClient(params.get('next'))} />
        <label htmlFor="email">E-mail</label>
        <input id="email" name="email" type="email" autoComplete="username" required autoFocus />
        <label htmlFor="password">Password</label>
        <input id="password" name="password" type="password" autoComplete="current-password" required />
        <p>
          <button type="submit" disabled={busy}>
            {busy ? 'Signing in…' : 'Sign in'}
          </button>
        </p>
      </Form>
      <p className="muted">No account? Ask an admin. First start: the setup link is printed in the server log.</p>
    </main>
  );
}

function safeNextClient(next: string | null): string {
  return next && next.startsWith('/') && !next.startsWith('//') && !next.startsWith('/\\') ? next : '/';
}
