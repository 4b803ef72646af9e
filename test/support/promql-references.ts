/**
 * What a PromQL expression names: its series selectors (metric and label matchers) and its
 * grouping clauses (`by`, `without`, `on`, `ignoring`, `group_left`, `group_right`) with the
 * metrics each one groups. Enough of PromQL's lexical grammar to tell a metric from a function, an
 * aggregation, a keyword, a label, a duration or a string; it is not an evaluator, and it refuses
 * what it does not recognise rather than skipping it, so that a reference is never missed
 * silently. Grafana's variables are accepted where dashboards put them: in strings, and as a range
 * (`[$__rate_interval]`).
 */

export type MatchOperator = '=' | '!=' | '=~' | '!~';

export interface LabelMatcher {
  readonly label: string;
  readonly operator: MatchOperator;
  readonly value: string;
}

export interface SelectorReference {
  readonly metric: string;
  readonly matchers: readonly LabelMatcher[];
}

export type GroupingClause = 'by' | 'without' | 'on' | 'ignoring' | 'group_left' | 'group_right';

export interface GroupingReference {
  readonly clause: GroupingClause;
  readonly labels: readonly string[];
  /** The metrics of the expression the clause groups: an aggregation's argument, or the whole expression for vector matching. */
  readonly metrics: readonly string[];
}

export interface PromqlReferences {
  readonly selectors: readonly SelectorReference[];
  readonly groupings: readonly GroupingReference[];
}

type TokenKind = 'identifier' | 'number' | 'string' | 'range' | 'operator' | 'punctuation';

interface Token {
  readonly kind: TokenKind;
  readonly text: string;
  /** A string's value, unquoted. */
  readonly value?: string;
}

const GROUPING_CLAUSES: ReadonlySet<string> = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right']);
const KEYWORDS: ReadonlySet<string> = new Set(['and', 'or', 'unless', 'bool', 'offset', 'atan2', 'inf', 'nan']);
const MATCH_OPERATORS: ReadonlySet<string> = new Set(['=', '!=', '=~', '!~']);

const DURATION = String.raw`(?:\$\w+|(?:\d+(?:ms|[smhdwy]))+)`;
/** The inside of `[...]`: a range, or a subquery's range and optional resolution. */
const RANGE = new RegExp(String.raw`^\s*${DURATION}\s*(?::\s*(?:${DURATION})?\s*)?$`);
const NUMBER = /^(?:0x[0-9a-fA-F]+|(?:\d+(?:ms|[smhdwy]))+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)/;
const IDENTIFIER = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
const OPERATORS = ['==', '!=', '=~', '!~', '>=', '<=', '+', '-', '*', '/', '%', '^', '<', '>', '=', '@'];
const PUNCTUATION = '(){},';

export function promqlReferences(expression: string): PromqlReferences {
  const tokens = tokenize(expression);
  const closing = matchBrackets(tokens, expression);
  const selectors: { reference: SelectorReference; at: number }[] = [];
  const clauses: { clause: GroupingClause; labels: string[]; scope: [number, number] }[] = [];

  for (let at = 0; at < tokens.length; at += 1) {
    const token = tokens[at];
    const next = tokens[at + 1];
    if (token.kind === 'identifier' && GROUPING_CLAUSES.has(token.text.toLowerCase())) {
      const clause = token.text.toLowerCase() as GroupingClause;
      if (next?.text !== '(') {
        if (clause === 'group_left' || clause === 'group_right') continue;
        throw new Error(`${clause} without a label list in: ${expression}`);
      }
      const end = closing.get(at + 1)!;
      const labels = labelList(tokens.slice(at + 2, end), expression);
      clauses.push({ clause, labels, scope: scopeOf(clause, at, end, tokens, closing, expression) });
      at = end;
    } else if (token.kind === 'identifier' && KEYWORDS.has(token.text.toLowerCase())) {
      continue;
    } else if (token.kind === 'identifier' && (next?.text === '(' || /^(by|without)$/i.test(next?.text ?? ''))) {
      continue; // a function, or an aggregation (`sum (...)`, `sum by (...) (...)`)
    } else if (token.kind === 'identifier') {
      const matchers = next?.text === '{' ? labelMatchers(tokens.slice(at + 2, closing.get(at + 1)), expression) : [];
      selectors.push({ reference: { metric: token.text, matchers }, at });
      if (next?.text === '{') at = closing.get(at + 1)!;
    } else if (token.text === '{') {
      const end = closing.get(at)!;
      const matchers = labelMatchers(tokens.slice(at + 1, end), expression);
      const name = matchers.find((matcher) => matcher.label === '__name__');
      if (name?.operator !== '=') throw new Error(`a selector without a metric name in: ${expression}`);
      selectors.push({ reference: { metric: name.value, matchers: matchers.filter((matcher) => matcher !== name) }, at });
      at = end;
    }
  }

  return {
    selectors: selectors.map((selector) => selector.reference),
    groupings: clauses.map(({ clause, labels, scope: [from, to] }) => ({
      clause,
      labels,
      metrics: [...new Set(selectors.filter((selector) => selector.at > from && selector.at < to).map((selector) => selector.reference.metric))],
    })),
  };
}

