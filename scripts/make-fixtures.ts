// Builds the input fixtures the input and CLI tests read, under fixtures/generated/inputs-v<N>/
// (gitignored). Same content on every run; tests call ensureInputFixtures() so a fresh clone works.
//
//   node --import tsx scripts/make-fixtures.ts          build if missing, print the folder
//   node --import tsx scripts/make-fixtures.ts --force  rebuild
//
// PDFs need enscript, ps2pdf and gs (Debian: enscript ghostscript; .ci/run installs them). Without
// them the PDFs are left out, manifest.json says so, and the PDF tests skip with that reason.
//
// Layout:
//   text/   one file per encoding case: utf8, utf8-bom, utf16le, utf16be, latin1 (invalid UTF-8),
//           empty, whitespace-only, binary (NUL bytes), control characters
//   pdf/    three-pages.pdf (a marker word per page), scanned.pdf (images only, no text layer),
//           corrupt.pdf, truncated.pdf, encrypted.pdf (user password)
//   repo/   a small repository (with a .git folder): nested .gitignore files, .ignore, .ctxignore, defaults
//           (node_modules, lock file, image), a binary, a file over the 1 MiB cap, an empty file,
//           invalid UTF-8, a symlink loop, a symlinked file, a broken symlink
//   all-ignored/  a folder where every entry is ignored or skipped
//   empty-dir/    a folder with nothing in it

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Bump when the content changes, so stale fixture folders are not reused. */
const VERSION = 1;

export const FIXTURES_ROOT = fileURLToPath(new URL('../fixtures/generated/', import.meta.url));
export const INPUT_FIXTURES = join(FIXTURES_ROOT, `inputs-v${VERSION}`);

export interface FixtureManifest {
  version: number;
  /** Whether the PDF fixtures exist; when false, `pdfMissing` names the absent tools. */
  pdf: boolean;
  pdfMissing?: string[];
}

/** The words that mark each page of three-pages.pdf, in page order. */
export const PDF_PAGE_MARKERS = ['ALPHA', 'BRAVO', 'CHARLIE'];
/** Byte offset of the first invalid UTF-8 byte in text/latin1.txt. */
export const LATIN1_BAD_OFFSET = 'Caf'.length;

const PDF_TOOLS = ['enscript', 'ps2pdf', 'gs'];

export function missingPdfTools(): string[] {
  return PDF_TOOLS.filter((t) => spawnSync('sh', ['-c', `command -v ${t}`], { stdio: 'ignore' }).status !== 0);
}

/**
 * Builds the fixtures unless a complete set exists (and, if that set lacks PDFs, the tools are
 * still missing). Safe to call from several test processes at once: each builds in its own
 * temporary folder and renames it into place; the first rename wins.
 */
