/**
 * jupyter_llm in JupyterLab: the pool in the status bar, a Chat and Jobs panel in the right
 * sidebar that talks to the REST API directly (no kernel), palette commands, and inline
 * completions in the editors.
 */

import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { ICompletionProviderManager } from '@jupyterlab/completer';
import { INotebookTracker, NotebookActions } from '@jupyterlab/notebook';
import { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { IStateDB } from '@jupyterlab/statedb';
import { IStatusBar } from '@jupyterlab/statusbar';

import { ChatPanel } from './chat';
import {
  COMPLETION_DEFAULTS,
  ICompletionSettings,
  PoolCompletionProvider
} from './completer';
import { ChatModel } from './conversation';
import { JobsPanel } from './jobs';
import { IJobRecord, PoolModel } from './model';
import { LLMPanel } from './panel';
import { requestAPI } from './request';
import { PoolStatus } from './statusbar';

const PLUGIN_ID = 'jupyter-llm:plugin';

export namespace CommandIDs {
  export const openChat = 'jupyter-llm:open-chat';
  export const openJobs = 'jupyter-llm:open-jobs';
  export const newChat = 'jupyter-llm:new-chat';
  export const exportChat = 'jupyter-llm:export-chat';
  export const insertCell = 'jupyter-llm:insert-llm-cell';
  export const explainCell = 'jupyter-llm:explain-cell';
  export const cancelAll = 'jupyter-llm:cancel-all';
}

interface ISettings extends ICompletionSettings {
  defaultModel: string;
  enterToSend: boolean;
  maxTokens: number;
  temperature: number | null;
}

const DEFAULTS: ISettings = {
  defaultModel: '',
  enterToSend: true,
  maxTokens: 512,
  temperature: null,
  ...COMPLETION_DEFAULTS
};

const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description: 'The jupyter_llm pool: status bar item, chat and jobs panel, commands.',
  autoStart: true,
  requires: [IRenderMimeRegistry],
  optional: [
    ISettingRegistry,
    IStateDB,
    IStatusBar,
    INotebookTracker,
    ICommandPalette,
    ILayoutRestorer,
    ICompletionProviderManager
  ],
  activate: async (
    app: JupyterFrontEnd,
    rendermime: IRenderMimeRegistry,
    registry: ISettingRegistry | null,
    state: IStateDB | null,
    statusBar: IStatusBar | null,
    notebooks: INotebookTracker | null,
    palette: ICommandPalette | null,
    restorer: ILayoutRestorer | null,
    completions: ICompletionProviderManager | null
  ) => {
    const settings: ISettings = { ...DEFAULTS };
    if (registry) {
      const loaded = await registry.load(PLUGIN_ID);
      const read = () => Object.assign(settings, loaded.composite as Partial<ISettings>);
      read();
      loaded.changed.connect(read);
    }

    const pool = new PoolModel();
    const chat = new ChatModel(state, () => settings);
    completions?.registerInlineProvider(new PoolCompletionProvider(pool, () => settings));

    const insertCell = (code: string): boolean => {
      const notebook = notebooks?.currentWidget?.content;
      if (!notebook) {
        return false;
      }
      NotebookActions.insertBelow(notebook);
      notebook.activeCell?.model.sharedModel.setSource(code);
      return true;
    };

    const exportMarkdown = async (): Promise<void> => {
      const stamp = new Date().toISOString().slice(0, 19).replace(/[-:]/g, '');
      const path = `chat-${stamp.replace('T', '-')}.md`;
      await app.serviceManager.contents.save(path, {
        type: 'file',
        format: 'text',
        content: chat.toMarkdown()
      });
      await app.commands.execute('docmanager:open', { path });
    };

    const chatPanel = new ChatPanel({
      chat,
      pool,
      rendermime,
      insertCell,
      defaultModel: () => settings.defaultModel,
      enterToSend: () => settings.enterToSend,
      exportMarkdown
    });
    const panel = new LLMPanel(chatPanel, new JobsPanel(pool));
    app.shell.add(panel, 'right', { rank: 900 });
    restorer?.add(panel, panel.id);

    const open = (which: 'chat' | 'jobs') => {
      panel.showTab(which);
      app.shell.activateById(panel.id);
      if (which === 'chat') {
        chatPanel.focusInput();
      }
    };

    if (statusBar) {
      statusBar.registerStatusItem(PLUGIN_ID, {
        item: new PoolStatus(pool, () => settings.defaultModel, () => open('chat')),
        align: 'left',
        rank: 100,
        isActive: () => true
      });
    }

    const { commands } = app;
    commands.addCommand(CommandIDs.openChat, {
      label: 'LLM: Open Chat',
      execute: () => open('chat')
    });
    commands.addCommand(CommandIDs.openJobs, {
      label: 'LLM: Open Jobs',
      execute: () => open('jobs')
    });
    commands.addCommand(CommandIDs.newChat, {
      label: 'LLM: New Chat',
      execute: async () => {
        await chat.clear();
        open('chat');
      }
    });
    commands.addCommand(CommandIDs.exportChat, {
      label: 'LLM: Export Chat as Markdown',
      execute: exportMarkdown
    });
    commands.addCommand(CommandIDs.insertCell, {
      label: 'LLM: Insert %%llm Cell',
      isEnabled: () => !!notebooks?.currentWidget,
      execute: () => {
        const notebook = notebooks?.currentWidget?.content;
        if (!notebook) {
          return;
        }
        const loaded = notebook.widgets.some(cell =>
          cell.model.sharedModel.getSource().includes('load_ext jupyter_llm')
        );
        if (!loaded) {
          insertCell('%load_ext jupyter_llm');
        }
        const model = pool.defaultModel(settings.defaultModel)?.name;
        insertCell(settings.defaultModel && model ? `%%llm -m ${model}\n` : '%%llm\n');
        notebook.mode = 'edit';
      }
    });
    commands.addCommand(CommandIDs.explainCell, {
      label: 'LLM: Explain the Active Cell',
      isEnabled: () => !!notebooks?.activeCell,
      execute: async () => {
        const cell = notebooks?.activeCell;
        if (!cell) {
          return;
        }
        open('chat');
        await chatPanel.ask(explainPrompt(cell.model.toJSON()));
      }
    });
    commands.addCommand(CommandIDs.cancelAll, {
      label: 'LLM: Cancel All Running Jobs',
      execute: async () => {
        const lists = await Promise.all(
          ['running', 'queued'].map(status =>
            requestAPI<{ jobs: IJobRecord[] }>(`jobs?status=${status}&limit=1000`)
          )
        );
        const ids = lists.flatMap(list => list.jobs.map(job => job.id));
        await Promise.allSettled(
          ids.map(id => requestAPI(`jobs/${encodeURIComponent(id)}`, 'DELETE'))
        );
        await Promise.all([pool.refresh(), panel.jobs.refresh()]).catch(() => undefined);
        return ids.length;
      }
    });
    for (const command of Object.values(CommandIDs)) {
      palette?.addItem({ command, category: 'LLM' });
    }

    // IStateDB answers once the workspace is restored, which waits for every plugin.
    void app.restored.then(() => chat.restore());
  }
};

/** The question the explain-cell command asks: the cell's source and its text outputs. */
function explainPrompt(cell: { source?: unknown; outputs?: unknown }): string {
  const source = Array.isArray(cell.source) ? cell.source.join('') : String(cell.source ?? '');
  const outputs: string[] = [];
  for (const output of (cell.outputs as Record<string, any>[] | undefined) ?? []) {
    if (output.output_type === 'stream') {
      outputs.push(joined(output.text));
    } else if (output.output_type === 'error') {
      outputs.push(`${output.ename}: ${output.evalue}`);
    } else if (output.data?.['text/plain'] !== undefined) {
      outputs.push(joined(output.data['text/plain']));
    }
  }
  let prompt = `Explain what this notebook cell does:\n\n\`\`\`\n${source}\n\`\`\``;
  if (outputs.length) {
    prompt += `\n\nIts output:\n\n\`\`\`\n${outputs.join('\n').slice(0, 4000)}\n\`\`\``;
  }
  return prompt;
}

function joined(text: unknown): string {
  return Array.isArray(text) ? text.join('') : String(text);
}

export default plugin;
