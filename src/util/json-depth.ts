/** How deep a JSON text nests, without parsing it: bodies and feeds are refused before a parser recurses. */

/**
 * The largest request body the API reads, bytes (its default bodyLimit). The client checks it
 * before sending: the API answers a larger body early and closes the connection, which a
 * client still writing sees as a reset, not as the answer.
 */
export const API_BODY_LIMIT_BYTES = 8 * 1024 * 1024;

/** Nesting depth of a JSON text, counted without recursion; stops counting past `stopAt`. */
export function jsonDepth(text: string, stopAt = Number.POSITIVE_INFINITY): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92) i++; // backslash: skip the escaped character
      else if (c === 34) inString = false;
    } else if (c === 34) inString = true;
    else if (c === 123 || c === 91) {
      depth++;
      if (depth > max) {
        max = depth;
        if (max > stopAt) return max;
      }
    } else if (c === 125 || c === 93) depth--;
  }
  return max;
}
