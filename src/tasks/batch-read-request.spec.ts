import { InvalidBatchReadError } from './invalid-batch-read.error.js';
import { batchReadTaskIds, MAX_BATCH_READ_IDS } from './batch-read-request.js';

const refusal = (body: unknown): string => {
  try {
    batchReadTaskIds(body);
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidBatchReadError);
    expect(error).toMatchObject({ code: 'INVALID_BATCH_READ', retryable: false });
    return (error as Error).message;
  }
  throw new Error('accepted');
};

describe('batchReadTaskIds', () => {
  it('takes the ids in order, each once at its first occurrence, ignoring other fields', () => {
    expect(batchReadTaskIds({ taskIds: ['b', 'a', 'b', 'ns:c.d_e-f', 'a'], other: 1 })).toEqual(['b', 'a', 'ns:c.d_e-f']);
  });

  it('takes an empty list', () => {
    expect(batchReadTaskIds({ taskIds: [] })).toEqual([]);
  });

  it(`takes ${MAX_BATCH_READ_IDS} ids of 128 characters, and refuses one more, duplicates counted`, () => {
    const ids = Array.from({ length: MAX_BATCH_READ_IDS }, (_, i) => String(i).padStart(128, 'x'));
    expect(batchReadTaskIds({ taskIds: ids })).toHaveLength(MAX_BATCH_READ_IDS);
    expect(refusal({ taskIds: [...ids, ids[0]] })).toBe(`taskIds holds ${MAX_BATCH_READ_IDS + 1} ids; at most ${MAX_BATCH_READ_IDS} per request`);
  });

  it.each([null, [], ['a'], 'a', 1, true])('refuses a body that is not an object: %j', (body) => {
    expect(refusal(body)).toBe('The body must be a JSON object: {"taskIds": [...]}');
  });

  it.each([{}, { taskIds: null }, { taskIds: 'a' }, { taskIds: { 0: 'a', length: 1 } }, { taskids: ['a'] }])('refuses taskIds missing or not an array: %j', (body) => {
    expect(refusal(body)).toBe('taskIds must be an array of taskIds');
  });

  it('refuses an element that is not a string, naming its index', () => {
    for (const value of [1, null, ['a'], { taskId: 'a' }, true]) expect(refusal({ taskIds: ['a', 'b', value] })).toBe('taskIds[2] must be a string');
  });

  it('refuses an invalid taskId by its index, never echoing it', () => {
    for (const value of ['', 'a b', 'x'.repeat(129), 'a/b', 'é', `${'y'.repeat(100_000)}!`]) {
      const message = refusal({ taskIds: ['ok', value] });
      expect(message).toBe('taskIds[1] is not a valid taskId: expected 1 to 128 characters of A-Z a-z 0-9 _ . : -');
    }
  });

  it('reads taskIds only as an own field: prototype-named fields neither supply nor break it', () => {
    const parsed = (json: string) => JSON.parse(json) as unknown;
    expect(refusal(parsed('{"__proto__":{"taskIds":["a"]}}'))).toBe('taskIds must be an array of taskIds');
    expect(refusal(parsed('{"constructor":{"taskIds":["a"]}}'))).toBe('taskIds must be an array of taskIds');
    expect(batchReadTaskIds(parsed('{"__proto__":{"x":1},"constructor":1,"hasOwnProperty":2,"taskIds":["__proto__","constructor","toString"]}'))).toEqual([
      '__proto__',
      'constructor',
      'toString',
    ]);
  });
});
