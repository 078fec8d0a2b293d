#!/usr/bin/env node
// Checks that a release tag names the version every published workspace package carries, and that the packages
// depend on each other at exactly that version. The packages are released in lockstep: a runtime that declared
// `@modelship/contract@^0.1.0` while the tag says 0.2.0 would install a contract from another release.
//
//   node scripts/check-release-version.mjs v1.2.3 [repo-root]
//
// Exit status: 0 when everything matches, 1 when something differs (each difference on its own line), 2 on bad usage
// or an unreadable package.json. No dependencies, so it runs before `npm ci`.
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

// The dependency fields a consumer's install resolves. devDependencies are left out: nobody installs them from the
// registry, and the workspace link serves them during development.
const DEPENDENCY_FIELDS = ['dependencies', 'optionalDependencies', 'peerDependencies'];
// Only what npm itself accepts as a version: no build metadata, which the registry drops.
const TAG = /^v(\d+\.\d+\.\d+(?:-[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?)$/;

function usage(message) {
  console.error(`check-release-version: ${message}`);
  console.error('usage: node scripts/check-release-version.mjs v<major>.<minor>.<patch>[-<prerelease>] [repo-root]');
  process.exit(2);
}

function readPackage(file) {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    usage(`cannot read ${file}: ${error.message}`);
  }
}

const [tag, rootArg] = process.argv.slice(2);
if (!tag) usage('no tag given');
const match = TAG.exec(tag);
if (!match) usage(`tag '${tag}' is not v<major>.<minor>.<patch>[-<prerelease>]`);
const version = match[1];
// By default the repository this script belongs to, wherever it is run from.
const root = rootArg ? resolve(rootArg) : fileURLToPath(new URL('..', import.meta.url));

const rootPackage = readPackage(join(root, 'package.json'));
const patterns = Array.isArray(rootPackage.workspaces) ? rootPackage.workspaces : rootPackage.workspaces?.packages;
if (!Array.isArray(patterns) || patterns.length === 0) usage(`${join(root, 'package.json')} lists no workspaces`);
// npm expands globs here; this script would need a glob library to do the same, so it asks for plain directories.
const globbed = patterns.filter((p) => /[*?[\]{}!]/.test(p));
if (globbed.length > 0) usage(`workspaces must be plain directories, not patterns: ${globbed.join(', ')}`);

const workspaces = patterns.map((dir) => {
  const file = join(dir, 'package.json');
  return { dir, file, pkg: readPackage(join(root, file)) };
});
const byName = new Map(workspaces.map((w) => [w.pkg.name, w]));
const problems = [];
const published = [];
for (const { file, pkg } of workspaces) {
  if (typeof pkg.name !== 'string' || pkg.name === '') {
    problems.push(`${file} has no name`);
    continue;
  }
  // `npm publish --workspaces` skips private packages, so their version is not part of the release.
  if (pkg.private === true) continue;
  published.push(pkg.name);
  if (pkg.version !== version) {
    problems.push(`${pkg.name} (${file}) is at version ${pkg.version ?? '(none)'}, but the tag ${tag} is version ${version}`);
  }
  for (const field of DEPENDENCY_FIELDS) {
    for (const [dep, range] of Object.entries(pkg[field] ?? {})) {
      const internal = byName.get(dep);
      if (!internal) continue;
      if (internal.pkg.private === true) {
        problems.push(`${pkg.name} (${file}) has ${dep} in ${field}, but ${dep} is private and will not be published`);
      } else if (range !== version) {
        problems.push(`${pkg.name} (${file}) has ${dep} ${range} in ${field}, but the release needs exactly ${version}`);
      }
    }
  }
}

if (published.length === 0) problems.push('every workspace is private: there is nothing to publish');
if (problems.length > 0) {
  console.error(`check-release-version: the packages do not match the tag ${tag}:`);
  for (const problem of problems) console.error(`  ${problem}`);
  process.exit(1);
}
console.log(`check-release-version: ${published.join(', ')} at ${version}, matching ${tag}`);
