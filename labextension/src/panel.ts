/**
 * The side panel: connection state, the models this user may call, budget per
 * dimension with a bar, active alerts, this user's recent calls (when the audit
 * log is on; never prompts) and the deployment's trust tier.
 */
import { LabIcon } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';

import { h, timeText } from './dom';
import {
  budgetRows,
  health,
  NOT_CONFIGURED,
  tierInfo,
  vaultText
} from './logic';
import { IRecentCall } from './model';
import { StatusModel } from './status';

/** Recent calls, or why there are none to show. */
export type RecentCalls =
  | { state: 'ok'; calls: IRecentCall[] }
  | { state: 'not-configured' }
  | { state: 'error'; message: string };

export interface IPanelOptions {
  model: StatusModel;
  icon: LabIcon;
  docsUrl: () => string;
  budgetWarning: () => number;
  fetchRecent: () => Promise<RecentCalls>;
}

export class SecureLLMPanel extends Widget {
  constructor(private _options: IPanelOptions) {
    super();
    this.id = 'jp-securellm-panel';
    this.addClass('jp-securellm-panel');
    this.title.icon = _options.icon;
    this.title.caption = 'SecureLLM: status, budget, alerts';
    this.node.setAttribute('role', 'region');
    this.node.setAttribute('aria-label', 'SecureLLM');
    this.node.tabIndex = -1;
    _options.model.changed.connect(this._onStatus, this);
    this.render();
  }

  /** The last recent-calls answer (the panel fetches it when shown). */
  get recent(): RecentCalls | null {
    return this._recent;
  }

  async refreshRecent(): Promise<void> {
    try {
      this._recent = await this._options.fetchRecent();
    } catch (err) {
      this._recent = { state: 'error', message: String((err as Error).message || err) };
    }
    this.render();
  }

  render(): void {
    const { model } = this._options;
    const status = model.status;
    const hl = health(status, model.error, this._options.budgetWarning());
    const refresh = h(
      'button',
      { className: 'jp-Button jp-mod-styled jp-securellm-refresh', type: 'button' },
      'Refresh'
    );
    refresh.addEventListener('click', () => {
      void model.refresh();
      void this.refreshRecent();
    });

    const sections: HTMLElement[] = [];
    sections.push(
      h(
        'header',
        { className: 'jp-securellm-panel-header' },
        h('h2', {}, 'SecureLLM'),
        refresh
      )
    );
    sections.push(
      h(
        'p',
        {
          className: `jp-securellm-health jp-securellm-level-${hl.level}`,
          role: 'status',
          'aria-live': 'polite'
        },
        hl.level === 'ok' ? 'All good.' : hl.reasons.join('; ') + '.'
      )
    );

    // connection
    const v = status?.vault;
    sections.push(
      section(
        'Connection',
        h(
          'dl',
          { className: 'jp-securellm-facts' },
          fact('Broker', model.error ? `unreachable (${model.error})` : status?.broker || NOT_CONFIGURED),
          fact('Vault', vaultText(status) + (v?.url ? ` · ${v.url}` : '')),
          fact('Vault login', v?.auth_method || NOT_CONFIGURED),
          fact('User', status?.user || NOT_CONFIGURED),
          fact('Version', status?.version || NOT_CONFIGURED)
        )
      )
    );

    // models
    const models = status?.models || [];
    sections.push(
      section(
        'Models you may call',
        models.length
          ? h('ul', { className: 'jp-securellm-models' }, ...models.map(m => h('li', {}, h('code', {}, m))))
          : h('p', { className: 'jp-securellm-muted' }, status ? 'none configured' : NOT_CONFIGURED)
      )
    );

    // budget
    const rows = budgetRows(status?.budget);
    sections.push(
      section(
        'Budget',
        rows.length
          ? h(
              'ul',
              { className: 'jp-securellm-budget' },
              ...rows.map(r => {
                const pct = r.fraction === null ? null : Math.round(r.fraction * 100);
                const warn = r.fraction !== null && r.fraction >= this._options.budgetWarning();
                return h(
                  'li',
                  {},
                  h('span', { className: 'jp-securellm-budget-label' }, r.label),
                  pct === null
                    ? null
                    : h(
                        'div',
                        {
                          className: 'jp-securellm-bar' + (warn ? ' jp-mod-warn' : ''),
                          role: 'progressbar',
                          'aria-label': r.label,
                          'aria-valuemin': 0,
                          'aria-valuemax': 100,
                          'aria-valuenow': pct,
                          'aria-valuetext': r.text
                        },
                        h('div', { className: 'jp-securellm-bar-fill', style: `width: ${pct}%` })
                      ),
                  h('span', { className: 'jp-securellm-budget-text' }, r.text),
                  r.resetsAt ? h('span', { className: 'jp-securellm-muted' }, ` · resets ${timeText(r.resetsAt)}`) : null
                );
              })
            )
          : h('p', { className: 'jp-securellm-muted' }, NOT_CONFIGURED)
      )
    );

    // alerts
    const alerts = status?.alerts || [];
    sections.push(
      section(
        'Alerts',
        alerts.length
          ? h(
              'ul',
              { className: 'jp-securellm-alerts', 'aria-live': 'polite' },
              ...alerts.map(a =>
                h(
                  'li',
                  { className: `jp-securellm-alert jp-securellm-severity-${a.severity || 'warning'}` },
                  h('strong', {}, `${a.severity || 'warning'}: `),
                  a.message || a.kind || a.id,
                  a.since ? h('span', { className: 'jp-securellm-muted' }, ` · since ${timeText(a.since)}`) : null
                )
              )
            )
          : h('p', { className: 'jp-securellm-muted' }, status ? 'No active alerts.' : NOT_CONFIGURED)
      )
    );

    // recent calls
    sections.push(section('Your recent calls', this._recentNode()));

    // tier
    const tier = tierInfo(status?.tier);
    sections.push(
      section(
        'Trust tier',
        tier
          ? h(
              'p',
              {},
              h('strong', {}, tier.label + ': '),
              tier.explanation + ' ',
              h('a', { href: this._options.docsUrl(), target: '_blank', rel: 'noopener noreferrer' }, 'What this defends')
            )
          : h(
              'p',
              { className: 'jp-securellm-muted' },
              NOT_CONFIGURED + ' ',
              h('a', { href: this._options.docsUrl(), target: '_blank', rel: 'noopener noreferrer' }, 'About trust tiers')
            )
      )
    );
    this.node.replaceChildren(...sections);
  }

