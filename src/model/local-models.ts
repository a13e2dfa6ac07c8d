// Models other programs already hold on this machine, read in place (ctx never writes there):
//
//   -m path/to/model.gguf       a GGUF file
//   -m ollama:NAME[:TAG]        ollama's store ($OLLAMA_MODELS, default ~/.ollama/models):
//                               manifests/<host>/<namespace>/<name>/<tag> is a JSON manifest whose
//                               layer of mediaType application/vnd.ollama.image.model names the
//                               GGUF blob: blobs/sha256-<hex>. NAME may be "name", "namespace/name"
//                               or "host/namespace/name"; the defaults are registry.ollama.ai,
//                               library and the tag "latest".
//   -m lms:PUBLISHER/MODEL[/FILE.gguf]   LM Studio's models folder (~/.lmstudio/models, or the
//                               older ~/.cache/lm-studio/models): PUBLISHER/MODEL/*.gguf. FILE is
//                               needed only when the folder holds several (e.g. Q4_K_M and Q8_0).
//
// `listLocalModels` lists what both hold, for `ctx models list`.

import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { CtxError, fsError } from '../errors.js';

export type LocalSource = 'ollama' | 'lms';

export interface LocalModel {
  source: LocalSource;
  /** What to pass to -m. */
  ref: string;
  /** The GGUF file. */
  path: string;
  bytes: number;
}

const OLLAMA_MODEL_LAYER = 'application/vnd.ollama.image.model';
const OLLAMA_HOST = 'registry.ollama.ai';
const OLLAMA_NAMESPACE = 'library';
/** Characters ollama allows in a name part or tag (so a reference cannot leave the store). */
const NAME_PART = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

function home(env: NodeJS.ProcessEnv): string {
  return env.HOME && env.HOME.startsWith('/') ? env.HOME : homedir();
}

export function ollamaModelsDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.OLLAMA_MODELS ? resolve(env.OLLAMA_MODELS) : join(home(env), '.ollama', 'models');
}

/** LM Studio's models folders that exist, newest layout first. */
export function lmStudioModelsDirs(env: NodeJS.ProcessEnv = process.env): string[] {
  return [join(home(env), '.lmstudio', 'models'), join(home(env), '.cache', 'lm-studio', 'models')].filter((d) => isDir(d));
}

function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

function isFile(p: string): boolean {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

function listDir(p: string): string[] {
  try {
    return readdirSync(p).filter((n) => !n.startsWith('.')).sort();
  } catch {
    return [];
  }
}

/** A path that names a .gguf file on disk, or a -m reference into ollama or LM Studio. */
export function isLocalModelRef(s: string): boolean {
  return s.startsWith('ollama:') || s.startsWith('lms:') || /\.gguf$/i.test(s);
}

/**
 * The GGUF file a -m value names, or null when it is not a GGUF reference (a folder, a registry
 * name). Throws a CtxError naming what is missing when it is one but cannot be found.
 */
export function resolveLocalModel(ref: string, env: NodeJS.ProcessEnv = process.env): string | null {
  if (ref.startsWith('ollama:')) return resolveOllama(ref.slice('ollama:'.length), env);
  if (ref.startsWith('lms:')) return resolveLmStudio(ref.slice('lms:'.length), env);
  if (/\.gguf$/i.test(ref)) {
    const path = resolve(ref === '~' || ref.startsWith('~/') ? join(home(env), ref.slice(1)) : ref);
    if (isDir(path)) return null; // a model folder that happens to end in .gguf
    if (!existsSync(path)) throw new CtxError('model', 'GGUF file does not exist', { path: ref });
    if (!isFile(path)) throw new CtxError('model', 'a .gguf model must be a file', { path: ref });
    if (/-\d{5}-of-\d{5}\.gguf$/i.test(path)) throw new CtxError('model', 'split GGUF files (-00001-of-0000N) are not supported yet; merge them with llama-gguf-split --merge', { path: ref });
    return path;
  }
  return null;
}

/** "name[:tag]" with name = [[host/]namespace/]model → the blob of its model layer. */
function resolveOllama(spec: string, env: NodeJS.ProcessEnv): string {
  const colon = spec.lastIndexOf(':');
  const name = colon > 0 && !spec.slice(colon).includes('/') ? spec.slice(0, colon) : spec;
  const tag = name === spec ? 'latest' : spec.slice(colon + 1);
  const parts = name.split('/');
  if (parts.length > 3 || !parts.every((p) => NAME_PART.test(p)) || !NAME_PART.test(tag)) {
    throw new CtxError('usage', `"ollama:${spec}" is not an ollama model name (ollama:NAME[:TAG], e.g. ollama:qwen2.5:1.5b)`);
  }
  const [host, namespace, model] = parts.length === 3 ? parts : parts.length === 2 ? [OLLAMA_HOST, ...parts] : [OLLAMA_HOST, OLLAMA_NAMESPACE, parts[0]];
  const root = ollamaModelsDir(env);
  const manifest = join(root, 'manifests', host, namespace, model, tag);
  if (!isFile(manifest)) {
    const tags = listDir(join(root, 'manifests', host, namespace, model));
    const have = tags.length ? `; ollama has tags ${tags.join(', ')} of it` : '';
    throw new CtxError('model', `ollama has no model "${name}:${tag}" (no manifest ${manifest})${have}; run "ollama pull ${name}:${tag}" or set OLLAMA_MODELS`, { path: root });
  }
  return ollamaBlob(manifest, root);
}

/** The GGUF blob a manifest's model layer points to, checked to exist with the size the manifest states. */
function ollamaBlob(manifest: string, root: string): string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(manifest, 'utf8'));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code) throw fsError(e, manifest, 'model');
    throw new CtxError('model', `ollama manifest is not JSON (${(e as Error).message})`, { path: manifest });
  }
  const layers = (parsed as { layers?: unknown } | null)?.layers;
  if (!Array.isArray(layers)) throw new CtxError('model', 'ollama manifest has no "layers" list', { path: manifest });
  const models = layers.filter((l) => (l as { mediaType?: unknown })?.mediaType === OLLAMA_MODEL_LAYER) as Array<{ digest?: unknown; size?: unknown }>;
  if (models.length !== 1) throw new CtxError('model', `ollama manifest has ${models.length} model layers (${OLLAMA_MODEL_LAYER}); ctx reads models with exactly one`, { path: manifest });
  const digest = models[0].digest;
  if (typeof digest !== 'string' || !/^sha256:[0-9a-f]{64}$/.test(digest)) throw new CtxError('model', `ollama model layer digest ${JSON.stringify(digest)} is not sha256:<64 hex>`, { path: manifest });
  const blob = join(root, 'blobs', digest.replace(':', '-'));
  if (!isFile(blob)) throw new CtxError('model', `ollama's blob for this model is missing (${blob}); run "ollama pull" again`, { path: manifest });
  const size = models[0].size;
  if (typeof size === 'number' && statSync(blob).size !== size) {
    throw new CtxError('model', `ollama's blob has ${statSync(blob).size} bytes but the manifest says ${size} (a pull in progress?)`, { path: blob });
  }
  return blob;
}

