/**
 * Inline completions (ghost text) in notebooks and file editors, from the pool: each request
 * is a `kind: "completion"` job whose events stream in as `stream: true` items.
 *
 * JupyterLab calls `fetch` on every keystroke. The job an editor started before is cancelled
 * on the server at once (DELETE), and a new one starts only after the debounce, if no newer
 * keystroke came meanwhile. The server trims the reply to the block at the cursor.
 */

import {
  CompletionHandler,
  IInlineCompletionContext,
  IInlineCompletionItem,
  IInlineCompletionList,
  IInlineCompletionProvider
} from '@jupyterlab/completer';
import { NotebookPanel } from '@jupyterlab/notebook';

import { IJobRecord, PoolModel } from './model';
import { requestAPI } from './request';
import { isTerminal, jobEvents } from './stream';

export interface ICompletionSettings {
  completionsEnabled: boolean;
  completionModel: string;
  completionDebounceMs: number;
  completionMaxTokens: number;
  completionTemperature: number | null;
  completionPrefixChars: number;
  completionSuffixChars: number;
  completionContextChars: number;
}

export const COMPLETION_DEFAULTS: ICompletionSettings = {
  completionsEnabled: true,
  completionModel: '',
  completionDebounceMs: 300,
  completionMaxTokens: 64,
  completionTemperature: null,
  completionPrefixChars: 2000,
  completionSuffixChars: 500,
  completionContextChars: 2000
};

/** A running job: what `stream` reads, and what a newer request cancels. */
interface IPending {
  jobId: string;
  abort: AbortController;
}

export class PoolCompletionProvider implements IInlineCompletionProvider {
  readonly identifier = 'jupyter-llm:inline';
  readonly name = 'LLM (jupyter_llm)';

  constructor(
    private readonly _pool: PoolModel,
    private readonly _settings: () => ICompletionSettings & { defaultModel: string }
  ) {}

  async fetch(
    request: CompletionHandler.IRequest,
    context: IInlineCompletionContext
  ): Promise<IInlineCompletionList> {
    const settings = this._settings();
    const editor = context.widget.id;
    const turn = (this._turns.get(editor) ?? 0) + 1;
    this._turns.set(editor, turn);
    this._cancel(editor); // typing on: the running job is stale now
    const model = this._model(settings);
    if (!settings.completionsEnabled || !model) {
      return { items: [] };
    }
    await sleep(settings.completionDebounceMs);
    if (this._turns.get(editor) !== turn) {
      return { items: [] }; // a newer keystroke: its own fetch asks instead
    }
    const body = {
      model,
      kind: 'completion',
      editor,
      language: language(request.mimeType, context),
      prefix: request.text
        .slice(0, request.offset)
        .slice(-settings.completionPrefixChars),
      suffix: request.text
        .slice(request.offset)
        .slice(0, settings.completionSuffixChars),
      context: earlierCells(context, settings.completionContextChars),
      max_tokens: settings.completionMaxTokens,
      temperature: settings.completionTemperature
    };
    let record: IJobRecord;
    try {
      record = await requestAPI<IJobRecord>('jobs', 'POST', body);
    } catch (error) {
      return { items: [{ insertText: '', error: { message: String(error) } }] };
    }
    if (this._turns.get(editor) !== turn) {
      void cancelJob(record.id); // superseded while it was being submitted
      return { items: [] };
    }
    this._pending.set(editor, { jobId: record.id, abort: new AbortController() });
    return {
      items: [{ insertText: '', isIncomplete: true, token: `${editor}\n${record.id}` }]
    };
  }

  async *stream(token: string): AsyncGenerator<{ response: IInlineCompletionItem }> {
    const [editor, jobId] = token.split('\n');
    const pending = this._pending.get(editor);
    if (!pending || pending.jobId !== jobId) {
      return;
    }
    let text = '';
    try {
      for await (const event of jobEvents(jobId, -1, pending.abort.signal)) {
        text += event.text;
        const done = isTerminal(event);
        if (event.text || done) {
          const item: IInlineCompletionItem = { insertText: text, isIncomplete: !done, token };
          if (done && event.status !== 'completed' && event.status !== 'cancelled') {
            item.error = { message: event.error ?? event.status };
          }
          yield { response: item };
        }
      }
    } catch (error) {
      if ((error as Error).name !== 'AbortError') {
        yield { response: { insertText: text, token, error: { message: String(error) } } };
      }
    } finally {
      if (this._pending.get(editor) === pending) {
        this._pending.delete(editor);
      }
    }
  }

  private _cancel(editor: string): void {
    const pending = this._pending.get(editor);
    if (pending) {
      this._pending.delete(editor);
      pending.abort.abort();
      void cancelJob(pending.jobId);
    }
  }

  private _model(settings: ICompletionSettings & { defaultModel: string }): string | null {
    const models = this._pool.models;
    const named = settings.completionModel || settings.defaultModel;
    if (named && models.some(m => m.name === named)) {
      return named;
    }
    return (models.find(m => m.state === 'ready') ?? this._pool.defaultModel())?.name ?? null;
  }

  private _turns = new Map<string, number>();
  private _pending = new Map<string, IPending>();
}

function cancelJob(jobId: string): Promise<unknown> {
  return requestAPI(`jobs/${encodeURIComponent(jobId)}`, 'DELETE').catch(() => undefined);
}

function sleep(ms: number): Promise<void> {
  return new Promise(resolve => setTimeout(resolve, Math.max(0, ms)));
}

/** `text/x-ipython` → `python`; a notebook's kernel language wins where it is known. */
function language(mimeType: string | undefined, context: IInlineCompletionContext): string {
  const widget = context.widget;
  if (widget instanceof NotebookPanel) {
    const info = widget.model?.metadata?.language_info as { name?: string } | undefined;
    if (info?.name) {
      return info.name;
    }
  }
  const name = (mimeType ?? '').replace(/^(text|application)\/(x-)?/, '');
  return name === 'ipython' ? 'python' : name;
}

/** The code cells above the active one, nearest first until `budget` characters, returned
 * oldest first (the order the server puts them in the prompt). */
function earlierCells(context: IInlineCompletionContext, budget: number): string[] {
  const widget = context.widget;
  if (!(widget instanceof NotebookPanel) || budget <= 0) {
    return [];
  }
  const notebook = widget.content;
  const cells: string[] = [];
  let left = budget;
  for (let i = notebook.activeCellIndex - 1; i >= 0 && left > 0; i--) {
    const cell = notebook.widgets[i];
    if (cell?.model.type !== 'code') {
      continue;
    }
    const source = cell.model.sharedModel.getSource();
    cells.push(source.slice(-left));
    left -= source.length;
  }
  return cells.reverse();
}
