/**
 * The front end's decisions, as pure functions (no DOM, no JupyterLab), so
 * jest can test them: what the status bar says and when it warns, how budgets
 * read, which kernel errors are denials, what a save notification says, and
 * how a scrubbed field is spliced into the open document.
 */
import {
  IAlert,
  IBudgetDimension,
  IFinding,
  ISaveOutcome,
  IStatus
} from './model';

export const NOT_CONFIGURED = 'not configured';

/** Budget fraction at which the status bar turns to its warning state. */
export const DEFAULT_BUDGET_WARNING = 0.9;

// ------------------------------------------------------------------ numbers

/** 950 -> "950", 1234 -> "1.2k", 100000 -> "100k", 2500000 -> "2.5M". */
export function compactNumber(n: number): string {
  const abs = Math.abs(n);
  const fmt = (v: number, suffix: string) => {
    const s = v >= 100 ? v.toFixed(0) : v.toFixed(1).replace(/\.0$/, '');
    return s + suffix;
  };
  if (abs >= 1e9) {
    return fmt(n / 1e9, 'G');
  }
  if (abs >= 1e6) {
    return fmt(n / 1e6, 'M');
  }
  if (abs >= 1e3) {
    return fmt(n / 1e3, 'k');
  }
  return Number.isInteger(n) ? String(n) : n.toFixed(2);
}

export type Unit = 'usd' | 'tokens' | 'requests' | 'other';

/** The unit of a budget dimension, from its name (`daily_tokens`, `monthly_usd`, `rpm`). */
export function unitOf(dimension: string): Unit {
  const d = dimension.toLowerCase();
  if (d.includes('usd') || d.includes('cost') || d.includes('dollar')) {
    return 'usd';
  }
  if (d.includes('token')) {
    return 'tokens';
  }
  if (d === 'rpm' || d.includes('request') || d.includes('call')) {
    return 'requests';
  }
  return 'other';
}

export function formatAmount(dimension: string, n: number | null | undefined): string {
  if (n === null || n === undefined || Number.isNaN(n)) {
    return '–';
  }
  switch (unitOf(dimension)) {
    case 'usd':
      return '$' + (Math.abs(n) >= 1000 ? compactNumber(n) : n.toFixed(2));
    case 'tokens':
      return compactNumber(n) + ' tok';
    case 'requests':
      return compactNumber(n) + ' req';
    default:
      return compactNumber(n);
  }
}

// ------------------------------------------------------------------ budget

export interface IBudgetRow {
  dimension: string;
  label: string;
  period: string;
  used: number | null;
  limit: number | null;
  left: number | null;
  /** used / limit in [0, 1], or null when there is no limit. */
  fraction: number | null;
  text: string;
  resetsAt: string | null;
}

const PERIOD_ORDER = ['minute', 'hour', 'day', 'daily', 'week', 'month'];

function periodOf(dimension: string, d: IBudgetDimension): string {
  if (d.period) {
    return d.period;
  }
  const m = /^(daily|monthly|hourly|weekly)_/.exec(dimension);
  if (m) {
    return m[1];
  }
  return dimension === 'rpm' ? 'minute' : '';
}

function isDaily(period: string): boolean {
  return period === 'day' || period === 'daily';
}

const LABELS: { [k: string]: string } = {
  daily_tokens: 'Tokens today',
  monthly_tokens: 'Tokens this month',
  daily_usd: 'Spend today',
  monthly_usd: 'Spend this month',
  rpm: 'Requests per minute'
};

/** One row per budget dimension, shortest period first. */
export function budgetRows(
  budget: IStatus['budget'] | undefined
): IBudgetRow[] {
  if (!budget || typeof budget !== 'object') {
    return [];
  }
  const rows: IBudgetRow[] = [];
  for (const [dimension, d] of Object.entries(budget)) {
    if (!d || typeof d !== 'object') {
      continue;
    }
    const num = (v: unknown) =>
      typeof v === 'number' && Number.isFinite(v) ? v : null;
    const limit = num(d.limit);
    let used = num(d.used);
    let left = num(d.left);
    if (used === null && limit !== null && left !== null) {
      used = limit - left;
    }
    if (left === null && limit !== null && used !== null) {
      left = Math.max(0, limit - used);
    }
    const fraction =
      limit !== null && limit > 0 && used !== null
        ? Math.min(1, Math.max(0, used / limit))
        : null;
    const period = periodOf(dimension, d);
    const text =
      limit === null
        ? `${formatAmount(dimension, used)} used, no limit`
        : `${formatAmount(dimension, used)} of ${formatAmount(dimension, limit)} used, ${formatAmount(dimension, left)} left`;
    rows.push({
      dimension,
      label: LABELS[dimension] || dimension.replace(/_/g, ' '),
      period,
      used,
      limit,
      left,
      fraction,
      text,
      resetsAt: typeof d.resets_at === 'string' ? d.resets_at : null
    });
  }
  const rank = (r: IBudgetRow) => {
    const i = PERIOD_ORDER.indexOf(r.period);
    return i < 0 ? PERIOD_ORDER.length : i;
  };
  rows.sort((a, b) => rank(a) - rank(b) || a.dimension.localeCompare(b.dimension));
  return rows;
}

