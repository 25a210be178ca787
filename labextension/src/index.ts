/**
 * jupyter-securellm's JupyterLab front end: status bar item, side panel,
 * "Scan notebook for secrets" with "Redact now", and notifications.
 * All HTTP goes through `requestAPI` (./request).
 */
import {
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { IStatusBar } from '@jupyterlab/statusbar';

import { shieldIcon } from './icons';
import { DEFAULT_BUDGET_WARNING } from './logic';
import { IRecentCall, IScanResult, IStatus } from './model';
import { ISettingsView, watchAlerts, watchDenials, watchSaveFailures, watchSaves } from './notify';
import { RecentCalls, SecureLLMPanel } from './panel';
import { APIError, requestAPI } from './request';
import { Scanner } from './scan';
import { StatusModel } from './status';
import { StatusItem } from './statusbar';

export const PLUGIN_ID = 'jupyter-securellm:plugin';

export namespace CommandIDs {
  export const scan = 'securellm:scan-notebook';
  export const redact = 'securellm:redact-notebook';
  export const openPanel = 'securellm:open-panel';
}

interface ISettings extends ISettingsView {
  refreshInterval: number;
  scanOnOpen: boolean;
  budgetWarning: number;
  docsUrl: string;
}

const DEFAULTS: ISettings = {
  refreshInterval: 30,
  scanOnOpen: false,
  budgetWarning: DEFAULT_BUDGET_WARNING,
  docsUrl: 'https://github.com/jupyter-securellm/jupyter-securellm/blob/main/docs/security.md',
  notifySaves: true,
  notifyDenials: true,
  notifyAlerts: true
};

const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description: 'Broker and Vault status, budget, alerts, scan-and-redact and save notifications for jupyter-securellm.',
  autoStart: true,
  requires: [INotebookTracker],
  optional: [IStatusBar, ICommandPalette, ISettingRegistry],
  activate: (
    app: JupyterFrontEnd,
    tracker: INotebookTracker,
    statusBar: IStatusBar | null,
    palette: ICommandPalette | null,
    settingRegistry: ISettingRegistry | null
  ) => {
    const serverSettings = app.serviceManager.serverSettings;
    const settings: ISettings = { ...DEFAULTS };

    const model = new StatusModel({
      fetch: () => requestAPI<IStatus>('status', {}, serverSettings),
      intervalMs: settings.refreshInterval * 1000
    });

    const fetchRecent = async (): Promise<RecentCalls> => {
      try {
        const answer = await requestAPI<{ calls?: IRecentCall[] } | IRecentCall[]>(
          'audit/recent?limit=10',
          {},
          serverSettings
        );
        const calls = Array.isArray(answer) ? answer : answer?.calls || [];
        return { state: 'ok', calls };
      } catch (err) {
        if (err instanceof APIError && err.status === 404) {
          return { state: 'not-configured' };
        }
        throw err;
      }
    };

    const panel = new SecureLLMPanel({
      model,
      icon: shieldIcon,
      docsUrl: () => settings.docsUrl,
      budgetWarning: () => settings.budgetWarning,
      fetchRecent
    });
    app.shell.add(panel, 'right', { rank: 900 });

    const openPanel = () => {
      app.shell.activateById(panel.id);
      panel.node.focus();
    };

    const scanner = new Scanner((body, redact) =>
      requestAPI<IScanResult>(`scan${redact ? '?redact=true' : ''}`, {
        method: 'POST',
        body: JSON.stringify(body)
      }, serverSettings)
    );

    const current = (): NotebookPanel | null => tracker.currentWidget;

    app.commands.addCommand(CommandIDs.scan, {
      label: 'Scan notebook for secrets',
      caption: 'Scan the open notebook (unsaved edits included) for keys and secrets',
      icon: shieldIcon,
      isEnabled: () => current() !== null,
      execute: async () => {
        const nb = current();
        if (nb) {
          await nb.context.ready;
          return scanner.scanAndNotify(nb);
        }
      }
    });
    app.commands.addCommand(CommandIDs.redact, {
      label: 'Redact secrets in notebook',
      caption: 'Replace every secret in the open notebook by a placeholder, as saving would',
      isEnabled: () => current() !== null,
      execute: async () => {
        const nb = current();
        if (nb) {
          await nb.context.ready;
          return scanner.redactAndNotify(nb);
        }
      }
    });
    app.commands.addCommand(CommandIDs.openPanel, {
      label: 'Show SecureLLM panel',
      caption: 'Status, budget, alerts and recent calls',
      execute: openPanel
    });
    if (palette) {
      for (const command of [CommandIDs.scan, CommandIDs.redact, CommandIDs.openPanel]) {
        palette.addItem({ command, category: 'SecureLLM' });
      }
    }
    tracker.currentChanged.connect(() => app.commands.notifyCommandChanged(CommandIDs.scan));

    if (statusBar) {
      const item = new StatusItem(model, shieldIcon, openPanel, () => settings.budgetWarning);
      statusBar.registerStatusItem('jupyter-securellm:status', {
        item,
        align: 'left',
        rank: 50
      });
    }

    const view = () => settings;
    watchSaves(app.serviceManager.contents, tracker, scanner, view);
    watchSaveFailures(tracker, scanner, view);
    watchDenials(view);
    watchAlerts(model, view);

    tracker.widgetAdded.connect((_sender, nb) => {
      if (!settings.scanOnOpen) {
        return;
      }
      void nb.context.ready.then(() => scanner.scanAndNotify(nb, true));
    });

    const apply = (s: ISettingRegistry.ISettings) => {
      const c = s.composite as Partial<ISettings>;
      Object.assign(settings, DEFAULTS, c);
      model.intervalMs = Math.max(5, Number(settings.refreshInterval) || 30) * 1000;
      model.notify(); // re-render with the new thresholds
    };
    if (settingRegistry) {
      settingRegistry
        .load(PLUGIN_ID)
        .then(s => {
          apply(s);
          s.changed.connect(apply);
        })
        .catch(reason => console.warn('jupyter-securellm: settings not loaded', reason))
        .then(() => model.start());
    } else {
      model.start();
    }
  }
};

export default plugin;
