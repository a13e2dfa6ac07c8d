// Dependencies point one way (ARCHITECTURE.md, "Layers"): every import in src/ — type-only and
// dynamic ones included — goes from a layer to one it may use; no files load each other in a circle
// (imports that exist at run time: a type-only import is erased and loads nothing); and the package
// entry (src/index.ts) reaches neither the CLI nor the terminal UI.
//
//   cli → ui → engine (with cache/) → backend → model → input → shared (errors.ts, units.ts)
//   demo (a client of the engine, for tools and tests) → engine and below
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { REPO_ROOT } from './helpers/fixtures.js';

const SRC = join(REPO_ROOT, 'src');

type Layer = 'cli' | 'demo' | 'ui' | 'engine' | 'backend' | 'model' | 'input' | 'shared';

/** The layers each layer may import from (besides itself). */
const ALLOWED: Record<Layer, Layer[]> = {
  cli: ['ui', 'engine', 'backend', 'model', 'input', 'shared'],
  demo: ['engine', 'backend', 'model', 'input', 'shared'],
  // Renderers read the engine's event and progress types; they never run a model.
  ui: ['engine', 'shared'],
  engine: ['backend', 'model', 'input', 'shared'],
  backend: ['model', 'shared'],
  model: ['input', 'shared'],
  input: ['shared'],
  shared: [],
};

/** Packages that would make the library pull in a command line or a terminal UI. */
const UI_PACKAGES = ['commander', 'ink', 'react', 'ora', 'ink-testing-library'];

/** A src/ path (relative, with /) → its layer. */
function layerOf(file: string): Layer {
  const top = file.split('/')[0]!;
  if (top === 'cache' || top === 'index.ts') return 'engine'; // cache/ persists engine sessions; index.ts is the engine's public face
  if (top === 'errors.ts' || top === 'units.ts') return 'shared';
  if (['cli', 'demo', 'ui', 'engine', 'backend', 'model', 'input'].includes(top)) return top as Layer;
  throw new Error(`src/${file}: in no layer; add it to test/layers.test.ts and ARCHITECTURE.md`);
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return /\.tsx?$/.test(name) ? [path] : [];
  });
}

// Static imports and re-exports (`import … from 'x'`, `import 'x'`, `export … from 'x'`) start a
// line; dynamic ones (`import('x')`) may be anywhere on a line that is not a comment.
const STATIC = /^(?:import|export)\b([^;]*?)\bfrom\s*['"]([^'"]+)['"]|^import\s*['"]([^'"]+)['"]/gm;
const DYNAMIC = /^(?!\s*(?:\/\/|\*)).*?\bimport\(\s*['"]([^'"]+)['"]\s*\)/gm;

/** `import type {…}`, `export type {…}`, or braces whose every name is marked `type`: erased when compiled. */
function typeOnly(clause: string): boolean {
  const c = clause.trim();
  if (/^type\b/.test(c)) return true;
  const names = /^\{([^}]*)\}$/.exec(c)?.[1]?.split(',').map((n) => n.trim()).filter(Boolean);
  return names !== undefined && names.length > 0 && names.every((n) => n.startsWith('type '));
}

interface Graph {
  /** File (relative to src, with /) → the src files it imports. */
  files: Map<string, string[]>;
  /** The same, run-time imports only (no type-only ones). */
  runtime: Map<string, string[]>;
  /** File → the packages it imports. */
  packages: Map<string, string[]>;
}

