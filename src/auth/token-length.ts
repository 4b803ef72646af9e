/**
 * The longest token accepted, static or JWT. A token issued here is about 200 characters; the
 * bound is checked before any other work, so an oversized header costs a length comparison.
 * Configured static tokens are held to it at boot, so none of them can be refused by it.
 */
export const TOKEN_MAX_LENGTH = 4096;