/** The .gguf files of an LM Studio model folder that are language models (not vision projectors). */
function lmStudioFiles(dir: string): string[] {
  return listDir(dir).filter((f) => /\.gguf$/i.test(f) && !/^mmproj/i.test(f) && isFile(join(dir, f)));
}

/** "publisher/model[/file.gguf]" → the file. */
function resolveLmStudio(spec: string, env: NodeJS.ProcessEnv): string {
  const parts = spec.split('/');
  if ((parts.length !== 2 && parts.length !== 3) || !parts.every((p) => p.length > 0 && p !== '.' && p !== '..' && !p.includes('\\'))) {
    throw new CtxError('usage', `"lms:${spec}" is not an LM Studio model (lms:PUBLISHER/MODEL or lms:PUBLISHER/MODEL/FILE.gguf)`);
  }
  const roots = lmStudioModelsDirs(env);
  if (roots.length === 0) throw new CtxError('model', `LM Studio's models folder was not found (looked in ${join(home(env), '.lmstudio', 'models')} and ${join(home(env), '.cache', 'lm-studio', 'models')})`);
  const [publisher, model, file] = parts;
  for (const root of roots) {
    const dir = join(root, publisher, model);
    if (!isDir(dir)) continue;
    if (file !== undefined) {
      if (!isFile(join(dir, file))) throw new CtxError('model', `LM Studio's ${publisher}/${model} has no file ${file} (it has ${lmStudioFiles(dir).join(', ') || 'no .gguf files'})`, { path: dir });
      return join(dir, file);
    }
    const files = lmStudioFiles(dir);
    if (files.length === 1) return join(dir, files[0]);
    if (files.length === 0) throw new CtxError('model', `LM Studio's ${publisher}/${model} holds no .gguf file`, { path: dir });
    throw new CtxError('model', `LM Studio's ${publisher}/${model} holds ${files.length} GGUF files; name one: ${files.map((f) => `lms:${publisher}/${model}/${f}`).join(', ')}`, { path: dir });
  }
  throw new CtxError('model', `LM Studio has no model ${publisher}/${model} (looked in ${roots.join(' and ')})`);
}

/** Every model ollama and LM Studio hold here, ollama's first, each sorted by reference. */
export function listLocalModels(env: NodeJS.ProcessEnv = process.env): LocalModel[] {
  const out: LocalModel[] = [];
  const root = ollamaModelsDir(env);
  const manifests = join(root, 'manifests');
  for (const host of listDir(manifests)) {
    for (const namespace of listDir(join(manifests, host))) {
      for (const model of listDir(join(manifests, host, namespace))) {
        for (const tag of listDir(join(manifests, host, namespace, model))) {
          const name = host === OLLAMA_HOST ? (namespace === OLLAMA_NAMESPACE ? model : `${namespace}/${model}`) : `${host}/${namespace}/${model}`;
          try {
            const path = ollamaBlob(join(manifests, host, namespace, model, tag), root);
            out.push({ source: 'ollama', ref: `ollama:${name}:${tag}`, path, bytes: statSync(path).size });
          } catch (e) {
            // A manifest without a usable model layer (an embedding-only or broken pull) is not listed.
            if (!(e instanceof CtxError)) throw e;
          }
        }
      }
    }
  }
  const seen = new Set<string>();
  for (const lmRoot of lmStudioModelsDirs(env)) {
    for (const publisher of listDir(lmRoot)) {
      for (const model of listDir(join(lmRoot, publisher))) {
        const dir = join(lmRoot, publisher, model);
        const files = lmStudioFiles(dir);
        for (const f of files) {
          const ref = files.length === 1 ? `lms:${publisher}/${model}` : `lms:${publisher}/${model}/${f}`;
          if (seen.has(ref)) continue; // the newer folder wins, as in resolveLmStudio
          seen.add(ref);
          out.push({ source: 'lms', ref, path: join(dir, f), bytes: statSync(join(dir, f)).size });
        }
      }
    }
  }
  return out;
}
