import { Logger } from '@nestjs/common';
import { describe as describeProgress, RebuildProgress } from './rebuild-progress.js';
import { replayed, replayTotal } from './replay-consumer.js';

describe('replay progress', () => {
  const range = { start: new Map([[0, 100n], [1, 0n]]), target: new Map([[0, 1100n], [1, 500n]]) };

  it('counts the offsets replayed from each partition start, capped at the target', () => {
    expect(replayTotal(range)).toBe(1500);
    expect(replayed(new Map(), range)).toBe(0);
    expect(replayed(new Map([[0, 600n]]), range)).toBe(500);
    // Past the target (live events since the start) counts as the target.
    expect(replayed(new Map([[0, 5000n], [1, 500n]]), range)).toBe(1500);
  });

  it('reports percent, rate over the last seconds and an ETA', () => {
    Logger.overrideLogger(false);
    const progress = new RebuildProgress(2, 1000, undefined);
    progress.update(0, 0);
    const figures = progress.update(250, 5000);
    expect(figures).toEqual({ replayed: 250, total: 1000, percent: 25, eventsPerSecond: 50, etaSeconds: 15 });
    expect(describeProgress(2, figures)).toBe('replaying into generation 2: 25.0% (250 of 1,000 events), 50 events/s, ETA 15 s');
    expect(progress.update(1000, 6000)).toMatchObject({ percent: 100, etaSeconds: 0 });
  });

  it('rewrites one line on a terminal, at most twice a second, and ends it', () => {
    let written = '';
    const terminal = { write: (text: string) => (written += text) } as unknown as NodeJS.WriteStream;
    const progress = new RebuildProgress(3, 100, terminal);
    progress.update(10, 0);
    progress.update(20, 100); // too soon: not shown
    progress.update(30, 600);
    progress.done();
    expect(written.split('\r\x1b[K')).toHaveLength(3);
    expect(written).toContain('30.0%');
    expect(written).not.toContain('20.0%');
    expect(written.endsWith('\n')).toBe(true);
  });
});
