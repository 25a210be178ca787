/**
 * Notifications (JupyterLab 4's `Notification` API) for what happens out of
 * sight: a save the hook scrubbed or refused, a `%%llm` call denied by policy
 * or budget, an alert that starts.
 */
import { Notification } from '@jupyterlab/apputils';
import { Contents } from '@jupyterlab/services';
import { INotebookTracker, NotebookActions, NotebookPanel } from '@jupyterlab/notebook';
import { DocumentRegistry } from '@jupyterlab/docregistry';

import { newAlerts, parseDenial, saveOutcomeMessage } from './logic';
import { ISaveOutcome } from './model';
import { Scanner } from './scan';
import { StatusModel } from './status';

export interface ISettingsView {
  notifySaves: boolean;
  notifyDenials: boolean;
  notifyAlerts: boolean;
}

function baseName(path: string): string {
  return path.split('/').pop() || path;
}

function panelFor(tracker: INotebookTracker, path: string): NotebookPanel | undefined {
  return tracker.find(p => p.context.path === path) || undefined;
}

function redactAction(scanner: Scanner, panel: NotebookPanel | undefined): Notification.IAction[] {
  if (!panel) {
    return [];
  }
  return [
    {
      label: 'Redact now',
      caption: 'Replace the secrets in the open notebook with placeholders',
      displayType: 'accent',
      callback: () => void scanner.redactAndNotify(panel)
    }
  ];
}

/** A save the hook redacted or warned about: the contents API returns `model.securellm`. */
export function watchSaves(
  contents: Contents.IManager,
  tracker: INotebookTracker,
  scanner: Scanner,
  settings: () => ISettingsView
): void {
  contents.fileChanged.connect((_sender, change) => {
    if (change.type !== 'save' || !change.newValue || !settings().notifySaves) {
      return;
    }
    const model = change.newValue as Partial<Contents.IModel> & { securellm?: ISaveOutcome };
    const outcome = model.securellm;
    const path = model.path || '';
    const message = outcome && saveOutcomeMessage(baseName(path), outcome);
    if (!message) {
      return;
    }
    const panel = panelFor(tracker, path);
    if (panel && outcome && outcome.action === 'redacted') {
      void scanner.scan(panel).catch(() => undefined); // mark the cells still holding the values
    }
    Notification.emit(message.text, message.level, {
      autoClose: false,
      actions: outcome && outcome.action === 'redacted' ? redactAction(scanner, panel) : []
    });
  });
}

/**
 * A save that failed: in block mode the hook refuses a notebook holding a
 * secret. The notebook is scanned to say where, and the cells are marked.
 */
export function watchSaveFailures(
  tracker: INotebookTracker,
  scanner: Scanner,
  settings: () => ISettingsView
): void {
  tracker.widgetAdded.connect((_sender, panel) => {
    panel.context.saveState.connect(
      (_ctx: DocumentRegistry.IContext<any>, state: DocumentRegistry.SaveState) => {
        if (state !== 'failed' || !settings().notifySaves) {
          return;
        }
        scanner
          .scan(panel)
          .then(result => {
            if (!result.findings.length || result.save_hook_mode !== 'block') {
              return;
            }
            const outcome: ISaveOutcome = {
              action: 'refused',
              findings: result.findings.length,
              cells: result.findings.map(f => f.cell).filter((c): c is number => typeof c === 'number'),
              rules: result.findings.map(f => f.rule_id)
            };
            const message = saveOutcomeMessage(baseName(panel.context.path), outcome);
            if (message) {
              Notification.emit(message.text, message.level, {
                autoClose: false,
                actions: redactAction(scanner, panel)
              });
            }
          })
          .catch(() => undefined);
      }
    );
  });
}

/** A `%%llm` call denied by policy, budget, rate limit or DLP (the kernel's SecureLLMError). */
export function watchDenials(settings: () => ISettingsView): void {
  NotebookActions.executed.connect((_sender, args) => {
    if (args.success || !args.error || !settings().notifyDenials) {
      return;
    }
    const e = args.error;
    const denial = parseDenial(e.errorName, e.errorValue, e.traceback);
    if (denial) {
      Notification.error(`${denial.title}: ${denial.message}`, { autoClose: 10000 });
    }
  });
}

/** An alert that starts (a new id in `status.alerts`). */
export function watchAlerts(model: StatusModel, settings: () => ISettingsView): void {
  const seen = new Set<string>();
  model.changed.connect(() => {
    const fresh = newAlerts(seen, model.status?.alerts);
    if (!settings().notifyAlerts) {
      return;
    }
    for (const a of fresh) {
      const text = `SecureLLM alert (${a.severity || 'warning'}): ${a.message || a.kind || a.id}`;
      if (a.severity === 'critical' || a.severity === 'error') {
        Notification.error(text, { autoClose: false });
      } else {
        Notification.warning(text, { autoClose: false });
      }
    }
  });
}
