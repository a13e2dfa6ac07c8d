// An answer being written, as the library hands it out: iterate it for the text as it comes, await
// it (then/catch/finally, as a promise) for the whole answer; LM Studio's SDK and simonw/llm's
// responses work the same way.
//
//   const reply = doc.ask('What changed?');
//   for await (const text of reply) process.stdout.write(text);
//   const { answer, reason, generatedTokens } = await reply;
//
// The answer is generated whether or not anyone iterates: pieces not yet read are kept. A failure
// (or cancellation) rejects the await and ends the iteration with the same error.

export class AnswerStream<T> implements AsyncIterable<string>, Promise<T> {
  readonly [Symbol.toStringTag] = 'AnswerStream';
  private readonly pieces: string[] = [];
  private finished = false;
  private waiting: Array<() => void> = [];
  private readonly result: Promise<T>;

  /** `write` runs at once; it reports each piece of text through the function it is given. */
  constructor(write: (onText: (text: string) => void) => Promise<T>) {
    const end = () => {
      this.finished = true;
      this.notify();
    };
    this.result = write((text) => {
      this.pieces.push(text);
      this.notify();
    });
    // Also marks the result as handled: an answer nobody awaits does not crash the process.
    this.result.then(end, end);
  }

  then<A = T, B = never>(onDone?: ((value: T) => A | PromiseLike<A>) | null, onError?: ((reason: unknown) => B | PromiseLike<B>) | null): Promise<A | B> {
    return this.result.then(onDone, onError);
  }

  catch<B = never>(onError?: ((reason: unknown) => B | PromiseLike<B>) | null): Promise<T | B> {
    return this.result.catch(onError);
  }

  finally(onFinally?: (() => void) | null): Promise<T> {
    return this.result.finally(onFinally);
  }

  async *[Symbol.asyncIterator](): AsyncIterator<string> {
    let next = 0;
    for (;;) {
      while (next < this.pieces.length) yield this.pieces[next++]!;
      if (this.finished) {
        await this.result; // rethrows a failure
        return;
      }
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    }
  }

  private notify(): void {
    const waiting = this.waiting;
    this.waiting = [];
    for (const wake of waiting) wake();
  }
}
