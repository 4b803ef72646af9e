import { batchReadBody } from './batch-read-body.js';

const task = (json: string) => ({ value: Buffer.from(json), version: '0-1' });

describe('batchReadBody', () => {
  it('splices each stored task in as its bytes, by id in request order, and lists the missing in request order', () => {
    const stored = '{\n  "taskId": "b",\n  "note": "é ✓ \u2028 \\"q\\""\n}\n';
    const body = batchReadBody(['a', 'b', 'c', 'd'], [null, task(stored), task('{"taskId":"c"}'), null]);
    expect(body.toString()).toBe(`{"tasks":{"b":${stored},"c":{"taskId":"c"}},"missing":["a","d"]}`);
    expect(JSON.parse(body.toString())).toEqual({ tasks: { b: JSON.parse(stored), c: { taskId: 'c' } }, missing: ['a', 'd'] });
    // The stored bytes, byte for byte, inside the body.
    expect(body.includes(Buffer.from(stored))).toBe(true);
  });

  it('answers empty results for no ids, and for none found', () => {
    expect(batchReadBody([], []).toString()).toBe('{"tasks":{},"missing":[]}');
    expect(batchReadBody(['a', 'b'], [null, null]).toString()).toBe('{"tasks":{},"missing":["a","b"]}');
    expect(batchReadBody(['a'], [task('{}')]).toString()).toBe('{"tasks":{"a":{}},"missing":[]}');
  });

  it('keys prototype-named ids as ordinary keys', () => {
    const body = batchReadBody(['__proto__', 'constructor', 'toString'], [task('{"taskId":"__proto__"}'), null, task('{"taskId":"toString"}')]);
    const parsed = JSON.parse(body.toString()) as { tasks: Record<string, unknown>; missing: string[] };
    expect(Object.keys(parsed.tasks)).toEqual(['__proto__', 'toString']);
    expect(Object.hasOwn(parsed.tasks, '__proto__')).toBe(true);
    expect(parsed.missing).toEqual(['constructor']);
  });

  it('escapes keys as JSON strings', () => {
    expect(batchReadBody(['a"b\\c'], [task('{}')]).toString()).toBe('{"tasks":{"a\\"b\\\\c":{}},"missing":[]}');
    expect(batchReadBody(['a"b'], [null]).toString()).toBe('{"tasks":{},"missing":["a\\"b"]}');
  });
});
