import type { MetaFunction } from '@remix-run/node';

export const meta: MetaFunction = () => [{ title: 'Verification submitted' }];

/**
 * Public, customer-facing: where Capa's hosted KYC page sends the customer back
 * (generate-link's default redirect). Shows no data and takes no input.
 */
export default function KycReturn() {
  return (
    <main className="page narrow">
      <h1>Thank you</h1>
      <p>Your identity verification was submitted. You can close this page; we will contact you if anything else is needed.</p>
    </main>
  );
}
