/**
 * The status bar item: broker and Vault state, the default model and today's
 * budget; a warning colour and a short reason when something needs attention.
 * Clicking it (or Enter / Space when focused) opens the side panel.
 */
import { LabIcon } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';

import { statusBarText } from './logic';
import { StatusModel } from './status';

export class StatusItem extends Widget {
  constructor(
    private _model: StatusModel,
    icon: LabIcon,
    private _onActivate: () => void,
    private _budgetWarning: () => number
  ) {
    super();
    this.addClass('jp-securellm-status');
    this.node.setAttribute('role', 'button');
    this.node.tabIndex = 0;
    const iconNode = document.createElement('span');
    iconNode.className = 'jp-securellm-status-icon';
    iconNode.setAttribute('aria-hidden', 'true');
    icon.element({ container: iconNode, height: '14px', width: '14px' });
    this._label = document.createElement('span');
    this._label.className = 'jp-securellm-status-text';
    this.node.append(iconNode, this._label);
    this.node.addEventListener('click', () => this._onActivate());
    this.node.addEventListener('keydown', (ev: KeyboardEvent) => {
      if (ev.key === 'Enter' || ev.key === ' ') {
        ev.preventDefault();
        this._onActivate();
      }
    });
    _model.changed.connect(this.render, this);
    this.render();
  }

  render(): void {
    const s = statusBarText(this._model.status, this._model.error, this._budgetWarning());
    this._label.textContent = this._model.status || this._model.error ? s.text : 'SecureLLM …';
    this.node.title = s.title;
    this.node.setAttribute('aria-label', s.title);
    this.node.dataset.level = s.level;
    this.toggleClass('jp-mod-warn', s.level === 'warn');
    this.toggleClass('jp-mod-error', s.level === 'error');
  }

  dispose(): void {
    this._model.changed.disconnect(this.render, this);
    super.dispose();
  }

  private _label: HTMLElement;
}
