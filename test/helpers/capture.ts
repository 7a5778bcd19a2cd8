/** Captures what a synchronous block writes to process.stdout / process.stderr. */

type Stream = 'stdout' | 'stderr';

/**
 * Runs `fn` with `process[stream].write` replaced by a collector and returns
 * the text it wrote; the real `write` is restored even when `fn` throws.
 */
export function captured(stream: Stream, fn: () => void): string {
  const target = process[stream];
  const original = target.write;
  const chunks: string[] = [];
  target.write = ((chunk: string | Uint8Array) => {
    chunks.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
    return true;
  }) as typeof target.write;
  try {
    fn();
  } finally {
    target.write = original;
  }
  return chunks.join('');
}

/** The lines of `captured(stream, fn)`, without the trailing empty one. */
export function capturedLines(stream: Stream, fn: () => void): string[] {
  const text = captured(stream, fn);
  return text === '' ? [] : text.replace(/\n$/, '').split('\n');
}
