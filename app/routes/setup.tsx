import type { ActionFunctionArgs, LoaderFunctionArgs, MetaFunction } from '@remix-run/node';
import { data, redirect } from '@remix-run/node';
import { Form, useActionData, useLoaderData } from '@remix-run/react';
import { z } from 'zod';
import { readPublicForm, sameOrigin, sessionHeadersFor } from '~/auth.server';
import { fieldErrors } from '~/schemas';
import { createFirstAdmin, setupAvailable } from '~/setup.server';

export const meta: MetaFunction = () => [{ title: 'Set up KYC Desk' }];

const SetupSchema = z.object({
  token: z.string().min(10),
  email: z.string().trim().toLowerCase().email('Enter a valid e-mail address.'),
  name: z.string().trim().min(1, 'Enter your name.').max(100),
  password: z.string().min(10, 'At least 10 characters.').max(200),
});

/** Public, gated by the one-time token printed in the server log at first start. */
export async function loader({ request }: LoaderFunctionArgs) {
  const token = new URL(request.url).searchParams.get('token');
  const ok = await setupAvailable(token);
  if (!ok)
    throw new Response('This setup link is not valid: it was used already, it expired, or an operator already exists. Sign in at /login.', {
      status: 404,
    });
  return { token: token! };
}

export async function action({ request }: ActionFunctionArgs) {
  if (!(await sameOrigin(request)))
    return data({ errors: { form: 'Refused: the form came from another site.' } as Record<string, string> }, { status: 403 });
  const read = await readPublicForm(request);
  if (!read.ok) return data({ errors: { form: read.error } as Record<string, string> }, { status: read.status });
  const parsed = SetupSchema.safeParse(Object.fromEntries(read.form.entries()));
  if (!parsed.success) return data({ errors: fieldErrors(parsed.error) }, { status: 400 });
  const r = await createFirstAdmin(request, parsed.data.token, parsed.data);
  if (!r.ok) return data({ errors: { form: r.error } as Record<string, string> }, { status: 409 });
  throw redirect('/?flash=welcome', { headers: await sessionHeadersFor(request, r.operatorId) });
}

export default function Setup() {
  const { token } = useLoaderData<typeof loader>();
  const errors = useActionData<typeof action>()?.errors ?? {};
  return (
    <main className="page narrow">
      <h1>Create the first admin</h1>
      <p>This one-time page creates the first administrator of KYC Desk. The link stops working once used.</p>
      {errors.form ? (
        <div className="toast error" role="alert">
          {errors.form}
        </div>
      ) : null}
      <Form method="post" className="card">
        <input type="hidden" name="token" value={token} />
        <label htmlFor="name">Your name</label>
        <input id="name" name="name" required />
        {errors.name ? <p className="error">{errors.name}</p> : null}
        <label htmlFor="email">E-mail</label>
        <input id="email" name="email" type="email" autoComplete="username" required />
        {errors.email ? <p className="error">{errors.email}</p> : null}
        <label htmlFor="password">Password (10+ characters)</label>
        <input id="password" name="password" type="password" autoComplete="new-password" minLength={10} required />
        {errors.password ? <p className="error">{errors.password}</p> : null}
        <p>
          <button type="submit">Create admin and sign in</button>
        </p>
      </Form>
    </main>
  );
}