/** The row the status bar shows: today's tokens, else today's spend, else the first limited one. */
export function headlineBudget(rows: IBudgetRow[]): IBudgetRow | null {
  const limited = rows.filter(r => r.limit !== null);
  const pick =
    limited.find(r => isDaily(r.period) && unitOf(r.dimension) === 'tokens') ||
    limited.find(r => isDaily(r.period) && unitOf(r.dimension) === 'usd') ||
    limited.find(r => isDaily(r.period)) ||
    limited.find(r => unitOf(r.dimension) !== 'requests') ||
    limited[0];
  return pick || null;
}

// ------------------------------------------------------------------ health

export type Level = 'ok' | 'warn' | 'error';

export interface IHealth {
  level: Level;
  /** Short reasons for the warning state, most important first. */
  reasons: string[];
}

/**
 * Whether the status bar warns, and why: server unreachable, Vault
 * unreachable or sealed, an active alert, a budget nearly or fully spent.
 */
export function health(
  status: IStatus | null,
  error: string | null,
  budgetWarning: number = DEFAULT_BUDGET_WARNING
): IHealth {
  if (error || !status) {
    return {
      level: 'error',
      reasons: [error ? `server unreachable (${error})` : 'no status yet']
    };
  }
  const reasons: string[] = [];
  if (status.broker && status.broker !== 'ok') {
    reasons.push(`broker ${status.broker}`);
  }
  const v = status.vault;
  if (v) {
    if (v.sealed === true) {
      reasons.push('Vault sealed');
    } else if (v.reachable === false) {
      reasons.push('Vault unreachable');
    }
  }
  const alerts = status.alerts || [];
  if (alerts.length === 1) {
    reasons.push(`alert: ${alerts[0].message || alerts[0].kind || alerts[0].id}`);
  } else if (alerts.length > 1) {
    reasons.push(`${alerts.length} active alerts`);
  }
  for (const row of budgetRows(status.budget)) {
    if (row.limit === null || row.fraction === null) {
      continue;
    }
    if (row.left !== null && row.left <= 0) {
      reasons.push(`budget spent: ${row.label.toLowerCase()}`);
    } else if (row.fraction >= budgetWarning) {
      reasons.push(
        `budget nearly spent: ${row.label.toLowerCase()} ${Math.round(row.fraction * 100)}%`
      );
    }
  }
  return { level: reasons.length ? 'warn' : 'ok', reasons };
}

export interface IStatusText {
  level: Level;
  /** What the status bar shows. */
  text: string;
  /** Tooltip and accessible label: the whole picture in one sentence per item. */
  title: string;
}

function modelsText(models: string[] | undefined): string {
  if (!models || models.length === 0) {
    return 'no models';
  }
  return models.length === 1 ? models[0] : `${models[0]} +${models.length - 1}`;
}

export function vaultText(status: IStatus | null): string {
  const v = status && status.vault;
  if (!v || (v.reachable === undefined && !v.url)) {
    return NOT_CONFIGURED;
  }
  if (v.sealed === true) {
    return 'sealed';
  }
  if (v.reachable === false) {
    return 'unreachable';
  }
  return v.reachable ? 'ok' : NOT_CONFIGURED;
}

