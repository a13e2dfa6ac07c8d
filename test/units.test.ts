// Sizes for people: one format everywhere (formatBytes, binary units), and no code that prints a
// size its own way — "about 1.0 GB", "988 MB" and "942.2 MiB" for one model were three formats.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, it } from 'node:test';
import { formatBytes, parseByteSize } from '../src/units.js';

const SRC = join(import.meta.dirname, '..', 'src');

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return sources(p);
    return /\.tsx?$/.test(name) ? [p] : [];
  });
}

/** The code of a file without its comments (// to the end of a line, and /* … *\/ blocks). */
function code(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:"'`\\])\/\/.*$/gm, '$1');
}

describe('sizes', () => {
  it('formatBytes: binary units, one decimal, exact bytes below 1 KiB', () => {
    assert.equal(formatBytes(512), '512 B');
    assert.equal(formatBytes(1536), '1.5 KiB');
    assert.equal(formatBytes(1024 ** 2), '1 MiB');
    assert.equal(formatBytes(988_000_000), '942.2 MiB');
    assert.equal(parseByteSize('4M'), 4 * 1024 ** 2);
  });

  it('no source file formats a size itself (a byte unit after a number or a ${…} in a string)', () => {
    const adHoc = [
      // `${x} MB`, `${x.toFixed(1)} GB`, `${n}KiB`
      /\$\{[^}]*\}\s?(?:[KMGT]i?B)\b/,
      // a decimal size written into a message, '16 MB' ('16 MiB' is formatBytes's own form)
      /['"`][^'"`]*\d\s?(?:[KMGT]B)\b/,
    ];
    const found: string[] = [];
    for (const file of sources(SRC)) {
      if (file.endsWith(join('src', 'units.ts'))) continue;
      code(readFileSync(file, 'utf8'))
        .split('\n')
        .forEach((line, i) => {
          if (adHoc.some((re) => re.test(line))) found.push(`${relative(SRC, file)}:${i + 1}: ${line.trim()}`);
        });
    }
    assert.deepEqual(found, [], `sizes printed without formatBytes (src/units.ts):\n${found.join('\n')}`);
  });
});
