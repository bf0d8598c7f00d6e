/** The right-sidebar panel: the Chat and Jobs tabs. */

import { LabIcon } from '@jupyterlab/ui-components';
import { TabPanel } from '@lumino/widgets';

import { ChatPanel } from './chat';
import { JobsPanel } from './jobs';

const ICON_SVG = `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">
  <path class="jp-icon3" fill="#616161" d="M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2zm3 6.5a1.5 1.5 0 1 0 0 .01zm5 0a1.5 1.5 0 1 0 0 .01zm5 0a1.5 1.5 0 1 0 0 .01z"/>
</svg>`;

export const llmIcon = new LabIcon({ name: 'jupyter-llm:chat', svgstr: ICON_SVG });

export class LLMPanel extends TabPanel {
  constructor(
    readonly chat: ChatPanel,
    readonly jobs: JobsPanel
  ) {
    super({ tabsMovable: false });
    this.id = 'jupyter-llm-panel';
    this.addClass('jp-llm-Panel');
    this.title.icon = llmIcon;
    this.title.caption = 'LLM chat and jobs';
    this.addWidget(chat);
    this.addWidget(jobs);
  }

  showTab(which: 'chat' | 'jobs'): void {
    this.currentWidget = which === 'chat' ? this.chat : this.jobs;
  }
}
