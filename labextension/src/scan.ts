/**
 * "Scan notebook for secrets": send the open notebook (unsaved edits included)
 * to `POST /jupyter-securellm/v1/scan`, mark the affected cells and outputs,
 * and offer "Redact now", which replaces the values in the open document the
 * way the save hook would, leaving every other edit alone.
 */
import { Notification } from '@jupyterlab/apputils';
import { Cell, CodeCell, ICellModel } from '@jupyterlab/cells';
import { NotebookPanel } from '@jupyterlab/notebook';

import {
  findingsByCell,
  findingText,
  getAtPath,
  minimalSplice,
  multilineText,
  scanSummary,
  setAtPath
} from './logic';
import { IFinding, IRedaction, IScanResult } from './model';

export const FLAGGED_CELL = 'jp-securellm-flagged';
export const FLAGGED_OUTPUT = 'jp-securellm-flagged-output';
const BADGE = 'jp-securellm-badge';

export type ScanRequest = (body: unknown, redact: boolean) => Promise<IScanResult>;

export interface IRedactReport {
  redacted: number;
  skipped: number;
  remaining: number;
}

export class Scanner {
  constructor(private _request: ScanRequest) {}

  /** Scan the notebook as it is in the editor; marks cells and returns the findings. */
  async scan(panel: NotebookPanel): Promise<IScanResult> {
    const result = await this._request(body(panel), false);
    mark(panel, result.findings);
    return result;
  }

  /** Scan, tell the user what was found, and offer "Redact now". */
  async scanAndNotify(panel: NotebookPanel, quietWhenClean = false): Promise<IScanResult | null> {
    let result: IScanResult;
    try {
      result = await this.scan(panel);
    } catch (err) {
      Notification.error(`Scan failed: ${(err as Error).message}`, { autoClose: 8000 });
      return null;
    }
    const name = panel.context.localPath.split('/').pop() || panel.context.path;
    const text = scanSummary(name, result.findings);
    if (result.findings.length) {
      Notification.warning(text, {
        autoClose: false,
        actions: [
          {
            label: 'Redact now',
            caption: 'Replace the secrets in the open notebook with placeholders',
            displayType: 'accent',
            callback: () => void this.redactAndNotify(panel)
          }
        ]
      });
    } else if (!quietWhenClean) {
      Notification.success(text, { autoClose: 4000 });
    }
    return result;
  }

  /**
   * Replace every secret in the open notebook by its placeholder, as the save
   * hook would. Fields the user changed while the server was scanning are not
   * overwritten: they are scanned again (up to three rounds).
   */
  async redact(panel: NotebookPanel): Promise<IRedactReport> {
    let redacted = 0;
    let skipped = 0;
    for (let round = 0; round < 3; round++) {
      const sent = body(panel);
      const sentCells = (sent.content as any).cells as any[];
      const result = await this._request(sent, true);
      let stale = 0;
      for (const r of result.redactions || []) {
        const outcome = applyRedaction(panel, sentCells, r);
        if (outcome === 'applied') {
          redacted++;
        } else if (outcome === 'stale') {
          stale++;
        } else {
          skipped++;
        }
      }
      skipped += result.not_redactable || 0;
      if (!stale) {
        break;
      }
    }
    const check = await this.scan(panel);
    return { redacted, skipped, remaining: check.findings.length };
  }

  async redactAndNotify(panel: NotebookPanel): Promise<IRedactReport | null> {
    let report: IRedactReport;
    try {
      report = await this.redact(panel);
    } catch (err) {
      Notification.error(`Redact failed: ${(err as Error).message}`, { autoClose: 8000 });
      return null;
    }
    if (report.remaining === 0) {
      Notification.success(
        `Redacted ${report.redacted} field${report.redacted === 1 ? '' : 's'} in the open notebook; save to write it.`,
        { autoClose: 6000 }
      );
    } else {
      Notification.warning(
        `${report.remaining} secret(s) could not be redacted in the open notebook (for example in a JSON key or an attachment); saving scrubs them on disk.`,
        { autoClose: false }
      );
    }
    return report;
  }
}

