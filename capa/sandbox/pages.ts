import { escapeHtml as h } from './http-util';
import type { MailMessage } from './mail';

/** Human pages of the sandbox: the fake hosted KYC page, the index and the mailbox. */

const STYLE = `
  body{font:15px/1.5 system-ui,sans-serif;max-width:760px;margin:2rem auto;padding:0 1rem;color:#1d2433}
  h1{font-size:1.4rem} .note{background:#fff7d6;border:1px solid #e6cf73;padding:.6rem .8rem;border-radius:6px}
  .card{border:1px solid #d5dbe6;border-radius:8px;padding:1rem;margin:1rem 0}
  button{font:inherit;padding:.55rem .9rem;margin:.25rem .4rem .25rem 0;border-radius:6px;border:1px solid #8894aa;background:#f4f6fa;cursor:pointer}
  button.ok{background:#1f7a3d;color:#fff;border-color:#1f7a3d} button.bad{background:#b3261e;color:#fff;border-color:#b3261e}
  button.review{background:#a36100;color:#fff;border-color:#a36100}
  code{background:#f0f2f6;padding:0 .25rem;border-radius:4px} table{border-collapse:collapse;width:100%}
  td,th{border-bottom:1px solid #e3e7ee;text-align:left;padding:.3rem .4rem;vertical-align:top}
  iframe{width:100%;min-height:320px;border:1px solid #d5dbe6;border-radius:6px;background:#fff}
  pre{white-space:pre-wrap;word-break:break-word;background:#f7f8fb;padding:.6rem;border-radius:6px}
`;

export function page(title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${h(title)}</title><style>${STYLE}</style></head><body>${body}</body></html>`;
}

export function maskEmail(email: string): string {
  const [local = '', domain = ''] = email.split('@');
  return `${local.slice(0, 1)}${'•'.repeat(Math.max(2, Math.min(6, local.length - 1)))}@${domain}`;
}

export function kycSessionPage(input: { alias?: string; email: string; country: string }): string {
  const who = input.alias ? `${h(input.alias)} (${h(maskEmail(input.email))})` : h(maskEmail(input.email));
  return page(
    'Identity verification — Capa sandbox',
    `
<h1>Identity verification</h1>
<p class="note">This is the <strong>Capa sandbox</strong>'s stand-in for the KYC provider page. No documents are
collected; choose the result the verification should have.</p>
<div class="card">
  <p>Verifying: <strong>${who}</strong><br>Country template: <code>${h(input.country)}</code></p>
  <!-- No action attribute: post back to this very URL, which also works behind a path prefix. -->
  <form method="post">
    <button class="ok" name="outcome" value="VERIFIED">Approve (verified)</button>
    <button class="bad" name="outcome" value="REJECTED">Reject</button>
    <button class="review" name="outcome" value="REVIEW_NEEDED">Needs manual review</button>
    <button name="outcome" value="PENDING">Submit and leave pending</button>
  </form>
</div>`,
  );
}

export function messagePage(title: string, text: string): string {
  return page(`${title} — Capa sandbox`, `<h1>${h(title)}</h1><p>${h(text)}</p>`);
}

export function indexPage(input: {
  url: string;
  partners: Array<{ apiKey: string; webhookUrl: string | null; partnerId: string }>;
  smtpPort: number | null;
  counts: { users: number; notifications: number; mail: number };
}): string {
  const rows = input.partners
    .map(
      (p) =>
        `<tr><td><code>${h(p.apiKey)}</code></td><td><code>${h(p.partnerId)}</code></td><td>${p.webhookUrl ? `<code>${h(p.webhookUrl)}</code>` : '<em>none (events are recorded NOT_SENT)</em>'}</td></tr>`,
    )
    .join('');
  return page(
    'Capa sandbox',
    `
<h1>Capa sandbox</h1>
<p>A local stand-in for Capa's partner API v2 (users, KYC links, KYC details, webhook settings and the
webhook notification log) with a fake hosted KYC page and signed webhooks. Base URL for the client:
<code>${h(input.url)}</code>. Every Capa path needs the header <code>partner-api-key</code>.</p>
<h2>Partners</h2>
<table><tr><th>partner-api-key</th><th>partnerId</th><th>Webhook URL</th></tr>${rows}</table>
<h2>Debug (not part of Capa)</h2>
<ul>
  <li><a href="/__sandbox/users">/__sandbox/users</a> — the sandbox's truth about ${input.counts.users} user(s) (JSON)</li>
  <li><a href="/__sandbox/stats">/__sandbox/stats</a> — counters (JSON)</li>
  <li><a href="/__sandbox/mailbox">/__sandbox/mailbox</a> — ${input.counts.mail} captured e-mail(s)${input.smtpPort !== null ? ` (SMTP on port ${input.smtpPort})` : ' (mail sink not running)'}</li>
</ul>
<p>${input.counts.notifications} webhook notification(s) recorded.</p>`,
  );
}

/** Plain-text bodies get their URLs turned into links; HTML bodies render in a sandboxed frame. */
function linkify(text: string): string {
  return h(text).replace(/https?:\/\/[^\s<>"']+/g, (url) => `<a href="${url}" target="_blank" rel="noopener">${url}</a>`);
}

export function mailboxPage(messages: MailMessage[], smtpPort: number | null): string {
  const items = messages
    .map((m) => {
      // <base target=_top> so links in the mail open in the browser window, not inside the frame.
      const frame = m.html
        ? `<iframe sandbox="allow-popups allow-top-navigation-by-user-activation" srcdoc="${h(`<base target="_top">${m.html}`)}"></iframe>`
        : '';
      const text = m.text !== null ? `<pre>${linkify(m.text)}</pre>` : '';
      return `<div class="card" id="${h(m.id)}"><p><strong>${h(m.subject || '(no subject)')}</strong><br>
From: ${h(m.from)}<br>To: ${h(m.to.join(', '))}<br><small>${h(m.receivedAt)}</small></p>${frame}${text}</div>`;
    })
    .join('');
  return page(
    'Mailbox — Capa sandbox',
    `
<h1>Mailbox</h1>
<p>${smtpPort !== null ? `SMTP sink on port <code>${smtpPort}</code> (no TLS, no auth).` : 'The mail sink is not running (start the sandbox with an SMTP port).'}
${messages.length} message(s). <a href="/">Back</a></p>
${items || '<p><em>No mail yet.</em></p>'}`,
  );
}
