// Shared test plumbing for the input and CLI suites: the generated input fixtures, ../shared, and
// scratch folders that are removed after the test file.

import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ensureInputFixtures, type FixtureManifest } from '../../scripts/make-fixtures.js';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface InputFixtures {
  dir: string;
  manifest: FixtureManifest;
  /** Absolute path of a fixture file or folder. */
  path(rel: string): string;
  /** A skip reason for PDF tests when the PDF tools were missing, else false. */
  skipPdf: string | false;
}

let cached: InputFixtures | null = null;

/** Builds fixtures/generated/inputs-v<N>/ if needed (fast when it exists) and describes it. */
export function inputFixtures(): InputFixtures {
  if (cached) return cached;
  const { dir, manifest } = ensureInputFixtures();
  cached = {
    dir,
    manifest,
    path: (rel) => join(dir, rel),
    skipPdf: manifest.pdf ? false : `PDF fixtures were not built: ${manifest.pdfMissing?.join(', ')} not installed (apt-get install enscript ghostscript)`,
  };
  return cached;
}

/** A path under ../shared (beside the repo), or a skip reason when it is absent. */
export function sharedPath(rel: string): { path: string; skip: string | false } {
  const path = join(REPO_ROOT, '..', 'shared', rel);
  return { path, skip: existsSync(path) ? false : `../shared/${rel} is absent (tests read it from beside the repo)` };
}

/** A fresh scratch folder under .ctx-test-tmp/ (gitignored), removed when the test file ends. */
export function scratchDir(prefix: string): string {
  const base = join(REPO_ROOT, '.ctx-test-tmp');
  mkdirSync(base, { recursive: true });
  const dir = mkdtempSync(join(base, `${prefix}-`));
  after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** True when running as root, which reads files whatever their permissions. */
export const isRoot = process.getuid?.() === 0;