function body(panel: NotebookPanel): { type: string; path: string; content: unknown } {
  const model = panel.content.model;
  if (!model) {
    throw new Error('the notebook is not loaded yet');
  }
  return { type: 'notebook', path: panel.context.path, content: model.toJSON() };
}

/** Remove every mark this extension put on the notebook. */
export function clearMarks(panel: NotebookPanel): void {
  for (const cell of panel.content.widgets) {
    cell.removeClass(FLAGGED_CELL);
    cell.node.querySelectorAll(`.${BADGE}`).forEach(n => n.remove());
    cell.node.querySelectorAll(`.${FLAGGED_OUTPUT}`).forEach(n => n.classList.remove(FLAGGED_OUTPUT));
  }
}

function cellFor(panel: NotebookPanel, key: string): Cell | undefined {
  const cells = panel.content.widgets;
  if (key.startsWith('id:')) {
    const id = key.slice(3);
    return cells.find(c => c.model.id === id);
  }
  return cells[Number(key.slice(6))];
}

/** Mark affected cells (class and a gutter badge) and outputs (class). */
export function mark(panel: NotebookPanel, findings: IFinding[]): void {
  clearMarks(panel);
  for (const [key, list] of findingsByCell(findings)) {
    const cell = cellFor(panel, key);
    if (!cell) {
      continue;
    }
    cell.addClass(FLAGGED_CELL);
    const label = `${list.length} secret${list.length === 1 ? '' : 's'} in this cell: ${list.map(findingText).join('; ')}`;
    const badge = document.createElement('div');
    badge.className = BADGE;
    badge.setAttribute('role', 'img');
    badge.setAttribute('aria-label', label);
    badge.title = label;
    badge.textContent = `⚠ ${list.length}`;
    cell.node.appendChild(badge);
    if (cell instanceof CodeCell) {
      for (const f of list) {
        if (typeof f.output === 'number') {
          const w = cell.outputArea.widgets[f.output];
          if (w) {
            w.addClass(FLAGGED_OUTPUT);
          }
        }
      }
    }
  }
}

type Applied = 'applied' | 'stale' | 'unsupported';

/** Apply one scrubbed field to the open notebook, unless it changed since it was sent. */
function applyRedaction(panel: NotebookPanel, sentCells: any[], r: IRedaction): Applied {
  const cells = panel.content.widgets;
  const cell = r.cell_id ? cells.find(c => c.model.id === r.cell_id) : cells[r.cell];
  const sentCell = r.cell_id ? sentCells.find(c => c.id === r.cell_id) : sentCells[r.cell];
  if (!cell || !sentCell) {
    return 'stale';
  }
  const model = cell.model;
  const before = multilineText(getAtPath(sentCell, r.path));
  const current = multilineText(getAtPath(model.toJSON(), r.path));
  if (before === null || current === null) {
    return 'unsupported';
  }
  if (current !== before) {
    return 'stale';
  }
  const [head] = r.path;
  if (head === 'source' && r.path.length === 1) {
    const splice = minimalSplice(current, r.value);
    if (splice) {
      model.sharedModel.updateSource(splice.start, splice.end, splice.text);
    }
    return 'applied';
  }
  if (head === 'outputs' && typeof r.path[1] === 'number' && model.type === 'code') {
    const outputs = (model as any).outputs;
    const index = r.path[1];
    const out = outputs.get(index);
    if (!out) {
      return 'stale';
    }
    outputs.set(index, setAtPath(out.toJSON(), r.path.slice(2), r.value));
    return 'applied';
  }
  if (head === 'metadata' && typeof r.path[1] === 'string') {
    const key = r.path[1];
    const meta = (model as ICellModel).getMetadata(key);
    model.setMetadata(key, setAtPath(meta, r.path.slice(2), r.value));
    return 'applied';
  }
  return 'unsupported';
}