export function statusBarText(
  status: IStatus | null,
  error: string | null,
  budgetWarning: number = DEFAULT_BUDGET_WARNING
): IStatusText {
  const h = health(status, error, budgetWarning);
  if (h.level === 'error' || !status) {
    return {
      level: 'error',
      text: 'SecureLLM: offline',
      title: `SecureLLM: ${h.reasons.join('; ')}. Click for details.`
    };
  }
  const headline = headlineBudget(budgetRows(status.budget));
  const budget = headline
    ? `${formatAmount(headline.dimension, headline.used)}/${formatAmount(headline.dimension, headline.limit)}`
    : '';
  const parts = [modelsText(status.models)];
  if (budget) {
    parts.push(budget);
  }
  let text = `SecureLLM: ${parts.join(' · ')}`;
  if (h.level === 'warn') {
    text = `SecureLLM ⚠ ${h.reasons[0]}`;
  }
  const title = [
    `Broker: ${status.broker || NOT_CONFIGURED}`,
    `Vault: ${vaultText(status)}`,
    `Models: ${status.models && status.models.length ? status.models.join(', ') : 'none'}`,
    headline
      ? `${headline.label}: ${headline.text}`
      : `Budget: ${NOT_CONFIGURED}`,
    h.reasons.length ? `Warning: ${h.reasons.join('; ')}` : ''
  ]
    .filter(Boolean)
    .join('. ');
  return { level: h.level, text, title: `${title}. Click for details.` };
}

// ------------------------------------------------------------------ tiers

export interface ITierInfo {
  label: string;
  explanation: string;
}

const TIERS: { [tier: number]: string } = {
  1: 'Accidental exposure: keys are redacted from output and scrubbed from saved notebooks and commits.',
  2: 'Code in your kernel: the provider key stays in the Jupyter server; your kernel never holds it.',
  3: 'Separate identity: the broker runs as its own service user; your kernel has no path to the key.'
};

export function tierInfo(tier: number | null | undefined): ITierInfo | null {
  if (typeof tier !== 'number' || !TIERS[tier]) {
    return null;
  }
  return { label: `Tier ${tier}`, explanation: TIERS[tier] };
}

// ------------------------------------------------------------------ denials and alerts

/** Error types of `%%llm` calls the user is told about in a notification. */
export const DENIAL_TYPES: { [type: string]: string } = {
  policy_denied: 'Call denied by policy',
  budget_exhausted: 'Call denied: budget exhausted',
  rate_limited: 'Call denied: rate limit reached',
  dlp_blocked: 'Call blocked: the prompt holds a secret',
  egress_denied: 'Call denied: provider host not allowed'
};

export interface IDenial {
  type: string;
  title: string;
  message: string;
}

