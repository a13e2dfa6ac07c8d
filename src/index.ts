// ctx as a library: what `import … from 'ctx'` gives. The CLI (src/cli) is one client of it; a
// script needs neither commander nor Ink. README.md ("ctx as a library") has an example.
//
//   openDocument(options)      inputs → tokens → plan → read (or restore from the cache) → OpenDocument
//   OpenDocument.ask(question) an AnswerStream: iterate for the text, await for the Answer
//   summarizeDocument(options) a summary of the inputs, one-pass or hierarchical, as an AnswerStream
//   loadModel(name)            a model loaded once and shared by several documents
//
// Progress comes as typed events (RunEvent) to `onEvent`; an AbortSignal cancels. Failures a user can
// cause are CtxErrors with a documented exit code.

export { openDocument, prepareDocument, PreparedDocument, UNKNOWN_QUESTION_TOKENS, type DocumentOptions } from './engine/open.js';
export { OpenDocument, type AskOptions } from './engine/open-document.js';
export { summarizeDocument, type SummaryOptions } from './engine/summarize/summarize.js';
export { loadModel, type LoadedModel, type LoadModelOptions } from './engine/loaded-model.js';
export { AnswerStream } from './engine/answer-stream.js';
export type { Answer } from './engine/citations/source-marking.js';
export type { RunEvent, ReadProgress, CheckedCitation } from './engine/events.js';
export type { AnswerResult } from './engine/reader.js';
export type { FinishReason } from './engine/generate.js';
export type { RunPlan } from './engine/plan.js';
export type { SamplingOptions } from './engine/sampler.js';
export type { StrategyName, StrategyOptions } from './engine/strategies/index.js';
export type { ModeRequest, SummaryMode } from './engine/summarize/mode.js';
export type { SummaryLength } from './engine/summarize/prompts.js';
export type { BackendChoice } from './backend/index.js';
export { DEFAULT_MODEL } from './model/registry.js';
export { CtxError, EXIT, isCtxError, type ExitKind } from './errors.js';
