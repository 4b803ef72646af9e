// Writes a benchmark's figures to bench/results/<name>.json and its section of bench/RESULTS.md.
// Smoke runs write to bench/results/smoke/ instead (gitignored), so they never replace the
// committed results of a full run.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { ROOT, SMOKE } from './bench-settings.mjs';

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

export function writeResults(name, figures, markdownSection) {
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
