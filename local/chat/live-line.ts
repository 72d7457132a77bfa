import type { Writable } from 'node:stream';

/** A terminal's output stream: `columns` is kept current by Node as the window is resized. */
export type TerminalOutput = Writable & { readonly columns?: number };

const CLEAR_LINE = '\r\x1b[2K';

/**
 * One line at the bottom of a terminal that is redrawn in place (the live `queue:` line).
 *
 * `\r` and erase-line only reach the row the cursor is on: a line wider than the window wraps, and
 * each redraw would then leave a copy of its first rows behind (issue 16: at 80 columns every
 * redraw added a line). So the text is cut to the window's width, minus one column because some
 * terminals wrap as soon as the last column is written.
 */
export class LiveLine {
  private shown = false;

  constructor(
    private readonly out: TerminalOutput,
    private readonly paint: (text: string) => string = (text) => text,
  ) {}

  draw(text: string): void {
    const width = Math.max(10, (this.out.columns ?? 80) - 1);
    this.out.write(`${CLEAR_LINE}${this.paint(fitToWidth(text, width))}`);
    this.shown = true;
  }

  /** Erases the line, so that what is printed next starts at the left margin. */
  clear(): void {
    if (!this.shown) return;
    this.out.write(CLEAR_LINE);
    this.shown = false;
  }
}

/**
 * `text` cut to `width` terminal columns, ending with `…` when cut. Counts code points, and two
 * columns for East Asian wide characters and emoji, which is what terminals draw.
 */
export function fitToWidth(text: string, width: number): string {
  const flat = text.replace(/[\r\n\t]+/g, ' ');
  if (columnsOf(flat) <= width) return flat;
  let out = '';
  let used = 0;
  for (const char of flat) {
    const w = columnsOf(char);
    if (used + w > width - 1) break;
    out += char;
    used += w;
  }
  return `${out}…`;
}

/** Terminal columns a string takes. */
export function columnsOf(text: string): number {
  let columns = 0;
  for (const char of text) {
    const code = char.codePointAt(0)!;
    if (code < 0x20 || (code >= 0x7f && code < 0xa0) || /\p{Mn}|\p{Me}/u.test(char)) continue;
    columns += isWide(code) ? 2 : 1;
  }
  return columns;
}

function isWide(code: number): boolean {
  return (
    (code >= 0x1100 && code <= 0x115f) ||
    (code >= 0x2e80 && code <= 0xa4cf) ||
    (code >= 0xac00 && code <= 0xd7a3) ||
    (code >= 0xf900 && code <= 0xfaff) ||
    (code >= 0xfe30 && code <= 0xfe4f) ||
    (code >= 0xff00 && code <= 0xff60) ||
    (code >= 0xffe0 && code <= 0xffe6) ||
    (code >= 0x1f300 && code <= 0x1faff) ||
    (code >= 0x20000 && code <= 0x3fffd)
  );
}
