import js from '@eslint/js';
import prettier from 'eslint-config-prettier';
import reactHooks from 'eslint-plugin-react-hooks';
import globals from 'globals';
import i18next from 'eslint-plugin-i18next';
import tseslint from 'typescript-eslint';

/** Comments say why, never which ticket: a ticket number means nothing to the next reader. */
const noTicketComments = {
  meta: { type: 'suggestion', messages: { ticket: 'Comments explain why; do not cite issue or ticket numbers.' }, schema: [] },
  create(context) {
    return {
      Program() {
        for (const c of context.sourceCode.getAllComments()) {
          if (/\b(issues?|tickets?)\s*#?\d+|(^|\s)#\d{1,4}\b/i.test(c.value)) context.report({ loc: c.loc, messageId: 'ticket' });
        }
      },
    };
  },
};

/**
 * Screens: every word a person reads comes from a catalogue (app/locales): text in JSX, strings
 * chosen inside JSX expressions, and the attributes people read (title, placeholder, aria-label,
 * alt, label). Every route and shared component; a new screen is checked from its first line.
 */
const TRANSLATED_SCREENS = ['app/root.tsx', 'app/routes/**/*.{ts,tsx}', 'app/components/**/*.{ts,tsx}'];

export default tseslint.config(
  { ignores: ['node_modules/', 'build/', 'public/build/', 'data/', 'bench/results/', '.cache/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.{ts,tsx,js,mjs,cjs}'],
    languageOptions: { globals: { ...globals.node, ...globals.browser } },
    plugins: { 'react-hooks': reactHooks, house: { rules: { 'no-ticket-comments': noTicketComments } } },
    rules: {
      ...reactHooks.configs.recommended.rules,
      'house/no-ticket-comments': 'error',
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none', ignoreRestSiblings: true },
      ],
      'no-empty': ['error', { allowEmptyCatch: true }],
      // Input checks look for control characters on purpose (e-mail rule, header and CSV sanitising).
      'no-control-regex': 'off',
    },
  },
  {
    // All SQL lives in db/ (tests may tamper with rows directly; bench seeds data).
    files: ['{lib,domain,capa,jobs,app,server}/**/*.{ts,tsx}'],
    ignores: ['**/*.test.{ts,tsx}'],
    rules: {
      'no-restricted-syntax': [
        'error',
        {
          selector: 'CallExpression[callee.property.name=/^(selectFrom|insertInto|updateTable|deleteFrom|replaceInto|mergeInto)$/]',
          message: 'Queries live in db/repositories: add a function there.',
        },
        { selector: "TaggedTemplateExpression[tag.name='sql']", message: 'Queries live in db/repositories: add a function there.' },
      ],
    },
  },
  {
    files: TRANSLATED_SCREENS,
    ignores: ['**/*.test.{ts,tsx}'],
    plugins: { i18next },
    rules: {
      'i18next/no-literal-string': [
        'error',
        {
          mode: 'jsx-only',
          'jsx-attributes': { include: ['title', 'placeholder', 'aria-label', 'alt', 'label'] },
          // Not words to translate: digits, punctuation, arrows and separators; codes in capitals
          // (VERIFIED, CSV); identifiers, keys and values in lower case without spaces ('asc',
          // 'users:list.empty', 'created-queued'); paths ('/users').
          words: {
            exclude: [
              '[0-9!-/:-@[-`{-~\\s·—–…←→↑↓▲▼•×✓✗]+',
              '[A-Z0-9_-]+',
              '[a-z][a-z0-9]*([_.:/-][a-zA-Z0-9]+)*',
              '/[\\w/.:?=&%#-]*',
              /^\p{Emoji}+$/u,
            ],
          },
          message: 'Text a person reads comes from a catalogue (app/locales, t())',
        },
      ],
    },
  },
  { files: ['**/*.cjs'], languageOptions: { sourceType: 'commonjs' }, rules: { '@typescript-eslint/no-require-imports': 'off' } },
  prettier,
);
