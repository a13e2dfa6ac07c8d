// A Document is what every input becomes: ordered segments of text, each knowing where it came
// from, so the engine can read it and answers can cite it.

export interface SourceRef {
  /** File path as the user named it (relative paths stay relative), or "-" for stdin. */
  path: string;
  /** 1-based PDF page. */
  page?: number;
  /** 1-based line of the segment's first line in the source file. */
  lineStart?: number;
}

export interface Segment {
  text: string;
  source: SourceRef;
}

/** A source that was looked at and not read, with the reason (shown by `ctx inspect`, --json). */
export interface SkippedSource {
  path: string;
  reason: string;
}

/** Per-source summary for plans and JSON output. */
export interface SourceInfo {
  path: string;
  kind: 'pdf' | 'text' | 'stdin';
  bytes: number;
  pages?: number;
  /** Encoding the text was decoded from (text sources). */
  encoding?: string;
}

export interface Document {
  segments: Segment[];
  sources: SourceInfo[];
  skipped: SkippedSource[];
}
