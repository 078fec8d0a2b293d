/**
 * The documentation stays inside the repository: every relative link in README.md, docs/ and the packages' READMEs
 * names a file that exists here, and none climbs out of the repository.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { REPO_ROOT } from '../helpers/paths';

const markdown = (dir: string): string[] => readdirSync(join(REPO_ROOT, dir), { withFileTypes: true })
  .flatMap((entry) => (entry.isDirectory() ? markdown(join(dir, entry.name)) : entry.name.endsWith('.md') ? [join(dir, entry.name)] : []));
const DOCUMENTS = ['README.md', 'lib/README.md', 'runtime/README.md', 'contract/README.md', ...markdown('docs')];

describe('documentation links', () => {
  for (const document of DOCUMENTS) {
    it(`${document}: every relative link resolves to a file in the repository`, () => {
      const text = readFileSync(join(REPO_ROOT, document), 'utf8');
      const targets = [...text.matchAll(/\]\(([^)\s]+)\)/g)].map((match) => match[1])
        .filter((target) => !/^[a-z]+:/.test(target) && !target.startsWith('#'));
      for (const target of targets) {
        const path = resolve(dirname(join(REPO_ROOT, document)), target.split('#')[0]);
        assert.ok(!relative(REPO_ROOT, path).startsWith('..'), `${document} links outside the repository: ${target}`);
        assert.ok(existsSync(path), `${document} links to ${target}, which does not exist`);
      }
    });
  }
});
