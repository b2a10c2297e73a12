import type { LinksFunction, LoaderFunctionArgs } from '@remix-run/node';
import {
  Form,
  Links,
  Meta,
  NavLink,
  Outlet,
  Scripts,
  ScrollRestoration,
  isRouteErrorResponse,
  useNavigation,
  useRouteError,
} from '@remix-run/react';
import { currentSession } from './auth.server';
import { CsrfInput, useRootData, type RootData } from './components/csrf';
import { navFor } from './nav';
import { useNonce } from './nonce';
import styles from './styles.css';

export const links: LinksFunction = () => [{ rel: 'stylesheet', href: styles }];

/** Public: the login and setup pages render inside this layout too. Routes guard themselves. */
export async function loader({ request }: LoaderFunctionArgs): Promise<RootData> {
  const live = await currentSession(request);
  if (!live) return { operator: null, csrfToken: null };
  const { id, email, name, role } = live.operator;
  return { operator: { id, email, name, role }, csrfToken: live.session.csrfToken };
}

function TopNav() {
  const { operator } = useRootData();
  const navigation = useNavigation();
  if (!operator) return null;
  return (
    <nav className="top" aria-label="Main">
      <strong>KYC Desk</strong>
      {navFor(operator.role).map((n) => (
        <NavLink key={n.to} to={n.to} end={n.to === '/'} prefetch="intent">
          {n.label}
        </NavLink>
      ))}
      <span className="spacer" />
      {navigation.state !== 'idle' ? (
        <span className="muted" aria-live="polite">
          Loading…
        </span>
      ) : null}
      <span title={operator.email}>
        {operator.name} · <span className="role">{operator.role}</span>
      </span>
      <Form method="post" action="/logout" className="inline">
        <CsrfInput />
        <button type="submit" className="secondary small">
          Sign out
        </button>
      </Form>
    </nav>
  );
}

export function Layout({ children }: { children: React.ReactNode }) {
  const nonce = useNonce();
  return (
    <html lang="en">
      <head>
        <meta charSet="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>KYC Desk</title>
        <Meta />
        <Links />
      </head>
      <body>
        <TopNav />
        {children}
        <ScrollRestoration nonce={nonce} />
        <Scripts nonce={nonce} />
      </body>
    </html>
  );
}

export default function App() {
  return <Outlet />;
}

export function ErrorBoundary() {
  const error = useRouteError();
  const status = isRouteErrorResponse(error) ? error.status : 500;
  const text = isRouteErrorResponse(error)
    ? typeof error.data === 'string' && error.data
      ? error.data
      : error.statusText
    : 'Something went wrong on our side.';
  const title = status === 404 ? 'Not found' : status === 403 ? 'Not allowed' : status === 429 ? 'Slow down' : 'Something went wrong';
  const advice =
    status === 404
      ? 'Check the address, or find the customer from the Users list.'
      : status === 403
        ? 'Your role does not allow this. Ask an admin to change your role if you need it.'
        : 'Try again in a moment. If this keeps happening, tell the on-call engineer the time and what you clicked.';
  return (
    <main className="page error-page">
      <h1>{title}</h1>
      <p>{text}</p>
      <p>{advice}</p>
      <p className="muted">
        <a href="/">Back to the dashboard</a> · {new Date().toISOString()}
      </p>
    </main>
  );
}