// The kernel's SecureLLMError prints one line: "SecureLLM (<type>): <message>".
const DENIAL_LINE = /SecureLLM \(([a-z_]+)\):\s*(.*)/;
// eslint-disable-next-line no-control-regex
const ANSI = /\u001b\[[0-9;]*m/g;

/** A denial from a failed cell's error (ename, evalue, traceback), or null. */
export function parseDenial(
  ename: string | undefined,
  evalue: string | undefined,
  traceback: string[] | undefined
): IDenial | null {
  for (const raw of traceback || []) {
    const m = DENIAL_LINE.exec(String(raw).replace(ANSI, ''));
    if (m && DENIAL_TYPES[m[1]]) {
      return { type: m[1], title: DENIAL_TYPES[m[1]], message: m[2].trim() };
    }
  }
  if (ename === 'SecureLLMError') {
    const m = DENIAL_LINE.exec(evalue || '');
    if (m && DENIAL_TYPES[m[1]]) {
      return { type: m[1], title: DENIAL_TYPES[m[1]], message: m[2].trim() };
    }
  }
  return null;
}

/** Alerts not seen before (their ids are added to `seen`). */
export function newAlerts(seen: Set<string>, alerts: IAlert[] | undefined): IAlert[] {
  const fresh: IAlert[] = [];
  for (const a of alerts || []) {
    const key = String(a.id ?? `${a.kind}:${a.since}`);
    if (!seen.has(key)) {
      seen.add(key);
      fresh.push(a);
    }
  }
  return fresh;
}

// ------------------------------------------------------------------ scan and save

/** "cell 3" / "cells 1, 4 and 7" (1-based, as people count cells). */
export function cellsText(cells: (number | null | undefined)[]): string {
  const nums = Array.from(
    new Set(cells.filter((c): c is number => typeof c === 'number'))
  )
    .sort((a, b) => a - b)
    .map(c => String(c + 1));
  if (nums.length === 0) {
    return 'notebook metadata';
  }
  if (nums.length === 1) {
    return `cell ${nums[0]}`;
  }
  const shown = nums.slice(0, 8);
  const more = nums.length - shown.length;
  const last = more > 0 ? `${more} more` : shown.pop();
  return `cells ${shown.join(', ')} and ${last}`;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

function rulesText(rules: string[]): string {
  const unique = Array.from(new Set(rules)).sort();
  return unique.length ? ` (${unique.join(', ')})` : '';
}

export function scanSummary(name: string, findings: IFinding[]): string {
  if (findings.length === 0) {
    return `No secrets found in ${name}.`;
  }
  return (
    `${plural(findings.length, 'secret')} found in ${name}, ` +
    `${cellsText(findings.map(f => f.cell))}${rulesText(findings.map(f => f.rule_id))}.`
  );
}

export interface IMessage {
  level: 'info' | 'warning' | 'error';
  text: string;
}

/** What to tell the user after a save the hook changed, warned about or refused (short: a toast shows ~140 characters). */
export function saveOutcomeMessage(name: string, o: ISaveOutcome): IMessage | null {
  if (!o || typeof o.findings !== 'number' || o.findings <= 0) {
    return null;
  }
  const where = `${cellsText(o.cells || [])}${rulesText(o.rules || [])}`;
  const n = plural(o.findings, 'secret');
  switch (o.action) {
    case 'redacted':
      return {
        level: 'warning',
        text: `Saved ${name}: ${n} redacted on disk, ${where}. The open notebook still shows ${o.findings === 1 ? 'it' : 'them'}.`
      };
    case 'warned':
      return {
        level: 'warning',
        text: `Saved ${name} with ${n} in it, ${where} (warn mode).`
      };
    case 'refused':
      return {
        level: 'error',
        text: `Save refused: ${name} holds ${n}, ${where}. Redact, then save again.`
      };
    default:
      return null;
  }
}

/** Findings grouped by cell (by cell id when the notebook has ids, else by index). */
export function findingsByCell(findings: IFinding[]): Map<string, IFinding[]> {
  const map = new Map<string, IFinding[]>();
  for (const f of findings) {
    if (f.cell === null || f.cell === undefined) {
      continue;
    }
    const key = f.cell_id ? `id:${f.cell_id}` : `index:${f.cell}`;
    const list = map.get(key) || [];
    list.push(f);
    map.set(key, list);
  }
  return map;
}

/** "openai-api-key in source line 3, column 9" (never the value). */
export function findingText(f: IFinding): string {
  return `${f.rule_id} in ${f.field} line ${f.line}, column ${f.column}`;
}

// ------------------------------------------------------------------ editing

export interface ISplice {
  start: number;
  end: number;
  text: string;
}

/**
 * The smallest single replacement turning `before` into `after` (common prefix
 * and suffix kept), so "Redact now" touches only the secret's characters and
 * leaves the rest of the cell, and the cursor, where they were.
 */
export function minimalSplice(before: string, after: string): ISplice | null {
  if (before === after) {
    return null;
  }
  let start = 0;
  const max = Math.min(before.length, after.length);
  while (start < max && before.charCodeAt(start) === after.charCodeAt(start)) {
    start++;
  }
  let endB = before.length;
  let endA = after.length;
  while (
    endB > start &&
    endA > start &&
    before.charCodeAt(endB - 1) === after.charCodeAt(endA - 1)
  ) {
    endB--;
    endA--;
  }
  return { start, end: endB, text: after.slice(start, endA) };
}

/** A multiline string as nbformat stores it (string or array of strings), joined. */
export function multilineText(value: unknown): string | null {
  if (typeof value === 'string') {
    return value;
  }
  if (Array.isArray(value) && value.every(v => typeof v === 'string')) {
    return value.join('');
  }
  return null;
}

export function getAtPath(obj: unknown, path: (string | number)[]): unknown {
  let node: any = obj;
  for (const part of path) {
    if (node === null || typeof node !== 'object' || !(part in node)) {
      return undefined;
    }
    node = node[part];
  }
  return node;
}

/** A deep copy of `obj` with the value at `path` replaced (the path must exist). */
export function setAtPath<T>(obj: T, path: (string | number)[], value: unknown): T {
  if (path.length === 0) {
    return value as T;
  }
  const copy: any = Array.isArray(obj) ? [...(obj as any)] : { ...(obj as any) };
  const [head, ...rest] = path;
  if (!(head in copy)) {
    throw new Error(`no field ${String(head)}`);
  }
  copy[head] = setAtPath(copy[head], rest, value);
  return copy;
}

// ------------------------------------------------------------------ polling

/**
 * Delay before the next status refresh: the configured interval while the
 * server answers, doubling after each failure up to `max`.
 */
export function nextDelay(intervalMs: number, failures: number, maxMs: number): number {
  if (failures <= 0) {
    return intervalMs;
  }
  return Math.min(maxMs, intervalMs * Math.pow(2, Math.min(failures, 20)));
}
