// The layout's promise: a component (cni, configgen, node-agent) imports only lib/ and
// itself, and lib/ imports no component; what two components share lives in lib/.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '../..');
const COMPONENTS = ['cni', 'configgen', 'node-agent'];

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sources(path);
    return name.endsWith('.ts') ? [path] : [];
  });
}

/** Top-level folder of every relative import of `file`. */
function importedFolders(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const specifiers = [...text.matchAll(/(?:from|import)\s*\(?\s*'(\.[^']+)'/g)].map((m) => m[1]!);
  return specifiers.map((s) => relative(ROOT, resolve(dirname(file), s)).split('/')[0]!);
}

describe('layout', () => {
  for (const folder of [...COMPONENTS, 'lib']) {
    it(`${folder}/ imports ${folder === 'lib' ? 'no component' : 'only lib/ and itself'}`, () => {
      const crossings = sources(join(ROOT, folder)).flatMap((file) =>
        importedFolders(file).filter((to) => to !== folder && (folder === 'lib' || to !== 'lib') && to !== 'package.json')
          .map((to) => `${relative(ROOT, file)} -> ${to}/`));
      expect(crossings).toEqual([]);
    });
  }
});