function tokenize(expression: string): Token[] {
  const tokens: Token[] = [];
  let rest = expression;
  while (rest.length > 0) {
    const space = /^(?:\s+|#[^\n]*)/.exec(rest);
    if (space) {
      rest = rest.slice(space[0].length);
      continue;
    }
    const first = rest[0];
    let token: Token;
    if (first === '"' || first === "'" || first === '`') {
      const end = stringEnd(rest, expression);
      const raw = rest.slice(1, end);
      token = { kind: 'string', text: rest.slice(0, end + 1), value: first === '`' ? raw : raw.replace(/\\(.)/g, '$1') };
    } else if (first === '[') {
      const end = rest.indexOf(']');
      const inside = end < 0 ? undefined : rest.slice(1, end);
      if (inside === undefined || !RANGE.test(inside)) throw new Error(`not a range or subquery: ${rest.slice(0, end + 1 || undefined)} in: ${expression}`);
      token = { kind: 'range', text: rest.slice(0, end + 1) };
    } else if (/[0-9.]/.test(first) && NUMBER.test(rest)) {
      token = { kind: 'number', text: NUMBER.exec(rest)![0] };
    } else if (IDENTIFIER.test(rest)) {
      token = { kind: 'identifier', text: IDENTIFIER.exec(rest)![0] };
    } else if (PUNCTUATION.includes(first)) {
      token = { kind: 'punctuation', text: first };
    } else {
      const operator = OPERATORS.find((candidate) => rest.startsWith(candidate));
      if (operator === undefined) throw new Error(`unexpected ${JSON.stringify(first)} at "${rest.slice(0, 20)}" in: ${expression}`);
      token = { kind: 'operator', text: operator };
    }
    tokens.push(token);
    rest = rest.slice(token.text.length);
  }
  return tokens;
}

function stringEnd(rest: string, expression: string): number {
  const quote = rest[0];
  for (let at = 1; at < rest.length; at += 1) {
    if (rest[at] === '\\' && quote !== '`') at += 1;
    else if (rest[at] === quote) return at;
  }
  throw new Error(`an unterminated string in: ${expression}`);
}

/** Index of each `(` and `{` token -> index of the token that closes it. */
function matchBrackets(tokens: readonly Token[], expression: string): Map<number, number> {
  const closing = new Map<number, number>();
  const open: number[] = [];
  tokens.forEach((token, at) => {
    if (token.text === '(' || token.text === '{') open.push(at);
    if (token.text === ')' || token.text === '}') {
      const from = open.pop();
      if (from === undefined || tokens[from].text !== (token.text === ')' ? '(' : '{')) throw new Error(`unbalanced ${token.text} in: ${expression}`);
      closing.set(from, at);
    }
  });
  if (open.length > 0) throw new Error(`unclosed ${tokens[open[0]].text} in: ${expression}`);
  return closing;
}

/** The token range (exclusive) a grouping clause applies to. */
function scopeOf(clause: GroupingClause, at: number, end: number, tokens: readonly Token[], closing: ReadonlyMap<number, number>, expression: string): [number, number] {
  if (clause !== 'by' && clause !== 'without') return [-1, tokens.length];
  const before = tokens[at - 1];
  // `sum by (x) (expr)`: the argument follows the label list.
  if (before?.kind === 'identifier') {
    if (tokens[end + 1]?.text !== '(') throw new Error(`${clause} (...) followed by no argument in: ${expression}`);
    return [end + 1, closing.get(end + 1)!];
  }
  // `sum (expr) by (x)`: the argument precedes the clause.
  if (before?.text === ')') {
    const open = [...closing].find(([, close]) => close === at - 1)![0];
    return [open, at - 1];
  }
  throw new Error(`${clause} in an unexpected place in: ${expression}`);
}

function labelList(tokens: readonly Token[], expression: string): string[] {
  const labels: string[] = [];
  tokens.forEach((token, at) => {
    const expected = at % 2 === 0 ? 'identifier' : ',';
    if (expected === 'identifier' ? token.kind !== 'identifier' : token.text !== ',') throw new Error(`not a label list: ${tokens.map((each) => each.text).join(' ')} in: ${expression}`);
    if (token.kind === 'identifier') labels.push(token.text);
  });
  return labels;
}

function labelMatchers(tokens: readonly Token[], expression: string): LabelMatcher[] {
  const matchers: LabelMatcher[] = [];
  for (let at = 0; at < tokens.length; at += 4) {
    const [label, operator, value, separator] = tokens.slice(at, at + 4);
    const wellFormed =
      label?.kind === 'identifier' && MATCH_OPERATORS.has(operator?.text ?? '') && value?.kind === 'string' && (separator === undefined || separator.text === ',');
    if (!wellFormed) throw new Error(`not label matchers: {${tokens.map((token) => token.text).join(' ')}} in: ${expression}`);
    matchers.push({ label: label.text, operator: operator.text as MatchOperator, value: value.value! });
  }
  return matchers;
}
