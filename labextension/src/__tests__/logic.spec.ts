import {
  budgetRows,
  cellsText,
  compactNumber,
  findingsByCell,
  getAtPath,
  headlineBudget,
  health,
  minimalSplice,
  multilineText,
  newAlerts,
  nextDelay,
  parseDenial,
  saveOutcomeMessage,
  scanSummary,
  setAtPath,
  statusBarText,
  tierInfo,
  vaultText
} from '../logic';
import { IFinding, IStatus } from '../model';

const healthy: IStatus = {
  broker: 'ok',
  version: '0.1.0',
  user: 'ada',
  tier: 2,
  vault: { url: 'http://127.0.0.1:8200', reachable: true, sealed: false, auth_method: 'approle' },
  models: ['gpt', 'claude'],
  budget: {
    daily_tokens: { period: 'day', limit: 100000, used: 1234, left: 98766, resets_at: '2026-11-30T00:00:00Z' },
    monthly_usd: { period: 'month', limit: 50, used: 12.5, left: 37.5, resets_at: null }
  },
  alerts: []
};

describe('numbers', () => {
  it('compacts', () => {
    expect(compactNumber(950)).toBe('950');
    expect(compactNumber(1234)).toBe('1.2k');
    expect(compactNumber(100000)).toBe('100k');
    expect(compactNumber(2500000)).toBe('2.5M');
  });
});

describe('budget', () => {
  it('reads every dimension, shortest period first', () => {
    const rows = budgetRows(healthy.budget);
    expect(rows.map(r => r.dimension)).toEqual(['daily_tokens', 'monthly_usd']);
    expect(rows[0].fraction).toBeCloseTo(0.01234);
    expect(rows[0].text).toBe('1.2k tok of 100k tok used, 98.8k tok left');
    expect(rows[1].text).toBe('$12.50 of $50.00 used, $37.50 left');
  });

  it('derives used or left when one is missing', () => {
    const rows = budgetRows({ daily_tokens: { limit: 10, left: 4 } });
    expect(rows[0].used).toBe(6);
    expect(rows[0].period).toBe('daily');
  });

  it('shows today first in the status bar', () => {
    expect(headlineBudget(budgetRows(healthy.budget))?.dimension).toBe('daily_tokens');
    expect(headlineBudget(budgetRows({ rpm: { limit: 60, used: 1 }, monthly_usd: { limit: 5, used: 1 } }))?.dimension).toBe('monthly_usd');
    expect(headlineBudget(budgetRows(null))).toBeNull();
  });

  it('ignores junk', () => {
    expect(budgetRows({ x: null as any, y: 'no' as any })).toEqual([]);
    expect(budgetRows(undefined)).toEqual([]);
  });
});

describe('health and the status bar', () => {
  it('is ok when everything is', () => {
    expect(health(healthy, null)).toEqual({ level: 'ok', reasons: [] });
    const s = statusBarText(healthy, null);
    expect(s.level).toBe('ok');
    expect(s.text).toBe('SecureLLM: gpt +1 · 1.2k tok/100k tok');
    expect(s.title).toContain('Vault: ok');
    expect(s.title).toContain('Tokens today: 1.2k tok of 100k tok used');
  });

  it('warns when Vault is unreachable or sealed', () => {
    const down = { ...healthy, vault: { ...healthy.vault, reachable: false, sealed: null } };
    expect(health(down, null)).toEqual({ level: 'warn', reasons: ['Vault unreachable'] });
    expect(statusBarText(down, null).text).toBe('SecureLLM ⚠ Vault unreachable');
    const sealed = { ...healthy, vault: { ...healthy.vault, sealed: true } };
    expect(health(sealed, null).reasons).toEqual(['Vault sealed']);
  });

  it('warns on alerts and nearly spent budgets', () => {
    const s: IStatus = {
      ...healthy,
      alerts: [{ id: 'a1', kind: 'spike', severity: 'warning', message: 'token spike' }],
      budget: { daily_tokens: { limit: 100, used: 95, left: 5 }, monthly_usd: { limit: 10, used: 10, left: 0 } }
    };
    expect(health(s, null).reasons).toEqual([
      'alert: token spike',
      'budget nearly spent: tokens today 95%',
      'budget spent: spend this month'
    ]);
    expect(health(s, null, 0.99).reasons).not.toContain('budget nearly spent: tokens today 95%');
  });

  it('is an error when the server does not answer', () => {
    const s = statusBarText(null, 'HTTP 503');
    expect(s.level).toBe('error');
    expect(s.text).toBe('SecureLLM: offline');
    expect(s.title).toContain('server unreachable (HTTP 503)');
  });

  it('says "not configured" for fields not served', () => {
    const bare: IStatus = { broker: 'ok', models: [] };
    expect(vaultText(bare)).toBe('not configured');
    const s = statusBarText(bare, null);
    expect(s.text).toBe('SecureLLM: no models');
    expect(s.title).toContain('Budget: not configured');
    expect(tierInfo(undefined)).toBeNull();
    expect(tierInfo(3)?.label).toBe('Tier 3');
  });
});