  protected onAfterShow(): void {
    void this.refreshRecent();
  }

  dispose(): void {
    this._options.model.changed.disconnect(this._onStatus, this);
    super.dispose();
  }

  private _onStatus(): void {
    this.render();
    if (this.isVisible) {
      void this.refreshRecent();
    }
  }

  private _recentNode(): HTMLElement {
    const r = this._recent;
    if (r === null) {
      return h('p', { className: 'jp-securellm-muted' }, 'loading…');
    }
    if (r.state === 'not-configured') {
      return h('p', { className: 'jp-securellm-muted' }, 'audit log not configured');
    }
    if (r.state === 'error') {
      return h('p', { className: 'jp-securellm-muted' }, `unavailable: ${r.message}`);
    }
    if (r.calls.length === 0) {
      return h('p', { className: 'jp-securellm-muted' }, 'No calls yet.');
    }
    return h(
      'table',
      { className: 'jp-securellm-calls' },
      h('caption', { className: 'jp-securellm-sr-only' }, 'Your recent LLM calls (prompts are never shown)'),
      h('thead', {}, h('tr', {}, ...['Time', 'Model', 'Tokens', 'Status'].map(t => h('th', { scope: 'col' }, t)))),
      h(
        'tbody',
        {},
        ...r.calls.map(c =>
          h(
            'tr',
            {},
            h('td', {}, timeText(c.time)),
            h('td', {}, c.model || ''),
            h('td', {}, c.tokens === null || c.tokens === undefined ? '' : String(c.tokens)),
            h('td', {}, c.status || '')
          )
        )
      )
    );
  }

  private _recent: RecentCalls | null = null;
}

function section(title: string, body: HTMLElement): HTMLElement {
  return h('section', { className: 'jp-securellm-section' }, h('h3', {}, title), body);
}

function fact(name: string, value: string): HTMLElement[] {
  return [h('dt', {}, name), h('dd', {}, value)];
}
