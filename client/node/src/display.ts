/**
 * Showing text that promptd relays from others: a model's answer, a stored
 * idea or context, an upstream's error message, a model name. Such text may
 * carry control characters that a terminal obeys (ESC ] 0 ; title BEL sets
 * the window title, ESC [ 2 J clears the screen, OSC 8 makes links, U+009B
 * is CSI). The library hands results over exactly as the daemon sent them;
 * whoever shows them to a person passes them through one of these first.
 */

/** C0 controls except tab and newline, DEL, and C1 controls (U+0080-U+009F). */
const CONTROLS = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g;

function hex(ch: string, width: number): string {
  return ch.charCodeAt(0).toString(16).padStart(width, "0");
}

/**
 * The text with every control character shown as a visible escape, as
 * promptctl shows it: newline and tab stay, other C0 controls and DEL
 * become `\xNN` (`\x1b`), C1 controls become `\u00NN` (`\u009b`). For a
 * terminal or a log.
 */
export function sanitizeForDisplay(text: string): string {
  return text.replace(CONTROLS, (ch) => (ch.charCodeAt(0) >= 0x80 ? `\\u${hex(ch, 4)}` : `\\x${hex(ch, 2)}`));
}

/**
 * The text without its control characters (newline and tab stay): for a
 * user interface that renders text rather than printing it to a terminal.
 */
export function stripControls(text: string): string {
  return text.replace(CONTROLS, "");
}
