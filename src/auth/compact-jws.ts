const SEGMENT = /^[A-Za-z0-9_-]+$/;

/**
 * True only for a JWS in canonical compact form: three non-empty segments of the base64url
 * alphabet, without padding, each one exactly the encoding of the bytes it decodes to.
 *
 * Base64url decoding is lenient: it skips characters outside the alphabet and `=`, and ignores
 * the unused low bits of a segment's last character. So one valid token has many spellings
 * that all verify (`sig==`, `s!ig`, a different last character); each would be cached as a token
 * of its own. Accepting only the canonical spelling leaves one string per signed token.
 */
export function isCanonicalCompactJws(token: string): boolean {
  const segments = token.split('.');
  if (segments.length !== 3) return false;
  return segments.every((segment) => SEGMENT.test(segment) && Buffer.from(segment, 'base64url').toString('base64url') === segment);
}
