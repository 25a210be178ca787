/** The extension's icon: a shield with a keyhole (status bar, side panel tab, toolbar). */
import { LabIcon } from '@jupyterlab/ui-components';

const SHIELD_SVG =
  '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" width="16" height="16">' +
  '<path class="jp-icon3" fill="#616161" d="M12 1 3 5v6c0 5.55 3.84 10.74 9 12 5.16-1.26 9-6.45 9-12V5l-9-4zm0 ' +
  '6a2.5 2.5 0 0 1 1.25 4.67V15h-2.5v-3.33A2.5 2.5 0 0 1 12 7z"/></svg>';

export const shieldIcon = new LabIcon({ name: 'jupyter-securellm:shield', svgstr: SHIELD_SVG });
