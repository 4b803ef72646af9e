import fc from 'fast-check';
import { nestedDeeperThan } from './json-body.middleware.js';

/** The depth of a parsed value, the obvious recursive way: the reference for the scan. */
function depthOf(value: unknown): number {
  if (value === null || typeof value !== 'object') return 0;
  return 1 + Math.max(0, ...Object.values(value).map(depthOf));
}

describe('nestedDeeperThan', () => {
  it('counts objects and arrays alike, and takes a document exactly at the bound', () => {
    expect(nestedDeeperThan('{"a":[{"b":[]}]}', 4)).toBe(false);
    expect(nestedDeeperThan('{"a":[{"b":[]}]}', 3)).toBe(true);
    expect(nestedDeeperThan('"text"', 0)).toBe(false);
    expect(nestedDeeperThan('[]', 0)).toBe(true);
  });

  it('ignores brackets and escaped quotes inside strings', () => {
    expect(nestedDeeperThan(JSON.stringify({ keyId: '[[[{{{', keySecret: 'a\\"[[[\\\\"{{' }), 1)).toBe(false);
    expect(nestedDeeperThan(JSON.stringify({ '{[{[': ['"\\"['] }), 2)).toBe(false);
  });

  it('finds 1,500 levels without using the stack for them', () => {
    expect(nestedDeeperThan(`${'['.repeat(1500)}${']'.repeat(1500)}`, 32)).toBe(true);
    expect(nestedDeeperThan(`${'{"a":'.repeat(100_000)}1${'}'.repeat(100_000)}`, 32)).toBe(true);
  });

  it('agrees with the recursive depth on any JSON document', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 8 }), fc.integer({ min: 0, max: 9 }), (value, bound) => {
        expect(nestedDeeperThan(JSON.stringify(value), bound)).toBe(depthOf(value) > bound);
      }),
      { numRuns: 500 },
    );
  });
});
