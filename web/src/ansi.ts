// Program output is untrusted: it is shown as text (never HTML), with ANSI escape
// sequences (colours, cursor moves, OSC titles and links) removed.
// CSI ... final byte, OSC ... BEL/ST, other two-byte escapes, and stray C0 controls
// except tab and newline.
const ANSI = /\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]|[\x00-\x08\x0b-\x1a\x1c-\x1f\x7f]/g;

export function stripAnsi(text: string): string {
  return text.replace(ANSI, "").replace(/\r\n/g, "\n");
}
