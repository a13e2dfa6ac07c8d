// The Ink display: committed lines in <Static> (printed once, never redrawn) and a live region of a
// few rows below them: reading progress, the row of the answer being written, or the chat prompt.
// store.ts holds the state; this file only draws it, at any width from 40 columns up.

import { useEffect, useState, useSyncExternalStore } from 'react';
import { Box, Static, Text, useInput } from 'ink';
import { formatBytes } from '../../units.js';
import { bar, count, downloadLine, duration } from '../format.js';
import type { Line } from './run-view.js';
import type { UiState, UiStore } from './store.js';

export function App({ store, interactive }: { store: UiStore; interactive: boolean }) {
  const s = useSyncExternalStore(store.subscribe, store.getState);
  return (
    <>
      <Static items={s.lines}>{(line) => <CommittedLine key={line.id} line={line} />}</Static>
      <Live state={s} />
      {interactive && <Keys store={store} />}
    </>
  );
}

/** Terminal keys go to the store (chat). Mounted only when ctx reads keys: it puts stdin in raw mode. */
function Keys({ store }: { store: UiStore }) {
  useInput((input, key) => store.key(input, key));
  return null;
}

export function CommittedLine({ line }: { line: Line }) {
  const text = line.text || ' ';
  switch (line.kind) {
    case 'info':
    case 'note':
      return <Text dimColor>{text}</Text>;
    case 'warning':
      return <Text color="yellow">{text}</Text>;
    case 'error':
      return <Text color="red">{text}</Text>;
    case 'question':
      return (
        <Text bold color="cyan">
          {text}
        </Text>
      );
    default:
      return <Text>{text}</Text>;
  }
}

export function Live({ state: s }: { state: UiState }) {
  switch (s.phase) {
    case 'opening':
      return <Opening state={s} />;
    case 'reading':
      return <ReadingProgress state={s} />;
    case 'answering':
      return <Answering state={s} />;
    case 'prompt':
      return <Prompt state={s} />;
    default:
      return null;
  }
}

const FRAMES = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

/**
 * The frame follows the clock, so any redraw (a progress update) moves it too: while a step
 * computes, timers may not fire for a while, but progress events still come.
 */
export function Spinner() {
  const [, setTick] = useState(0);
  useEffect(() => {
    const t = setInterval(() => setTick((n) => n + 1), 100);
    return () => clearInterval(t);
  }, []);
  return <Text color="cyan">{FRAMES[Math.floor(performance.now() / 100) % FRAMES.length]}</Text>;
}

function Opening({ state: s }: { state: UiState }) {
  const t = s.tokenize;
  const what = s.download
    ? downloadLine(s.download)
    : t && t.totalChars > 0
      ? `tokenizing ${Math.floor((100 * t.doneChars) / t.totalChars)}%`
      : 'opening the inputs and the model';
  const sources = s.sources ? ` · ${s.sources} source${s.sources === 1 ? '' : 's'}` : '';
  return (
    <Text wrap="truncate-end">
      <Spinner /> {what}
      {sources}
    </Text>
  );
}

/**
 *   ⠹ reading ██████████░░░░░░░░░░  52% · 3/7 sources
 *     10,432/20,011 tokens · 1,234 tok/s · ETA 8.0 s
 *     KV 1.20 MiB · ×7.9 condensed · beacon v3 (ratio 8, window 32) · reference f32
 */
export function ReadingProgress({ state: s }: { state: UiState }) {
  const p = s.progress;
  const done = p?.done ?? 0;
  const total = p?.total ?? s.documentTokens;
  const fraction = total > 0 ? done / total : 0;
  const pct = `${Math.floor(100 * fraction)}%`.padStart(4);
  const sourcesDone = s.sourceEnds.length ? s.sourceEnds.filter((end) => end <= done).length : p && done >= total ? s.sources : 0;
  const sources = `${sourcesDone}/${s.sources} source${s.sources === 1 ? '' : 's'}`;
  const barWidth = Math.max(10, Math.min(40, s.columns - 12 - pct.length - sources.length - 6));
  const rate = p && p.tokensPerSecond > 0 ? ` · ${count(p.tokensPerSecond)} tok/s` : '';
  const eta = p && Number.isFinite(p.etaSeconds) ? ` · ETA ${duration(p.etaSeconds)}` : '';
  const kv = p ? `KV ${formatBytes(p.kvBytes)}${p.compression > 1.05 ? ` · ×${p.compression.toFixed(1)} condensed` : ''}` : 'KV —';
  const about = [kv, s.strategy, s.backend].filter(Boolean).join(' · ');
  return (
    <Box flexDirection="column">
      <Text wrap="truncate-end">
        <Spinner /> reading <Text color="green">{bar(fraction, barWidth)}</Text>
        {pct} · {sources}
      </Text>
      <Text wrap="truncate-end">
        {'  '}
        {count(done)}/{count(total)} tokens{rate}
        {eta}
      </Text>
      <Text dimColor>
        {'  '}
        {about}
      </Text>
    </Box>
  );
}

function Answering({ state: s }: { state: UiState }) {
  const seconds = (performance.now() - s.answerStartedAt) / 1000;
  const rate = seconds > 0.2 && s.answerPieces > 1 ? ` · ${(s.answerPieces / seconds).toFixed(1)} tok/s` : '';
  return (
    <Box flexDirection="column">
      {s.partial ? <Text>{s.partial}</Text> : null}
      <Text dimColor wrap="truncate-end">
        <Spinner /> {s.stopping ? 'stopping…' : `answering · ${count(s.answerPieces)} tokens${rate}`}
      </Text>
    </Box>
  );
}

function Prompt({ state: s }: { state: UiState }) {
  return (
    <Box flexDirection="column">
      <Text>
        <Text bold color="cyan">
          ❯{' '}
        </Text>
        {s.input}
        <Text inverse> </Text>
      </Text>
      <Text dimColor wrap="truncate-end">
        {s.hint}
      </Text>
    </Box>
  );
}
