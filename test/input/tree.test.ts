// The repository walk on the generated repo/ fixture: which files are read, in which order, why the
// others are skipped; folder-level errors; globs.
import assert from 'node:assert/strict';
import { relative } from 'node:path';
import { describe, it } from 'node:test';
import { CtxError } from '../../src/errors.js';
import type { Document } from '../../src/input/document.js';
import { readInputs } from '../../src/input/read.js';
import { inputFixtures } from '../helpers/fixtures.js';

const fx = inputFixtures();
const REPO = fx.path('repo');

/** Source paths and skipped paths relative to `base`, for readable assertions. */
function rel(doc: Document, base = REPO) {
  return {
    sources: doc.sources.map((s) => relative(base, s.path)),
    skipped: Object.fromEntries(doc.skipped.map((s) => [relative(base, s.path) + (s.path.endsWith('/') ? '/' : ''), s.reason])),
  };
}

describe('walking a repository', () => {
  it('reads what the ignore rules leave, README first, then code-unit path order', async () => {
    const { sources } = rel(await readInputs([REPO]));
    assert.deepEqual(sources, [
      'README.md',
      '.ctxignore',
      '.gitignore',
      '.ignore',
      'Alpha.md',
      'docs/guide.md',
      'keep.log',
      'src/.gitignore',
      'src/build-out/y.txt',
      'src/important.log',
      'src/main.ts',
      'src/util.ts',
      'zeta.md',
    ]);
  });

  it('lists every skipped entry with its reason', async () => {
    const { skipped } = rel(await readInputs([REPO]));
    const label = REPO; // ignore files are named by the folder as the user named it (absolute here)
    assert.deepEqual(skipped, {
      '.git/': 'ignored by default (.git)',
      'app.log': `ignored by ${label}/.gitignore (*.log)`,
      'big.txt': 'is larger than the size cap (1.4 MiB > 1 MiB; raise it with --max-file-bytes)',
      'build-out/': `ignored by ${label}/.gitignore (/build-out/)`,
      dangling: 'is a broken symlink',
      'data.bin': 'is binary (contains NUL bytes)',
      'docs/a/b/draft.md': `ignored by ${label}/.gitignore (docs/**/draft.md)`,
      'docs/draft.md': `ignored by ${label}/.gitignore (docs/**/draft.md)`,
      'empty.txt': 'is empty',
      'image.png': 'ignored by default (*.png)',
      'latin1.txt': 'is not valid UTF-8: invalid byte sequence at byte 3; convert it first, e.g. iconv -f latin1 -t utf-8',
      'loop/': `is a symlink loop (points back to ${REPO})`,
      'node_modules/': 'ignored by default (node_modules/)',
      'notes-private.md': `ignored by ${label}/.ctxignore (notes-private.md)`,
      'package-lock.json': 'ignored by default (package-lock.json)',
      'scratch/': `ignored by ${label}/.ignore (scratch/)`,
      'secret/': `ignored by ${label}/.gitignore (secret/)`,
      'src/debug.log': `ignored by ${label}/.gitignore (*.log)`,
      'src/generated.ts': `ignored by ${label}/src/.gitignore (generated.ts)`,
      'link-to-main.ts': `is a symlink to ${REPO}/src/main.ts (read there)`,
    });
  });

  it('prefixes each file with a header segment; text segments count the file\'s own lines', async () => {
    const doc = await readInputs([REPO]);
    assert.deepEqual(doc.segments[0], { text: `==> ${REPO}/README.md <==\n`, source: { path: `${REPO}/README.md` } });
    assert.deepEqual(doc.segments[1]!.source, { path: `${REPO}/README.md`, lineStart: 1 });
    assert.equal(doc.segments[1]!.text, '# Demo repo\n\nRead me first.\n');
    assert.equal(doc.segments[2]!.text, `\n==> ${REPO}/.ctxignore <==\n`);
    const text = doc.segments.map((s) => s.text).join('');
    assert.match(text, /==> .*\/src\/util\.ts <==\nexport const util = 2;\n/);
  });

  it('fills Document.sources with kind, bytes and encoding', async () => {
    const doc = await readInputs([REPO]);
    assert.deepEqual(doc.sources[0], { path: `${REPO}/README.md`, kind: 'text', bytes: 28, encoding: 'utf-8' });
  });

  it('the size cap is an option', async () => {
    const { sources, skipped } = rel(await readInputs([REPO], { maxFileBytes: 2 * 1024 * 1024 }));
    assert.ok(sources.includes('big.txt'));
    assert.equal(skipped['big.txt'], undefined);
  });

  it('a walk that starts below the repository top honours the ignore files above it', async () => {
    const { sources, skipped } = rel(await readInputs([fx.path('repo/src')]), fx.path('repo/src'));
    assert.deepEqual(sources, ['.gitignore', 'build-out/y.txt', 'important.log', 'main.ts', 'util.ts']);
    assert.match(skipped['debug.log']!, /ignored by .*repo\/\.gitignore \(\*\.log\)/);
  });

  it('a folder where everything is ignored or skipped is an emptyInput error with a breakdown', async () => {
    const dir = fx.path('all-ignored');
    await assert.rejects(readInputs([dir]), (e: unknown) => {
      assert.ok(e instanceof CtxError);
      assert.equal(e.kind, 'emptyInput');
      assert.equal(e.exitCode, 4);
      assert.match(e.message, new RegExp(`^${dir}: nothing to read: all 5 files and folders were ignored or skipped \\(`));
      assert.match(e.message, /3 ignored: .*; 1 binary: .*b\.dat; 1 empty: .*c\.txt\)$/);
      return true;
    });
  });

  it('an empty folder is an emptyInput error', async () => {
    await assert.rejects(readInputs([fx.path('empty-dir')]), { kind: 'emptyInput', message: /nothing to read: the folder is empty/ });
  });
});

describe('globs', () => {
  it('expand ** and * below their fixed prefix, honouring ignore rules', async () => {
    const doc = await readInputs([`${REPO}/**/*.md`]);
    const { sources, skipped } = rel(doc);
    assert.deepEqual(sources, ['README.md', 'Alpha.md', 'docs/guide.md', 'zeta.md']);
    // Ignored files the glob asked for are reported; ignored folders are not.
    assert.deepEqual(Object.keys(skipped), ['docs/a/b/draft.md', 'docs/draft.md', 'notes-private.md']);
  });

  it('ignore rules apply to glob matches, negations included', async () => {
    const { sources, skipped } = rel(await readInputs([`${REPO}/*.log`]));
    assert.deepEqual(sources, ['keep.log']);
    assert.deepEqual(Object.keys(skipped), ['app.log']);
  });

  it('a pattern without ** does not descend', async () => {
    const { sources } = rel(await readInputs([`${REPO}/*.md`]));
    assert.deepEqual(sources, ['README.md', 'Alpha.md', 'zeta.md']);
  });

  it('a glob that matches nothing is an input error', async () => {
    await assert.rejects(readInputs([`${REPO}/*.nothing`]), { kind: 'input', message: /no such file, and no files match it as a pattern/ });
    await assert.rejects(readInputs([`${REPO}/no-such-dir/*.md`]), { kind: 'input' });
  });

  it('a glob whose matches are all ignored is an emptyInput error', async () => {
    await assert.rejects(readInputs([`${REPO}/README.md`, `${REPO}/*.png`]), (e: unknown) => {
      assert.ok(e instanceof CtxError && e.kind === 'emptyInput');
      assert.match(e.message, /\*\.png: nothing to read: all 1 files were ignored or skipped \(1 ignored: .*image\.png\)$/);
      return true;
    });
  });
});
