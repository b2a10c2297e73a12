import type { ActionFunctionArgs, LoaderFunctionArgs, MetaFunction } from '@remix-run/node';
import { Form, Link, useActionData, useLoaderData } from '@remix-run/react';
import { useTranslation } from 'react-i18next';
import { requireMutation, requireOperator } from '~/auth.server';
import { CsrfInput } from '~/components/csrf';
import { useSay } from '~/components/message';
import { ActionToast, Time } from '~/components/ops';
import { erasurePageData, runErasureAction } from '~/evidence.server';
import { pageTitle } from '~/i18n';

export const meta: MetaFunction = ({ matches }) => [{ title: pageTitle(matches, 'evidence:erasure.page_title') }];

export async function loader({ request, params }: LoaderFunctionArgs) {
  await requireOperator(request, 'admin');
  return erasurePageData(params.id ?? '');
}

export async function action({ request, params }: ActionFunctionArgs) {
  const who = await requireMutation(request, 'admin');
  return runErasureAction(request, who, params.id ?? '', who.form);
}

export default function Erasure() {
  const { t } = useTranslation('evidence');
  const d = useLoaderData<typeof loader>();
  const result = useActionData<typeof action>();
  const say = useSay();
  return (
    <main className="page">
      <p>
        <Link to={`/users/${d.user.id}`}>{d.user.externalUserId}</Link>
      </p>
      <h1>{t('erasure.heading', { id: d.user.externalUserId })}</h1>
      <ActionToast result={result} />
      <section className="card">
        <h2>{t('erasure.hold_heading')}</h2>
        <p data-testid="hold">{d.legalHold ? t('erasure.hold_on', { reason: d.legalHoldReason ?? '' }) : t('erasure.hold_off')}</p>
        <Form method="post">
          <CsrfInput />
          {d.legalHold ? (
            <button type="submit" name="intent" value="release">
              {t('erasure.release')}
            </button>
          ) : (
            <>
              <label>
                {t('erasure.reason')} <input name="reason" required maxLength={1000} />
              </label>{' '}
              <button type="submit" name="intent" value="hold">
                {t('erasure.hold')}
              </button>
            </>
          )}
        </Form>
      </section>
      <section className="card">
        <h2>{t('erasure.erase_heading')}</h2>
        {d.user.erasedAt ? (
          <p>
            {t('erasure.erased_at')} <Time iso={d.user.erasedAt} />
          </p>
        ) : (
          <Form method="post">
            <CsrfInput />
            <p className="muted">{t('erasure.erase_intro')}</p>
            <label>
              {t('erasure.reason')} <input name="reason" required maxLength={1000} />
            </label>
            <label>
              <input type="checkbox" name="confirm" value="yes" required /> {t('erasure.confirm')}
            </label>
            <button type="submit" name="intent" value="erase" className="danger" disabled={d.legalHold}>
              {t('erasure.erase')}
            </button>
          </Form>
        )}
      </section>
      {d.erasures.length ? (
        <section className="card">
          <h2>{t('erasure.reports_heading')}</h2>
          {d.erasures.map((e) => (
            <div key={e.id} data-testid="erasure-report">
              <h3>
                <Time iso={e.at} /> · {t(`erasure.kinds.${e.kind}`)}
              </h3>
              {e.reason ? (
                <p data-testid="erasure-reason">
                  {say(e.reason)} · <Link to="/audit/retention">{t('retention.heading')}</Link>
                </p>
              ) : null}
              <ul>
                {/* What was erased, in words; the table's own name on hover. */}
                {Object.entries(e.report).map(([table, count]) => (
                  <li key={table} title={table}>
                    {t('erasure.rows', { table: t(`erasure.tables.${table}`), count })}
                  </li>
                ))}
              </ul>
            </div>
          ))}
        </section>
      ) : null}
    </main>
  );
}
