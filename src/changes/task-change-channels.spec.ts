import { byChangeChannel, CHANGE_CHANNEL_COUNT, changeChannelOf, changeChannels, decodeChanges, encodeChanges } from './task-change-channels.js';

describe('task change channels', () => {
  it('names one channel per index under the key prefix', () => {
    expect(changeChannels('tc:')).toEqual(Array.from({ length: CHANGE_CHANNEL_COUNT }, (_, i) => `tc:changes:${i}`));
  });

  it('spreads taskIds over every channel, each id always on the same one', () => {
    const ids = Array.from({ length: 10_000 }, (_, i) => `task-${i}`);
    const groups = byChangeChannel(ids);
    expect(groups.size).toBe(CHANGE_CHANNEL_COUNT);
    for (const group of groups.values()) expect(group.length).toBeGreaterThan(10_000 / CHANGE_CHANNEL_COUNT / 2);
    for (const [channel, group] of groups) for (const id of group) expect(changeChannelOf(id)).toBe(channel);
  });

  it('decodes what it encodes, and drops whatever is not a taskId', () => {
    expect(decodeChanges(encodeChanges(['a', 'b:1', 'c.d-e_f']))).toEqual(['a', 'b:1', 'c.d-e_f']);
    expect(decodeChanges('a\n\nnot an id\n__proto__\n' + 'x'.repeat(129) + '\nb')).toEqual(['a', '__proto__', 'b']);
  });
});
