// The figures the product is held to (benchmark issue), reported as PASS or MISS. Never asserted:
// a miss is a finding, not a failure of the benchmark.
import { round } from './statistics.mjs';

/**
 * @param {{ goal: string, actual: number | null, target: number, atLeast: boolean }[]} goals
 * @returns {{ goal: string, target: string, actual: number | null, verdict: 'PASS' | 'MISS' | 'n/a' }[]}
 */
export function judgeGoals(goals) {
  return goals.map(({ goal, actual, target, atLeast }) => ({
    goal,
    target: `${atLeast ? '≥' : '≤'} ${target}`,
    actual: actual == null ? null : round(actual, 3),
    verdict: actual == null ? 'n/a' : (atLeast ? actual >= target : actual <= target) ? 'PASS' : 'MISS',
  }));
}

export function goalsMarkdown(judged) {
  const rows = judged.map(({ goal, target, actual, verdict }) => `| ${goal} | ${target} | ${actual ?? 'n/a'} | ${verdict} |`);
  return ['| goal | target | measured | verdict |', '|---|---|---|---|', ...rows].join('\n');
}
