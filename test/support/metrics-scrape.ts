import { httpGet } from './http-get.js';

/** One sample of Prometheus's text format: a series (name and labels) and its value. */
export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

/** What one scrape of /metrics answered, parsed. */
export class Scrape {
  constructor(
    readonly text: string,
    readonly samples: readonly Sample[],
  ) {}

  static parse(text: string): Scrape {
    const samples: Sample[] = [];
    for (const line of text.split('\n')) {
      if (line === '' || line.startsWith('#')) continue;
      const match = SAMPLE.exec(line);
      if (!match) throw new Error(`not a sample line of the Prometheus text format: ${line}`);
      const labels: Record<string, string> = {};
      for (const [, name, value] of (match[2] ?? '').matchAll(LABEL)) labels[name] = value.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
      samples.push({ name: match[1], labels, value: Number(match[3]) });
    }
    return new Scrape(text, samples);
  }

  /** The sum of the samples of `name` whose labels include `labels` (0 when there are none). */
  sum(name: string, labels: Record<string, string> = {}): number {
    return this.matching(name, labels).reduce((total, sample) => total + sample.value, 0);
  }

  /** Whether any sample of `name` (with `labels`) is present. */
  has(name: string, labels: Record<string, string> = {}): boolean {
    return this.matching(name, labels).length > 0;
  }

  private matching(name: string, labels: Record<string, string>): Sample[] {
    return this.samples.filter((sample) => sample.name === name && Object.entries(labels).every(([key, value]) => sample.labels[key] === value));
  }
}

/** GET /metrics on the metrics port; fails unless it answers 200 in Prometheus's text format. */
export async function scrape(port: number): Promise<Scrape> {
  const answer = await httpGet(`http://127.0.0.1:${port}/metrics`);
  if (answer.status !== 200) throw new Error(`GET /metrics answered ${answer.status}: ${answer.body.slice(0, 200)}`);
  if (!String(answer.headers['content-type']).startsWith('text/plain; version=0.0.4')) throw new Error(`GET /metrics answered ${answer.headers['content-type']}`);
  return Scrape.parse(answer.body);
}
