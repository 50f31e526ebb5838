/**
 * Splits a byte stream into newline-terminated lines without copying the
 * whole buffer on every chunk (a long result arrives in many chunks).
 * UTF-8 never uses the byte 0x0a inside a multi-byte character, so lines
 * are cut on bytes and decoded whole.
 */
export class LineSplitter {
  private parts: Buffer[] = [];
  private partBytes = 0;

  /** @param maxLineBytes a line longer than this throws a RangeError. */
  constructor(private readonly maxLineBytes: number) {}

  /** Bytes of the line being received that has no newline yet. */
  get pendingBytes(): number {
    return this.partBytes;
  }

  /** Feeds a chunk; returns the complete lines it finished, newline removed. */
  push(chunk: Buffer): string[] {
    const lines: string[] = [];
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(0x0a, start);
      if (nl < 0) break;
      const piece = chunk.subarray(start, nl);
      this.check(this.partBytes + piece.length);
      if (this.parts.length === 0) {
        lines.push(piece.toString("utf8"));
      } else {
        this.parts.push(piece);
        lines.push(Buffer.concat(this.parts, this.partBytes + piece.length).toString("utf8"));
        this.parts = [];
        this.partBytes = 0;
      }
      start = nl + 1;
    }
    if (start < chunk.length) {
      const rest = chunk.subarray(start);
      this.check(this.partBytes + rest.length);
      this.parts.push(rest);
      this.partBytes += rest.length;
    }
    return lines;
  }

  private check(bytes: number): void {
    if (bytes > this.maxLineBytes) {
      throw new RangeError(`a line from promptd is longer than ${this.maxLineBytes} bytes`);
    }
  }
}
