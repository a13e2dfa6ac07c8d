// Installing and running ctx prints no npm warnings (issue 13, item 8), and the CUDA download of
// onnxruntime-node stays skipped: npm ≥ 11 blocks dependency install scripts unless package.json's
// allowScripts allows them, and an explicit `false` keeps `npm install` from listing them as pending.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { REPO_ROOT } from './helpers/fixtures.js';

const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8'));

describe('package', () => {
  it('denies the install scripts of onnxruntime-node (CUDA download) and esbuild explicitly', () => {
    assert.equal(pkg.allowScripts?.['onnxruntime-node'], false);
    assert.equal(pkg.allowScripts?.esbuild, false);
  });

  it('has no project .npmrc keys that npm does not know (each one is a warning on every npx ctx)', () => {
    assert.equal(existsSync(join(REPO_ROOT, '.npmrc')), false, '.npmrc with onnxruntime-node-install=skip warns on npm 11');
  });

  it('npm itself prints no warning in this folder', (t) => {
    const r = spawnSync('npm', ['pkg', 'get', 'name'], { cwd: REPO_ROOT, encoding: 'utf8' });
    if (r.error) return t.skip(`npm not runnable: ${r.error.message}`);
    assert.equal(r.status, 0);
    assert.doesNotMatch(r.stderr, /npm warn/i);
  });
});
