import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import type { ExportedSeries } from '../support/exported-metrics.js';
import { exportedMetrics, TARGET_LABELS } from '../support/exported-metrics.js';
import { promqlReferences } from '../support/promql-references.js';

const ROOT = join(import.meta.dirname, '..', '..');
const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');

const DASHBOARD_FILE = 'deploy/grafana/dashboards/task-cache.json';
const RULES_FILE = 'deploy/prometheus/rules/task-cache-alerts.yml';
const RULE_TESTS_FILE = 'deploy/prometheus/tests/task-cache-alerts.test.yml';
const PROMETHEUS_CONFIG = 'deploy/prometheus/prometheus.yml';
const DATASOURCE_UID_VARIABLE = '${DS_PROMETHEUS}';

interface Target {
  refId: string;
  expr: string;
  datasource?: { type: string; uid: string };
}
interface Panel {
  id: number;
  type: string;
  title: string;
  description?: string;
  datasource?: { type: string; uid: string };
  gridPos: { h: number; w: number; x: number; y: number };
  targets?: Target[];
  panels?: Panel[];
}
interface Variable {
  name: string;
  type: string;
  query?: string | { query: string };
  current?: { value?: unknown };
  datasource?: { type: string; uid: string };
}
interface Dashboard {
  uid: string;
  title: string;
  panels: Panel[];
  templating: { list: Variable[] };
}
interface AlertRule {
  alert?: string;
  record?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
interface RuleTest {
  name: string;
  alert_rule_test?: { eval_time: string; alertname: string; exp_alerts?: unknown[] }[];
}

const dashboard = JSON.parse(read(DASHBOARD_FILE)) as Dashboard;
const rules = (parse(read(RULES_FILE)) as { groups: { name: string; rules: AlertRule[] }[] }).groups.flatMap((group) => group.rules);
const alerts = rules.filter((rule) => rule.alert !== undefined);
const ruleTests = parse(read(RULE_TESTS_FILE)) as { rule_files: string[]; tests: RuleTest[] };

/** Every panel, those inside collapsed rows included. */
const panels: Panel[] = dashboard.panels.flatMap((panel) => [panel, ...(panel.panels ?? [])]);

interface Expression {
  readonly where: string;
  readonly expr: string;
}

/** Grafana's `label_values(<selector>, <label>)`, the variable query of its Prometheus data source. */
const LABEL_VALUES = /^label_values\((.+),\s*([a-zA-Z_]\w*)\s*\)$/s;

function dashboardExpressions(board: Dashboard): Expression[] {
  const fromPanels = board.panels
    .flatMap((panel) => [panel, ...(panel.panels ?? [])])
    .flatMap((panel) => (panel.targets ?? []).map((target) => ({ where: `panel "${panel.title}" ${target.refId}`, expr: target.expr })));
  const fromVariables = board.templating.list
    .filter((variable) => variable.type === 'query')
    .map((variable) => ({ where: `variable ${variable.name}`, expr: typeof variable.query === 'string' ? variable.query : variable.query!.query }));
  return [...fromPanels, ...fromVariables];
}

function ruleExpressions(list: readonly AlertRule[]): Expression[] {
  return list.map((rule) => ({ where: `rule ${rule.alert ?? rule.record}`, expr: rule.expr }));
}

/**
 * What an expression names that the service does not export: unknown metrics, labels a metric
 * does not have (in a selector or in a grouping clause), and values an enumerated label never
 * takes. Grafana's `label_values(...)` is read as its selector and the label it lists.
 */
function problemsIn({ where, expr }: Expression, exported: ReadonlyMap<string, ExportedSeries>): string[] {
  const variableQuery = LABEL_VALUES.exec(expr);
  const references = promqlReferences(variableQuery ? variableQuery[1] : expr);
  const groupings = [...references.groupings];
  if (variableQuery) groupings.push({ clause: 'by', labels: [variableQuery[2]], metrics: references.selectors.map((selector) => selector.metric) });
  const problems: string[] = [];
  if (references.selectors.length === 0) problems.push(`${where}: names no metric`);
  for (const { metric, matchers } of references.selectors) {
    const series = exported.get(metric);
    if (series === undefined) {
      problems.push(`${where}: ${metric} is not a series the service exports`);
      continue;
    }
    for (const { label, operator, value } of matchers) {
      if (!series.labels.has(label)) problems.push(`${where}: ${metric} has no label ${label}`);
      const known = series.values.get(label);
      if (operator === '=' && !value.includes('$') && known !== undefined && !known.has(value)) {
        problems.push(`${where}: ${metric}{${label}="${value}"} is never reported (${label} is one of ${[...known].join(', ')})`);
      }
    }
  }
  for (const { clause, labels, metrics } of groupings) {
    if (labels.length > 0 && metrics.length === 0) problems.push(`${where}: ${clause} (${labels.join(', ')}) groups no metric`);
    for (const metric of metrics) {
      const series = exported.get(metric);
      for (const label of labels) if (series !== undefined && !series.labels.has(label)) problems.push(`${where}: ${clause} (${label}): ${metric} has no label ${label}`);
    }
  }
  return problems;
}

describe('PromQL references (test/support/promql-references.ts)', () => {
  it('names the metrics, not the functions, aggregations, keywords, labels, durations, numbers or strings', () => {
    const expr = `histogram_quantile(0.99, sum by (le, job) (rate(taskcache_read_duration_seconds_bucket{status=~"5..", route!="by"}[$__rate_interval] offset 5m)))
      > on (job) group_left 2 * avg without (instance) (taskcache_redis_up{job='sum'} == bool 1) unless ignoring (instance) absent(up) or vector(1e3)
      and deriv(sum(taskcache_consumer_lag_messages)[10m:1m]) > -Inf and {__name__="taskcache_draining"} # rate(commented_out[5m])`;
    const references = promqlReferences(expr);
    expect(references.selectors.map((selector) => selector.metric)).toEqual([
      'taskcache_read_duration_seconds_bucket',
      'taskcache_redis_up',
      'up',
      'taskcache_consumer_lag_messages',
      'taskcache_draining',
    ]);
    expect(references.selectors[0].matchers).toEqual([
      { label: 'status', operator: '=~', value: '5..' },
      { label: 'route', operator: '!=', value: 'by' },
    ]);
    expect(references.groupings.map(({ clause, labels }) => [clause, labels])).toEqual([
      ['by', ['le', 'job']],
      ['on', ['job']],
      ['without', ['instance']],
      ['ignoring', ['instance']],
    ]);
  });

  it('knows which metrics a grouping clause groups, written before or after the aggregation', () => {
    const before = promqlReferences('sum by (reason) (rate(a_total[5m])) / sum by (job) (b_total)');
    expect(before.groupings).toEqual([
      { clause: 'by', labels: ['reason'], metrics: ['a_total'] },
      { clause: 'by', labels: ['job'], metrics: ['b_total'] },
    ]);
    const after = promqlReferences('sum(rate(a_total[5m])) by (reason) + max(b) without (le) * on (x) c');
    expect(after.groupings).toEqual([
      { clause: 'by', labels: ['reason'], metrics: ['a_total'] },
      { clause: 'without', labels: ['le'], metrics: ['b'] },
      { clause: 'on', labels: ['x'], metrics: ['a_total', 'b', 'c'] },
    ]);
  });

  it('refuses what it cannot read rather than missing a reference', () => {
    expect(() => promqlReferences('{job="task-cache"}')).toThrow('a selector without a metric name');
    expect(() => promqlReferences('rate(a[5 minutes])')).toThrow('not a range');
    expect(() => promqlReferences('sum(a{job=$job})')).toThrow();
    expect(() => promqlReferences('sum(a{job="x"}')).toThrow('unclosed');
    expect(() => promqlReferences('a{job="x')).toThrow('unterminated');
  });
});

describe('the dashboard and the alert rules name only what the service exports', () => {
  let exported: ReadonlyMap<string, ExportedSeries>;
  beforeAll(async () => {
    exported = await exportedMetrics();
  });

  it('reads the exported series from the real definitions, process metrics and histogram series included', () => {
    expect(exported.get('taskcache_read_duration_seconds_bucket')?.labels).toEqual(new Set(['route', 'status', 'le', ...TARGET_LABELS]));
    expect(exported.get('taskcache_read_duration_seconds_count')?.labels).toEqual(new Set(['route', 'status', ...TARGET_LABELS]));
    expect(exported.get('taskcache_ingest_phase')?.values.get('phase')).toEqual(new Set(['starting', 'provisioning', 'joining', 'consuming', 'retrying', 'failed', 'stopped']));
    for (const name of ['taskcache_redis_up', 'taskcache_rebuild_progress_ratio', 'process_cpu_seconds_total', 'nodejs_eventloop_lag_p99_seconds', 'up']) {
      expect([name, exported.has(name)]).toEqual([name, true]);
    }
    expect(exported.has('taskcache_read_duration_seconds')).toBe(false); // only its _bucket, _sum and _count are stored
  });

  it(`in the dashboard (${DASHBOARD_FILE})`, () => {
    const expressions = dashboardExpressions(dashboard);
    expect(expressions.length).toBeGreaterThan(30);
    expect(expressions.flatMap((expression) => problemsIn(expression, exported))).toEqual([]);
  });

  it(`in the alert rules (${RULES_FILE})`, () => {
    const expressions = ruleExpressions(rules);
    expect(expressions.length).toBeGreaterThanOrEqual(10);
    expect(expressions.flatMap((expression) => problemsIn(expression, exported))).toEqual([]);
  });

  it('reports a metric the service does not export, a label a metric lacks and a value it never takes', () => {
    const problems = (expr: string) => problemsIn({ where: 'x', expr }, exported);
    expect(problems('sum(rate(taskcache_reads_total[5m]))')).toEqual(['x: taskcache_reads_total is not a series the service exports']);
    expect(problems('taskcache_read_duration_seconds{route="/tasks/{taskId}"}')).toEqual(['x: taskcache_read_duration_seconds is not a series the service exports']);
    expect(problems('sum by (reason) (rate(taskcache_redis_command_errors_total[5m]))')).toEqual([
      'x: by (reason): taskcache_redis_command_errors_total has no label reason',
    ]);
    expect(problems('histogram_quantile(0.99, sum by (le) (rate(taskcache_event_freshness_seconds_sum[5m])))')).toEqual([
      'x: by (le): taskcache_event_freshness_seconds_sum has no label le',
    ]);
    expect(problems('taskcache_redis_up{operation="read"}')).toEqual(['x: taskcache_redis_up has no label operation']);
    expect(problems('taskcache_ingest_phase{phase="failing"} == 1')).toEqual([
      'x: taskcache_ingest_phase{phase="failing"} is never reported (phase is one of starting, provisioning, joining, consuming, retrying, failed, stopped)',
    ]);
    expect(problems('label_values(taskcache_redis_up, partition)')).toEqual(['x: by (partition): taskcache_redis_up has no label partition']);
    expect(problems('vector(1)')).toEqual(['x: names no metric']);
  });

  it('would report a dashboard or a rule that names a made-up metric', () => {
    const board = structuredClone(dashboard);
    const target = board.panels.flatMap((panel) => panel.targets ?? []).find((each) => each.expr.includes('taskcache_'))!;
    target.expr = target.expr.replace(/taskcache_\w+/, 'taskcache_made_up_total');
    expect(dashboardExpressions(board).flatMap((expression) => problemsIn(expression, exported))).toEqual([expect.stringContaining('taskcache_made_up_total is not a series the service exports')]);
    const renamed = rules.map((rule, at) => (at === 0 ? rule : { ...rule, expr: rule.expr.replace(/taskcache_redis_up/g, 'taskcache_redis_reachable') }));
    expect(ruleExpressions(renamed).flatMap((expression) => problemsIn(expression, exported))).toEqual([
      expect.stringContaining('taskcache_redis_reachable is not a series the service exports'),
      expect.stringContaining('taskcache_redis_reachable is not a series the service exports'),
    ]);
  });
});

describe(`Grafana dashboard (${DASHBOARD_FILE})`, () => {
  const datasourceVariable = dashboard.templating.list.find((variable) => variable.name === 'DS_PROMETHEUS');
  const provisioned = (parse(read('deploy/grafana/provisioning/datasources/prometheus.yml')) as { datasources: { uid: string; type: string; jsonData: { timeInterval: string } }[] })
    .datasources;

  it('queries the data source its DS_PROMETHEUS variable picks, by default the provisioned one', () => {
    expect(datasourceVariable).toMatchObject({ type: 'datasource', query: 'prometheus' });
    expect(provisioned).toHaveLength(1);
    expect(provisioned[0].type).toBe('prometheus');
    expect(datasourceVariable?.current?.value).toBe(provisioned[0].uid);
    const sources = [
      ...panels.filter((panel) => panel.type !== 'row').flatMap((panel) => [panel.datasource, ...(panel.targets ?? []).map((target) => target.datasource)]),
      ...dashboard.templating.list.filter((variable) => variable.type === 'query').map((variable) => variable.datasource),
    ];
    expect(sources.length).toBeGreaterThan(40);
    for (const source of sources) expect(source).toEqual({ type: 'prometheus', uid: DATASOURCE_UID_VARIABLE });
  });

  it('has a stable uid, unique panel ids, titled and described panels, unique refIds, and a grid without overlaps', () => {
    expect(dashboard.uid).toBe('task-cache');
    const ids = panels.map((panel) => panel.id);
    expect(new Set(ids).size).toBe(ids.length);
    const occupied = new Set<string>();
    for (const panel of panels) {
      const { h, w, x, y } = panel.gridPos;
      expect([panel.title, x + w <= 24 && w > 0 && h > 0]).toEqual([panel.title, true]);
      for (let row = y; row < y + h; row += 1) {
        for (let column = x; column < x + w; column += 1) {
          expect([panel.title, occupied.has(`${row}:${column}`)]).toEqual([panel.title, false]);
          occupied.add(`${row}:${column}`);
        }
      }
      if (panel.type === 'row') continue;
      expect([panel.title, (panel.description ?? '').length > 20]).toEqual([panel.title, true]);
      const refIds = (panel.targets ?? []).map((target) => target.refId);
      expect([panel.title, refIds.length > 0 && new Set(refIds).size === refIds.length]).toEqual([panel.title, true]);
    }
  });

  it('states the scrape interval as the data source time interval, so $__rate_interval spans four scrapes', () => {
    const config = parse(read(PROMETHEUS_CONFIG)) as { global: { scrape_interval: string } };
    expect(provisioned[0].jsonData.timeInterval).toBe(config.global.scrape_interval);
  });
});

describe(`Alert rules (${RULES_FILE})`, () => {
  it('give every alert a severity, and a summary and description that say what to check', () => {
    expect(alerts.length).toBeGreaterThanOrEqual(10);
    const names = alerts.map((rule) => rule.alert);
    expect(new Set(names).size).toBe(names.length);
    for (const rule of alerts) {
      expect([rule.alert, rule.alert?.startsWith('TaskCache')]).toEqual([rule.alert, true]);
      expect([rule.alert, rule.labels?.severity]).toEqual([rule.alert, expect.stringMatching(/^(warning|critical)$/)]);
      expect([rule.alert, (rule.annotations?.summary ?? '').length > 20, (rule.annotations?.description ?? '').length > 150]).toEqual([rule.alert, true, true]);
    }
  });

  it(`are each tested firing and staying quiet (${RULE_TESTS_FILE})`, () => {
    expect(ruleTests.rule_files).toEqual([`../rules/${RULES_FILE.split('/').pop()}`]);
    const evaluations = ruleTests.tests.flatMap((test) => test.alert_rule_test ?? []);
    for (const rule of alerts) {
      const own = evaluations.filter((evaluation) => evaluation.alertname === rule.alert);
      const fires = own.some((evaluation) => (evaluation.exp_alerts ?? []).length > 0);
      const quiet = own.some((evaluation) => (evaluation.exp_alerts ?? []).length === 0);
      expect([rule.alert, fires, quiet]).toEqual([rule.alert, true, true]);
    }
  });

  it('are each explained in the README ("Dashboards and alerts")', () => {
    const readme = read('README.md');
    const section = /^### Dashboards and alerts\n([\s\S]*?)(?=^#{2,3} )/m.exec(readme)?.[1] ?? '';
    expect(section).not.toBe('');
    for (const rule of alerts) expect([rule.alert, section.includes(`\`${rule.alert}\``)]).toEqual([rule.alert, true]);
  });
});

/**
 * scripts/promtool.sh finds one (PROMTOOL, PATH, or Debian's package extracted into .local/tools/).
 * Where none can be had the promtool checks are skipped, saying so, except in CI, where they must run.
 */
const located = spawnSync('bash', [join(ROOT, 'scripts', 'promtool.sh')], { encoding: 'utf8' });
const PROMTOOL = located.status === 0 ? located.stdout.trim() : 'promtool';
const promtoolVersion = /version (\d+\.\d+)\.\d+/.exec(spawnSync(PROMTOOL, ['--version'], { encoding: 'utf8' }).stdout ?? '')?.[1];
if (promtoolVersion === undefined && process.env.CI) throw new Error(`CI: promtool is required for the deploy/prometheus checks: ${located.stderr.trim()}`);
const withPromtool = promtoolVersion === undefined ? it.skip : it;
const skipped = promtoolVersion === undefined ? ' (skipped: promtool not found; see scripts/promtool.sh)' : '';
if (promtoolVersion === undefined) {
  console.warn(`promtool not found (${located.stderr.trim()}): the Prometheus configuration, the rules' syntax and their unit tests are not checked.`);
}

function promtool(...args: string[]): string {
  const run = spawnSync(PROMTOOL, args, { cwd: ROOT, encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`promtool ${args.join(' ')} exited ${run.status}:\n${run.stdout}${run.stderr}`);
  return run.stdout + run.stderr;
}

describe('promtool', () => {
  withPromtool(`accepts prometheus.yml and finds the rules${skipped}`, () => {
    expect(promtool('check', 'config', PROMETHEUS_CONFIG)).toContain('1 rule files found');
    expect(promtool('check', 'rules', RULES_FILE)).toContain(`${rules.length} rules found`);
  });

  withPromtool(`passes the rules' unit tests${skipped}`, () => {
    expect(promtool('test', 'rules', RULE_TESTS_FILE)).toContain('SUCCESS');
  });

  withPromtool(`parses every dashboard query, with Grafana's variables given values${skipped}`, () => {
    const records = dashboardExpressions(dashboard)
      .filter(({ expr }) => !LABEL_VALUES.test(expr))
      .map(({ expr }, at) => ({
        record: `dashboard_query_${at}`,
        expr: expr.replaceAll('$__rate_interval', '1m').replaceAll('$__range', '1h').replaceAll('$job', 'task-cache').replaceAll('$instance', '.*'),
      }));
    const dir = mkdtempSync(join(tmpdir(), 'task-cache-dashboard-'));
    try {
      writeFileSync(join(dir, 'queries.yml'), stringify({ groups: [{ name: 'dashboard', rules: records }] }));
      expect(promtool('check', 'rules', join(dir, 'queries.yml'))).toContain(`${records.length} rules found`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  withPromtool(`is the Prometheus version docker-compose.yml runs (major.minor)${skipped}`, () => {
    const compose = parse(read('docker-compose.yml')) as { services: Record<string, { image: string }> };
    expect(compose.services.prometheus.image).toMatch(new RegExp(`^prom/prometheus:v${promtoolVersion!.replace('.', '\\.')}\\.\\d+$`));
  });
});
