import type { LinksFunction, LoaderFunctionArgs, MetaFunction } from '@remix-run/node';
import {
  Form,
  Links,
  Meta,
  NavLink,
  Outlet,
  Scripts,
  ScrollRestoration,
  isRouteErrorResponse,
  useLocation,
  useNavigation,
  useRouteError,
  useRouteLoaderData,
} from '@remix-run/react';
import { useTranslation } from 'react-i18next';
import { useChangeLanguage } from 'remix-i18next/react';
import { alertBadge, type AlertBadgeData } from './alerts.server';
import { anySession } from './auth.server';
import { AlertBadge } from './components/alert-badge';
import { CsrfInput, useRootData, type RootData } from './components/csrf';
import { useFormat } from './components/format';
import { routeErrorMessage } from './components/route-error';
import { LANGUAGES, pageTitle } from './i18n';
import { localeForOperator } from './i18n.server';
import { navFor } from './nav';
import { useNonce } from './nonce';
import styles from './styles.css';

export const links: LinksFunction = () => [{ rel: 'stylesheet', href: styles }];

/** The title of a page that gives none of its own. */
export const meta: MetaFunction = ({ matches }) => [{ title: pageTitle(matches, 'common:app_name') }];

/**
 * Public: the login and setup pages render inside this layout too. Routes guard themselves.
 * Also decides the page's language and time zone (app/i18n.server.ts), which entry.server.tsx
 * renders with and the browser reads back from `<html lang>`.
 */
export async function loader({ request }: LoaderFunctionArgs): Promise<RootData & { alerts?: AlertBadgeData | null }> {
  const any = await anySession(request);
  const live = any?.session.stage === 'full' ? any : null;
  // An operator whose password was accepted is known: the second-factor pages speak their language too.
  const { locale, timeZone } = await localeForOperator(request, any?.operator.id ?? null);
  if (!live) return { operator: null, csrfToken: null, locale, timeZone };
  const { id, email, name, role } = live.operator;
  // The header's alert badge; a failure to count must not take every page down with it.
  const alerts = await alertBadge().catch(() => null);
  return { operator: { id, email, name, role }, csrfToken: live.session.csrfToken, locale, timeZone, alerts };
}

function TopNav() {
  const { t } = useTranslation('common');
  const { operator } = useRootData();
  const navigation = useNavigation();
  if (!operator) return null;
  return (
    <nav className="top" aria-label={t('nav.main')}>
      <strong>{t('app_name')}</strong>
      {navFor(operator.role).map((n) => (
        <NavLink key={n.to} to={n.to} end={n.to === '/'} prefetch="intent">
          {t(n.label)}
        </NavLink>
      ))}
      <AlertBadge />
      <span className="spacer" />
      {navigation.state !== 'idle' ? (
        <span className="muted" aria-live="polite">
          {t('nav.loading')}
        </span>
      ) : null}
      <LanguageSwitch />
      <span title={operator.email}>
        <NavLink to="/account">{operator.name}</NavLink> · <span className="role">{t(`roles.${operator.role}`)}</span>
      </span>
      <Form method="post" action="/logout" className="inline">
        <CsrfInput />
        <button type="submit" className="secondary small">
          {t('nav.sign_out')}
        </button>
      </Form>
    </nav>
  );
}

/**
 * One button per other language, named in that language ("English" on a Spanish page): it stores
 * the operator's choice and comes back to this page (without its one-time flash message).
 */
function LanguageSwitch() {
  const { t, i18n } = useTranslation('common');
  const location = useLocation();
  const params = new URLSearchParams(location.search);
  params.delete('flash');
  const here = `${location.pathname}${params.size ? `?${params}` : ''}`;
  return (
    <Form method="post" action="/account/language" className="inline" aria-label={t('language_switch.label')}>
      <CsrfInput />
      <input type="hidden" name="returnTo" value={here} />
      {LANGUAGES.filter((l) => l !== i18n.language).map((l) => (
        <button
          key={l}
          type="submit"
          name="locale"
          value={l}
          lang={l}
          className="secondary small"
          title={t('language_switch.to', { language: t(`languages.${l}`) })}
        >
          {t(`languages.${l}`)}
        </button>
      ))}
    </Form>
  );
}

export function Layout({ children }: { children: React.ReactNode }) {
  const nonce = useNonce();
  const { i18n } = useTranslation('common');
  const root = useRouteLoaderData('root') as RootData | undefined;
  // Without root data (its loader failed) the page is in the language the server rendered it in.
  const locale = root?.locale ?? i18n.language;
  // After the operator changes language the root loader answers in the new one; follow it.
  useChangeLanguage(locale);
  return (
    <html lang={locale}>
      <head>
        <meta charSet="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
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
  const { t } = useTranslation('common');
  const fmt = useFormat();
  const error = useRouteError();
  const status = isRouteErrorResponse(error) ? error.status : 500;
  const text = isRouteErrorResponse(error)
    ? routeErrorMessage(error, t('errors.unexpected'), t) || error.statusText
    : t('errors.unexpected');
  const kind = status === 404 || status === 403 || status === 429 ? String(status) : 'generic';
  const advice = status === 404 || status === 403 ? String(status) : 'generic';
  const now = new Date();
  return (
    <main className="page error-page">
      <h1>{t(`errors.title_${kind}`)}</h1>
      <p>{text}</p>
      <p>{t(`errors.advice_${advice}`)}</p>
      <p className="muted">
        <a href="/">{t('errors.back_home')}</a> · {/* The moment the page was drawn: the server's and the browser's differ by design. */}
        <time dateTime={now.toISOString()} suppressHydrationWarning>
          {fmt.dateTime(now, { seconds: true })}
        </time>
      </p>
    </main>
  );
}