function importGraph(): Graph {
  const files = new Map<string, string[]>();
  const runtime = new Map<string, string[]>();
  const packages = new Map<string, string[]>();
  for (const path of sourceFiles(SRC)) {
    const text = readFileSync(path, 'utf8');
    const specs = [...text.matchAll(STATIC)]
      .map((m) => ({ spec: m[2] ?? m[3]!, erased: m[1] !== undefined && typeOnly(m[1]) }))
      .concat([...text.matchAll(DYNAMIC)].map((m) => ({ spec: m[1]!, erased: false })));
    const file = relative(SRC, path).split('\\').join('/');
    const local: string[] = [];
    const loaded: string[] = [];
    const external: string[] = [];
    for (const { spec, erased } of specs) {
      if (!spec.startsWith('.')) {
        if (!spec.startsWith('node:')) external.push(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!);
        continue;
      }
      const base = resolve(dirname(path), spec).replace(/\.js$/, '');
      const target = [`${base}.ts`, `${base}.tsx`].find((p) => existsSync(p));
      assert.ok(target, `src/${file}: cannot resolve the import '${spec}'`);
      assert.ok(target.startsWith(SRC), `src/${file}: imports '${spec}' from outside src/`);
      const to = relative(SRC, target).split('\\').join('/');
      local.push(to);
      if (!erased) loaded.push(to);
    }
    files.set(file, local);
    runtime.set(file, loaded);
    packages.set(file, external);
  }
  return { files, runtime, packages };
}

/** Strongly connected components of more than one file (or a file importing itself): import cycles. */
function cycles(files: Map<string, string[]>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string) => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of files.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1 || (files.get(v) ?? []).includes(v)) found.push(component.sort());
    }
  };
  for (const v of files.keys()) if (!index.has(v)) visit(v);
  return found;
}

describe('src/ dependencies', () => {
  const graph = importGraph();

  it('point one way: each import goes to the same layer or one it may use', () => {
    assert.ok(graph.files.size > 50, `found ${graph.files.size} source files`);
    const wrong: string[] = [];
    for (const [file, targets] of graph.files) {
      const from = layerOf(file);
      for (const target of targets) {
        const to = layerOf(target);
        if (to !== from && !ALLOWED[from].includes(to)) wrong.push(`src/${file} (${from}) → src/${target} (${to})`);
      }
    }
    assert.deepEqual(wrong, []);
  });

  it('hold no import cycles (of imports that load something at run time)', () => {
    assert.deepEqual(cycles(graph.runtime), []);
  });

  it('let a script import the package without a command line or terminal UI', () => {
    const reached = new Set<string>();
    const pending = ['index.ts'];
    while (pending.length) {
      const f = pending.pop()!;
      if (reached.has(f)) continue;
      reached.add(f);
      pending.push(...graph.files.get(f)!);
    }
    const layers = new Set([...reached].map(layerOf));
    assert.equal(layers.has('cli') || layers.has('ui') || layers.has('demo'), false, `index.ts reaches ${[...layers].join(', ')}`);
    const packages = [...reached].flatMap((f) => graph.packages.get(f)!.filter((p) => UI_PACKAGES.includes(p)).map((p) => `src/${f} imports ${p}`));
    assert.deepEqual(packages, []);
  });

  it('are checked by a test that sees real imports (a planted wrong edge and cycle are caught)', () => {
    const planted = new Map(graph.runtime);
    planted.set('engine/reader.ts', [...planted.get('engine/reader.ts')!, 'engine/open.ts']);
    assert.ok(cycles(planted).length > 0, 'reader → open → reader is a cycle');
    assert.ok(graph.files.get('engine/open.ts')!.includes('engine/plan.ts') && !graph.runtime.get('engine/open.ts')!.includes('engine/plan.ts'), 'a type-only import is an edge for the layers, not for cycles');
    assert.deepEqual([typeOnly(' type { A } '), typeOnly(' { type A, type B } '), typeOnly(' { type A, B } '), typeOnly(' X ')], [true, true, false, false]);
    assert.equal(ALLOWED[layerOf('engine/open.ts')].includes(layerOf('ui/pick.ts')), false, 'the engine may not import the UI');
    assert.ok(graph.files.get('cli/main.ts')!.includes('cli/ask.ts'), 'static imports are seen');
    assert.ok(graph.files.get('ui/pick.ts')!.includes('ui/ink/renderer.tsx'), 'dynamic imports are seen');
    assert.ok(graph.packages.get('cli/main.ts')!.includes('commander'), 'package imports are seen');
  });
});