describe('denials', () => {
  it('recognises the kernel error line of a denied call', () => {
    const d = parseDenial('SecureLLMError', 'Model gpt is not allowed for you', [
      '\u001b[0;31mSecureLLM (policy_denied): Model gpt is not allowed for you\u001b[0m'
    ]);
    expect(d).toEqual({ type: 'policy_denied', title: 'Call denied by policy', message: 'Model gpt is not allowed for you' });
    expect(parseDenial('SecureLLMError', 'x', ['SecureLLM (budget_exhausted): daily tokens spent'])?.title).toBe(
      'Call denied: budget exhausted'
    );
  });

  it('ignores other errors', () => {
    expect(parseDenial('ZeroDivisionError', 'division by zero', ['Traceback ...'])).toBeNull();
    expect(parseDenial('SecureLLMError', 'x', ['SecureLLM (provider_error): upstream 500'])).toBeNull();
  });
});

describe('alerts', () => {
  it('reports each alert once', () => {
    const seen = new Set<string>();
    expect(newAlerts(seen, [{ id: 'a' }]).map(a => a.id)).toEqual(['a']);
    expect(newAlerts(seen, [{ id: 'a' }, { id: 'b' }]).map(a => a.id)).toEqual(['b']);
    expect(newAlerts(seen, undefined)).toEqual([]);
  });
});

const finding = (cell: number | null, rule = 'openai-api-key', cell_id: string | null = null): IFinding => ({
  rule_id: rule,
  fingerprint: 'f1',
  cell,
  cell_id,
  field: 'source',
  line: 1,
  column: 1
});

describe('scan and save messages', () => {
  it('counts cells the way people do', () => {
    expect(cellsText([0])).toBe('cell 1');
    expect(cellsText([3, 0, 3])).toBe('cells 1 and 4');
    expect(cellsText([0, 1, 2])).toBe('cells 1, 2 and 3');
    expect(cellsText([null])).toBe('notebook metadata');
  });

  it('summarises a scan without values', () => {
    expect(scanSummary('a.ipynb', [])).toBe('No secrets found in a.ipynb.');
    expect(scanSummary('a.ipynb', [finding(1), finding(4, 'github-token')])).toBe(
      '2 secrets found in a.ipynb, cells 2 and 5 (github-token, openai-api-key).'
    );
  });

  it('says what a save did', () => {
    const m = saveOutcomeMessage('a.ipynb', { action: 'redacted', findings: 2, cells: [1], rules: ['openai-api-key'] });
    expect(m?.level).toBe('warning');
    expect(m?.text).toBe('Saved a.ipynb: 2 secrets redacted on disk, cell 2 (openai-api-key). The open notebook still shows them.');
    expect(m!.text.length).toBeLessThanOrEqual(140);
    expect(saveOutcomeMessage('a.ipynb', { action: 'refused', findings: 1, cells: [0] })?.level).toBe('error');
    expect(saveOutcomeMessage('a.ipynb', { action: 'warned', findings: 1 })?.text).toContain('warn mode');
    expect(saveOutcomeMessage('a.ipynb', { action: 'redacted', findings: 0 })).toBeNull();
  });

  it('groups findings by cell id, else by index', () => {
    const map = findingsByCell([finding(1, 'a', 'c1'), finding(1, 'b', 'c1'), finding(2), finding(null)]);
    expect(Array.from(map.keys())).toEqual(['id:c1', 'index:2']);
    expect(map.get('id:c1')?.length).toBe(2);
  });
});

describe('editing', () => {
  it('splices only what changed', () => {
    const before = 'a = 1\nkey = "sk-abc"\nb = 2';
    const after = 'a = 1\nkey = "[REDACTED:openai-api-key]"\nb = 2';
    const s = minimalSplice(before, after)!;
    expect(before.slice(0, s.start) + s.text + before.slice(s.end)).toBe(after);
    expect(s.start).toBe('a = 1\nkey = "'.length);
    expect(s.end).toBe(before.length - '"\nb = 2'.length);
    expect(minimalSplice('same', 'same')).toBeNull();
  });

  it('handles repeated characters at the edges', () => {
    const s = minimalSplice('aaaa', 'aXa')!;
    expect('aaaa'.slice(0, s.start) + s.text + 'aaaa'.slice(s.end)).toBe('aXa');
  });

  it('reads and writes nested fields without touching the original', () => {
    const out = { output_type: 'display_data', data: { 'text/html': ['<b>', 'x</b>'] } };
    expect(multilineText(getAtPath(out, ['data', 'text/html']))).toBe('<b>x</b>');
    const next = setAtPath(out, ['data', 'text/html'], '<b>[R]</b>');
    expect(next.data['text/html']).toBe('<b>[R]</b>');
    expect(out.data['text/html']).toEqual(['<b>', 'x</b>']);
    expect(() => setAtPath(out, ['nope', 'x'], 1)).toThrow('no field nope');
    expect(getAtPath(out, ['data', 'missing'])).toBeUndefined();
    expect(multilineText(42)).toBeNull();
  });
});

describe('polling', () => {
  it('backs off after failures, up to the cap', () => {
    expect(nextDelay(30000, 0, 300000)).toBe(30000);
    expect(nextDelay(30000, 1, 300000)).toBe(60000);
    expect(nextDelay(30000, 3, 300000)).toBe(240000);
    expect(nextDelay(30000, 50, 300000)).toBe(300000);
  });
});
