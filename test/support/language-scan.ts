import type { Page } from 'playwright-core';
import { resources } from '../../app/i18n.js';

/**
 * Finds words of the wrong language on a page: phrases that only one language's catalogues have,
 * and common words of the other language that no catalogue of ours would leave behind.
 */
type Tree = { [k: string]: string | Tree };
type Lng = 'es' | 'en';
const texts = (tree: Tree): string[] => Object.values(tree).flatMap((v) => (typeof v === 'string' ? [v] : texts(v)));
const catalogue = (lng: Lng, ns: string) => (resources[lng] as unknown as Record<string, Tree>)[ns] ?? {};

/**
 * Phrases only `lng` has in the given namespaces: each text cut at its placeholders and nesting,
 * pieces of at least two words and ten characters that appear nowhere in the other language's
 * catalogues (all of them: a phrase the other language also uses proves nothing).
 */
export function phrasesOnlyIn(lng: Lng, namespaces: readonly string[]): string[] {
  const other: Lng = lng === 'es' ? 'en' : 'es';
  const theirs = Object.keys(resources[other])
    .flatMap((ns) => texts(catalogue(other, ns)))
    .join('\n');
  const out = new Set<string>();
  for (const text of namespaces.flatMap((ns) => texts(catalogue(lng, ns)))) {
    for (const piece of text.split(/\{\{[^}]*\}\}|\$t\([^)]*\)/)) {
      const p = piece.trim().replace(/^[\s.,:;()“”«»"—–·-]+|[\s.,:;()“”«»"—–·-]+$/g, '');
      if (p.length >= 10 && /\S\s+\S/.test(p) && !theirs.includes(p)) out.add(p);
    }
  }
  return [...out];
}

/**
 * Everyday words of each language that the other language's pages never use. Case matters for
 * the capitalised ones (headings, buttons); data on the fixtures avoids them.
 */
export const WORDS: Record<Lng, RegExp> = {
  en: /\b(the|and|with|from|this|that|your|were|was|been|has|have|will|not|for|of|to|in|on|by|is|are|ago|Customers?|customers?|Status|Failed|Retry|Waiting|Created|Updated|Received|Nothing|Search|Apply|Clear|Preview|Settings|Notes|Tasks|Queues?|deliver(y|ies)|messages?)\b/,
  es: /(?<![\p{L}\d])(el|la|los|las|del|que|una|para|con|por|está|están|sin|hace|Clientes?|clientes?|Estado|Reintentar|Enviar|Buscar|Limpiar|Aplicar|entregas?|correo|todavía|ningún|ninguna|Notas?|Tareas|Colas?|mensajes?)(?![\p{L}\d])/u,
};

/**
 * The words a person reads in the page's <main>: text and the placeholder and aria-label
 * attributes. Left out, because they are data rather than our words: code and pre blocks (ids,
 * payloads, hashes, what a log recorded) and anything marked with its own `lang` (a customer's
 * e-mail shown as it was sent).
 */
export async function visibleWords(page: Page): Promise<string> {
  return page.evaluate(() => {
    const main = document.querySelector('main');
    if (!main) return '';
    const skip = (el: Element | null) => Boolean(el?.closest('code, pre, script, style, [lang]:not(html)'));
    const out: string[] = [];
    const walker = document.createTreeWalker(main, NodeFilter.SHOW_TEXT);
    for (let n = walker.nextNode(); n; n = walker.nextNode()) if (!skip(n.parentElement)) out.push(n.textContent ?? '');
    for (const el of main.querySelectorAll('[placeholder], [aria-label]')) {
      if (skip(el)) continue;
      for (const a of ['placeholder', 'aria-label']) if (el.getAttribute(a)) out.push(el.getAttribute(a)!);
    }
    return out.join(' ').replace(/\s+/g, ' ');
  });
}

/** What of the other language is on the page: its catalogue phrases and its everyday words. */
export async function otherLanguageOn(
  page: Page,
  lng: Lng,
  namespaces: readonly string[],
): Promise<{ phrases: string[]; words: string[] }> {
  const text = await visibleWords(page);
  const other: Lng = lng === 'es' ? 'en' : 'es';
  const phrases = phrasesOnlyIn(other, namespaces).filter((p) => text.includes(p));
  const words = [...text.matchAll(new RegExp(WORDS[other].source, `g${WORDS[other].flags}`))].map((m) => {
    const at = m.index ?? 0;
    return `${m[0]} (…${text.slice(Math.max(0, at - 30), at + 30)}…)`;
  });
  return { phrases, words };
}
