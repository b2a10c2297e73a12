import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * domain/ holds the product's rules with no I/O; every layer (and the browser bundle) imports
 * it, so it may import nothing from the project but its own files, and no Node built-ins.
 */
describe('the domain layer', () => {
  const dir = path.dirname(new URL(import.meta.url).pathname);
  const sources = readdirSync(dir).filter((f) => /\.tsx?$/.test(f) && !/\.test\.tsx?$/.test(f));

  it('imports only its own files and packages, never the rest of the project or node:*', () => {
    expect(sources.length).toBeGreaterThan(0);
    for (const f of sources) {
      const text = readFileSync(path.join(dir, f), 'utf8');
      const specifiers = [
        ...text.matchAll(/^\s*(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]/gm),
        ...text.matchAll(/import\(\s*['"]([^'"]+)['"]\s*\)/g),
      ].map((m) => m[1]!);
      for (const s of specifiers) {
        const outside = s.startsWith('.')
          ? !path.resolve(dir, s).startsWith(`${dir}${path.sep}`)
          : s.startsWith('~') || s.startsWith('node:');
        expect(outside, `${f} imports ${s}`).toBe(false);
      }
    }
  });
});