export function ensureInputFixtures(opts: { force?: boolean } = {}): { dir: string; manifest: FixtureManifest } {
  const manifestPath = join(INPUT_FIXTURES, 'manifest.json');
  if (!opts.force && existsSync(manifestPath)) {
    const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as FixtureManifest;
    if (manifest.pdf || missingPdfTools().length > 0) return { dir: INPUT_FIXTURES, manifest };
  }
  const tmp = join(FIXTURES_ROOT, `.tmp-inputs-${process.pid}-${Date.now()}`);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  const manifest = build(tmp);
  writeFileSync(join(tmp, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  const stale = existsSync(INPUT_FIXTURES) && (opts.force || !readManifest()?.pdf);
  if (stale) rmSync(INPUT_FIXTURES, { recursive: true, force: true });
  try {
    renameSync(tmp, INPUT_FIXTURES);
  } catch {
    // Another process put its (identical) set in place first.
    rmSync(tmp, { recursive: true, force: true });
  }
  return { dir: INPUT_FIXTURES, manifest: readManifest() ?? manifest };
}

function readManifest(): FixtureManifest | null {
  try {
    return JSON.parse(readFileSync(join(INPUT_FIXTURES, 'manifest.json'), 'utf8')) as FixtureManifest;
  } catch {
    return null;
  }
}

function build(root: string): FixtureManifest {
  const write = (rel: string, content: string | Buffer) => {
    const p = join(root, rel);
    mkdirSync(dirname(p), { recursive: true });
    writeFileSync(p, content);
  };

  // --- text/: one file per encoding case ---
  const sample = 'Grüße aus Köln — naïve café, 東京, emoji 🙂\nsecond line\n';
  write('text/utf8.txt', sample);
  write('text/utf8-bom.txt', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(sample)]));
  write('text/utf16le.txt', Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(sample, 'utf16le')]));
  write('text/utf16be.txt', Buffer.concat([Buffer.from([0xfe, 0xff]), Buffer.from(sample, 'utf16le').swap16()]));
  write('text/latin1.txt', Buffer.from('Café au lait\n', 'latin1')); // é is 0xE9: invalid UTF-8 at byte 3
  write('text/empty.txt', '');
  write('text/whitespace.txt', '  \n\t\n\n');
  write('text/binary.dat', Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0x02, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x3e, 0x00]));
  write('text/control.txt', Buffer.from(Array.from({ length: 200 }, (_, i) => (i % 3 === 0 ? 0x01 : 0x41))));

  // --- repo/: a small repository with layered ignore rules ---
  // A .git folder makes repo/ the top of its own repository, so the rules of whatever repository
  // holds the fixtures (ctx's own .gitignore) do not leak in.
  write('repo/.git/HEAD', 'ref: refs/heads/main\n');
  write('repo/README.md', '# Demo repo\n\nRead me first.\n');
  write('repo/Alpha.md', 'Upper-case names sort before lower-case ones (code-unit order).\n');
  write('repo/zeta.md', 'Last of the top-level files.\n');
  write('repo/.gitignore', ['# root rules', '*.log', '!keep.log', '/build-out/', 'secret/', 'docs/**/draft.md', ''].join('\n'));
  write('repo/.ignore', 'scratch/\n');
  write('repo/.ctxignore', 'notes-private.md\n');
  write('repo/app.log', 'ignored by *.log\n');
  write('repo/keep.log', 're-included by !keep.log\n');
  write('repo/notes-private.md', 'ignored by .ctxignore\n');
  write('repo/build-out/x.txt', 'ignored: /build-out/ is anchored to the root\n');
  write('repo/secret/key.txt', 'ignored: secret/ matches a folder at any depth\n');
  write('repo/scratch/tmp.txt', 'ignored by .ignore\n');
  write('repo/src/main.ts', 'export const main = 1;\n');
  write('repo/src/util.ts', 'export const util = 2;\n');
  write('repo/src/build-out/y.txt', 'kept: the anchored /build-out/ does not match here\n');
  write('repo/src/.gitignore', 'generated.ts\n!important.log\n');
  write('repo/src/generated.ts', 'ignored by src/.gitignore\n');
  write('repo/src/important.log', 're-included by src/.gitignore over the root *.log\n');
  write('repo/src/debug.log', 'ignored by the root *.log, also when the walk starts at src/\n');
  write('repo/docs/guide.md', 'A guide.\n');
  write('repo/docs/draft.md', 'ignored by docs/**/draft.md (zero folders)\n');
  write('repo/docs/a/b/draft.md', 'ignored by docs/**/draft.md\n');
  write('repo/node_modules/pkg/index.js', 'ignored by default\n');
  write('repo/package-lock.json', '{}\n');
  write('repo/image.png', Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
  write('repo/data.bin', Buffer.from([0x00, 0x01, 0x02, 0x03, 0xff, 0xfe, 0x00, 0x00]));
  write('repo/big.txt', `${'x'.repeat(99)}\n`.repeat(15_000)); // 1.5 MB: over the 1 MiB cap
  write('repo/empty.txt', '');
  write('repo/latin1.txt', Buffer.from('Café\n', 'latin1'));
  symlinkSync('.', join(root, 'repo/loop')); // a folder link back to the repo root
  symlinkSync('src/main.ts', join(root, 'repo/link-to-main.ts')); // the same file twice
  symlinkSync('does-not-exist', join(root, 'repo/dangling'));

  // --- all-ignored/: nothing readable ---
  write('all-ignored/.gitignore', '*.log\n.gitignore\n');
  write('all-ignored/a.log', 'ignored\n');
  write('all-ignored/b.dat', Buffer.from([0x00, 0x00, 0x01]));
  write('all-ignored/c.txt', '');
  write('all-ignored/node_modules/x.js', 'ignored by default\n');

  mkdirSync(join(root, 'empty-dir'), { recursive: true });

  // --- pdf/ ---
  const missing = missingPdfTools();
  if (missing.length > 0) return { version: VERSION, pdf: false, pdfMissing: missing };
  buildPdfs(join(root, 'pdf'));
  return { version: VERSION, pdf: true };
}

function buildPdfs(dir: string): void {
  mkdirSync(dir, { recursive: true });
  const run = (cmd: string, args: string[]) => {
    const r = spawnSync(cmd, args, { cwd: dir, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr || r.error?.message}`);
  };
  // One page per marker: a form feed makes enscript start a new page.
  const pages = PDF_PAGE_MARKERS.map((m, i) =>
    [`Page ${i + 1} marker ${m}`, ...Array.from({ length: 20 }, (_, k) => `Line ${k + 1} of page ${i + 1}: the quick brown fox.`)].join('\n'),
  );
  writeFileSync(join(dir, 'three-pages.txt'), `${pages.join('\n\f')}\n`);
  run('enscript', ['-q', '-B', '-f', 'Times-Roman11', '-p', 'three-pages.ps', 'three-pages.txt']);
  run('ps2pdf', ['three-pages.ps', 'three-pages.pdf']);
  // Rasterised pages: what a scan without OCR looks like.
  run('gs', ['-q', '-dNOPAUSE', '-dBATCH', '-sDEVICE=pdfimage8', '-r72', '-sOutputFile=scanned.pdf', 'three-pages.pdf']);
  run('gs', [
    '-q', '-dNOPAUSE', '-dBATCH', '-sDEVICE=pdfwrite', '-sOwnerPassword=owner', '-sUserPassword=user',
    '-dEncryptionR=3', '-dKeyLength=128', '-sOutputFile=encrypted.pdf', 'three-pages.pdf',
  ]);
  writeFileSync(join(dir, 'corrupt.pdf'), '%PDF-1.4\nthis is not a PDF body\n%%EOF\n');
  const whole = readFileSync(join(dir, 'three-pages.pdf'));
  writeFileSync(join(dir, 'truncated.pdf'), whole.subarray(0, Math.floor(whole.length * 0.4)));
  for (const f of ['three-pages.txt', 'three-pages.ps']) rmSync(join(dir, f));
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { dir, manifest } = ensureInputFixtures({ force: process.argv.includes('--force') });
  console.log(dir);
  if (!manifest.pdf) console.error(`make-fixtures: PDFs left out, missing: ${manifest.pdfMissing?.join(', ')}`);
}
