/**
 * Cuts streamed text (LLM tokens) into pieces worth speaking: whole sentences, or a clause once
 * a long sentence has gone on for a while, so the first words can be synthesized and played
 * while the rest is still being generated.
 */

/** End of a sentence: . ! ? … (optionally closed by a quote or bracket) then white space. */
const SENTENCE_END = /[.!?…]["')\]]?\s/g;
/** Where a long sentence may be cut: after , ; : or a dash, then white space. */
const CLAUSE_END = /[,;:—–]\s/g;

export interface SentenceOptions {
  /**
   * The first piece is cut at the first word boundary once this many characters are waiting
   * (default 1: the first word), so the caller hears the bot while the sentence is still coming.
   */
  firstPieceMinChars?: number;
  /** Cut at a clause boundary once this many characters are waiting (default 80). */
  clauseAfterChars?: number;
  /** Cut at the last space once this many characters are waiting (default 200). */
  maxChars?: number;
}

function lastMatchEnd(re: RegExp, s: string): number {
  re.lastIndex = 0;
  let end = -1;
  for (let m = re.exec(s); m; m = re.exec(s)) end = m.index + m[0].length;
  return end;
}

/** Yields speakable pieces of `source` as soon as each is complete; the rest at the end. */
export async function* sentences(source: AsyncIterable<string>, opts: SentenceOptions = {}): AsyncGenerator<string> {
  const clauseAfter = opts.clauseAfterChars ?? 80;
  const maxChars = opts.maxChars ?? 200;
  const firstMin = opts.firstPieceMinChars ?? 1;
  let first = true;
  let buf = '';
  for await (const piece of source) {
    buf += piece;
    for (;;) {
      let cut = lastMatchEnd(SENTENCE_END, buf);
      if (cut < 0 && buf.length >= clauseAfter) cut = lastMatchEnd(CLAUSE_END, buf);
      if (cut < 0 && buf.length >= maxChars) cut = buf.lastIndexOf(' ', maxChars) + 1 || maxChars;
      if (cut < 0 && first && buf.trim().length >= firstMin) {
        const sp = buf.search(/\S\s/);
        if (sp >= 0 && buf.slice(0, sp + 1).trim().length >= firstMin) cut = sp + 2;
        else if (sp >= 0) {
          // The first word is short: cut after the first word boundary past firstMin characters.
          const re = /\S\s/g;
          for (let m = re.exec(buf); m; m = re.exec(buf)) {
            if (buf.slice(0, m.index + 1).trim().length >= firstMin) {
              cut = m.index + 2;
              break;
            }
          }
        }
      }
      if (cut <= 0) break;
      const out = buf.slice(0, cut).trim();
      buf = buf.slice(cut);
      if (out) {
        first = false;
        yield out;
      }
    }
  }
  const rest = buf.trim();
  if (rest) yield rest;
}
