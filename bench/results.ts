// A benchmark's results: the machine it ran on, the goals it is held to, and where its figures go
// (bench/results/<name>.json and its section of bench/RESULTS.md). Smoke runs write to
// bench/results/smoke/ instead (gitignored), so they never replace the committed results of a full run.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join, relative } from 'node:path';
import type { Redis } from 'ioredis';
import { ROOT } from '../test/support/infra.js';
import { SMOKE } from './settings.js';
import { round } from './statistics.js';

export interface MachineInfo {
  cores: number;
  cpu: string;
  memoryGiB: number;
  os: string;
  node: string;
  kafka: string;
  redis: string;
}

function kafkaVersion(): string {
  const pom = readFileSync(join(ROOT, 'scripts', 'kafka', 'pom.xml'), 'utf8');
  return /<kafka\.version>([^<]+)<\/kafka\.version>/.exec(pom)?.[1] ?? 'unknown';
}

/** The machine a run was measured on: results are only comparable on the same one. */
export async function machineInfo(redis: Redis): Promise<MachineInfo> {
  const info = await redis.info('server');
  return {
    cores: os.availableParallelism(),
    cpu: os.cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    os: `${os.type()} ${os.release()}`,
    node: process.version,
    kafka: kafkaVersion(),
    redis: /redis_version:(\S+)/.exec(info)?.[1] ?? 'unknown',
  };
}

export interface Goal {
  goal: string;
  actual: number | null;
  target: number;
  atLeast: boolean;
}

export interface JudgedGoal {
  goal: string;
  target: string;
  actual: number | null;
  verdict: 'PASS' | 'MISS' | 'n/a';
}

/**
 * The figures the product is held to (benchmark issue), reported as PASS or MISS. Never asserted:
 * a miss is a finding, not a failure of the benchmark.
 */
export function judgeGoals(goals: Goal[]): JudgedGoal[] {
  return goals.map(({ goal, actual, target, atLeast }) => ({
    goal,
    target: `${atLeast ? '≥' : '≤'} ${target}`,
    actual: actual == null ? null : round(actual, 3),
    verdict: actual == null ? 'n/a' : (atLeast ? actual >= target : actual <= target) ? 'PASS' : 'MISS',
  }));
}

/** The lines a benchmark's section opens with: its title (flagged on a smoke run), date, command, machine. */
export function sectionHead(title: string, { date, command, machine }: { date: string; command: string; machine: MachineInfo }): string[] {
  return [
    `## ${title}${SMOKE ? ' (smoke run: sizes too small for the figures to mean anything)' : ''}`,
    '',
    `- Date: ${date}`,
    `- Command: \`${command}\``,
    `- Machine: ${machine.cores} cores (${machine.cpu}), Node ${machine.node}, Kafka ${machine.kafka}, Redis ${machine.redis}`,
  ];
}

export function goalsMarkdown(judged: JudgedGoal[]): string {
  const rows = judged.map(({ goal, target, actual, verdict }) => `| ${goal} | ${target} | ${actual ?? 'n/a'} | ${verdict} |`);
  return ['| goal | target | measured | verdict |', '|---|---|---|---|', ...rows].join('\n');
}

const RESULTS_DIR = SMOKE ? join(ROOT, 'bench', 'results', 'smoke') : join(ROOT, 'bench', 'results');
const SUMMARY = SMOKE ? join(RESULTS_DIR, 'RESULTS.md') : join(ROOT, 'bench', 'RESULTS.md');

const SUMMARY_HEADER = `# Benchmark results

Each section is written by its benchmark (\`npm run bench:read\`, \`npm run bench:ingest\`); the
figures behind it are in \`bench/results/<name>.json\`. The service is measured side by side with
its floor in the same run on the same machine, so read the ratios and medians rather than any
single absolute figure: the machines here are shared and noisy.

<!-- bench:read:start -->
## Read: no full run recorded yet
<!-- bench:read:end -->

<!-- bench:ingest:start -->
## Ingest: no full run recorded yet
<!-- bench:ingest:end -->
`;

/** Writes the figures to <name>.json and replaces the benchmark's section of the summary. */
export function writeResults(name: 'read' | 'read-lb' | 'batch' | 'ingest' | 'redis' | 'rebuild' | 'retention' | 'watch', figures: object, markdownSection: string): { json: string; summary: string } {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const jsonPath = join(RESULTS_DIR, `${name}.json`);
  writeFileSync(jsonPath, `${JSON.stringify(figures, null, 2)}\n`);

  const start = `<!-- bench:${name}:start -->`;
  const end = `<!-- bench:${name}:end -->`;
  const section = `${start}\n${markdownSection.trim()}\n${end}`;
  let summary = existsSync(SUMMARY) ? readFileSync(SUMMARY, 'utf8') : SUMMARY_HEADER;
  const from = summary.indexOf(start);
  const to = summary.indexOf(end);
  summary = from >= 0 && to > from ? summary.slice(0, from) + section + summary.slice(to + end.length) : `${summary.trimEnd()}\n\n${section}\n`;
  writeFileSync(SUMMARY, summary);
  return { json: relative(ROOT, jsonPath), summary: relative(ROOT, SUMMARY) };
}
