import { UNPROCESSED } from '../projection/task-projection.js';
import { batchReadBody } from './batch-read-body.js';

const task = (json: string) => ({ value: Buffer.from(json), version: '0-1' });

describe('batchReadBody', () => {
  it('splices each stored task in as its bytes, by id in request order, and lists the missing in request order', () => {
    const stored = '{\n  "taskId": "b",\n  "note": "é ✓ \u2028 \\"q\\""\n}\n';
    const body = batchReadBody(['a', 'b', 'c', 'd'], [null, task(stored), task('{"taskId":"c"}'), null]);
    expect(body.toString()).toBe(`{"tasks":{"b":${stored},"c":{"taskId":"c"}},"missing":["a","d"],"unprocessed":[]}`);
    expect(JSON.parse(body.toString())).toEqual({ tasks: { b: JSON.parse(stored), c: { taskId: 'c' } }, missing: ['a', 'd'], unprocessed: [] });
    // The stored bytes, byte for byte, inside the body.
    expect(body.includes(Buffer.from(stored))).toBe(true);
  });

  it('lists the unprocessed ids in request order, apart from the tasks and the missing', () => {
    const body = batchReadBody(['a', 'b', 'c', 'd', 'e"'], [UNPROCESSED, task('{"taskId":"b"}'), null, UNPROCESSED, UNPROCESSED]);
    expect(body.toString()).toBe('{"tasks":{"b":{"taskId":"b"}},"missing":["c"],"unprocessed":["a","d","e\\""]}');
    expect(JSON.parse(body.toString())).toEqual({ tasks: { b: { taskId: 'b' } }, missing: ['c'], unprocessed: ['a', 'd', 'e"'] });
  });

  it('answers empty results for no ids, and for none found', () => {
    expect(batchReadBody([], []).toString()).toBe('{"tasks":{},"missing":[],"unprocessed":[]}');
    expect(batchReadBody(['a', 'b'], [null, null]).toString()).toBe('{"tasks":{},"missing":["a","b"],"unprocessed":[]}');
    expect(batchReadBody(['a'], [task('{}')]).toString()).toBe('{"tasks":{"a":{}},"missing":[],"unprocessed":[]}');
  });

  it('keys prototype-named ids as ordinary keys', () => {
    const body = batchReadBody(['__proto__', 'constructor', 'toString'], [task('{"taskId":"__proto__"}'), null, task('{"taskId":"toString"}')]);
    const parsed = JSON.parse(body.toString()) as { tasks: Record<string, unknown>; missing: string[] };
    expect(Object.keys(parsed.tasks)).toEqual(['__proto__', 'toString']);
    expect(Object.hasOwn(parsed.tasks, '__proto__')).toBe(true);
    expect(parsed.missing).toEqual(['constructor']);
  });

  it('escapes keys as JSON strings', () => {
    expect(batchReadBody(['a"b\\c'], [task('{}')]).toString()).toBe('{"tasks":{"a\\"b\\\\c":{}},"missing":[],"unprocessed":[]}');
    expect(batchReadBody(['a"b'], [null]).toString()).toBe('{"tasks":{},"missing":["a\\"b"],"unprocessed":[]}');
  });
});
