/**
 * The chat's state: one conversation (model, system prompt, messages), the job that answers
 * the last message, and its persistence. Conversations are kept in JupyterLab's IStateDB,
 * which saves them into the workspace on the server, so they survive a page reload; an
 * answer still streaming is saved with its job id and the index of the last event applied,
 * and picked up from there (Last-Event-ID) after the reload.
 */

import { IStateDB } from '@jupyterlab/statedb';
import { ReadonlyPartialJSONValue } from '@lumino/coreutils';
import { ISignal, Signal } from '@lumino/signaling';

import { answerMeta, IJobRecord, JobStatus, UNFINISHED } from './model';
import { APIError, requestAPI } from './request';
import { isTerminal, jobEvents } from './stream';

export interface IChatMessage {
  role: 'user' | 'assistant';
  content: string;
  /** Assistant messages: the job that writes it, its state, the last event applied. */
  jobId?: string;
  model?: string;
  status?: JobStatus;
  lastIndex?: number;
  error?: string | null;
  /** Once it ended: its record's line (queue, first token, tokens, tok/s, finish). */
  meta?: string;
}

export interface IConversation {
  model: string;
  system: string;
  messages: IChatMessage[];
}

export interface ISamplingSettings {
  maxTokens: number;
  temperature: number | null;
}

const STATE_KEY = 'jupyter-llm:chat';
const SAVE_EVERY_MS = 1000;
const RECONNECT_MS = 1000;
const MAX_RECONNECTS = 5;

export class ChatModel {
  constructor(
    private readonly _state: IStateDB | null,
    private readonly _sampling: () => ISamplingSettings
  ) {}

  /** Emitted on every change: a token, a status, a new message. */
  get changed(): ISignal<this, void> {
    return this._changed;
  }

  get conversation(): Readonly<IConversation> {
    return this._conversation;
  }

  /** The answer being written (queued or streaming), if any. */
  get pending(): IChatMessage | null {
    const last = this._conversation.messages.at(-1);
    return last?.role === 'assistant' && last.status && UNFINISHED.has(last.status)
      ? last
      : null;
  }

  /** Load the saved conversation and pick up an answer that was still streaming. */
  async restore(): Promise<void> {
    const saved = (await this._state?.fetch(STATE_KEY)) as IConversation | undefined;
    if (saved && Array.isArray(saved.messages)) {
      this._conversation = {
        model: saved.model ?? '',
        system: saved.system ?? '',
        messages: saved.messages
      };
      this._changed.emit();
    }
    const pending = this.pending;
    if (pending && !pending.jobId) {
      this._finish(pending, 'failed', 'the page closed before the server took the question');
    } else if (pending) {
      void this._follow(pending);
    }
  }

  setModel(name: string): void {
    this._conversation.model = name;
    this._save();
  }

  setSystem(text: string): void {
    this._conversation.system = text;
    this._save();
  }

  /** Ask `text` of `model`; the answer streams into a new assistant message. */
  async send(text: string, model: string): Promise<void> {
    if (this.pending) {
      throw new Error('an answer is still being written: stop it first');
    }
    const history = this._history();
    const messages = this._conversation.messages;
    messages.push({ role: 'user', content: text });
    const answer: IChatMessage = { role: 'assistant', content: '', model, status: 'queued' };
    messages.push(answer);
    this._changed.emit();
    const { maxTokens, temperature } = this._sampling();
    const params: Record<string, number> = { max_tokens: maxTokens };
    if (temperature !== null) {
      params.temperature = temperature;
    }
    try {
      const record = await requestAPI<IJobRecord>('jobs', 'POST', {
        model,
        messages: [...history, { role: 'user', content: text }],
        params
      });
      answer.jobId = record.id;
      answer.status = record.status;
      answer.lastIndex = -1;
      this._changed.emit();
    } catch (error) {
      answer.status = 'failed';
      answer.error = (error as Error).message;
      this._changed.emit();
      this._save();
      return;
    }
    this._save();
    await this._follow(answer);
  }

  /** Cancel the answer being written; its record says `cancelled`. */
  async stop(): Promise<void> {
    const pending = this.pending;
    if (!pending?.jobId) {
      return;
    }
    const record = await requestAPI<IJobRecord>(
      `jobs/${encodeURIComponent(pending.jobId)}`,
      'DELETE'
    );
    // The stream delivers the terminal event; a job cancelled before it streamed may not.
    if (!UNFINISHED.has(record.status) && pending.status && UNFINISHED.has(pending.status)) {
      this._finish(pending, record.status, record.error);
    }
  }

  /** Start over: stop the answer being written, forget the messages (keep model, system). */
  async clear(): Promise<void> {
    await this.stop().catch(() => undefined);
    this._following?.abort();
    this._conversation.messages = [];
    this._changed.emit();
    this._save();
  }

  /** The conversation as a markdown document. */
  toMarkdown(): string {
    const { model, system, messages } = this._conversation;
    const parts = [`# Chat with ${model || 'the default model'}`];
    if (system) {
      parts.push(`**System:** ${system}`);
    }
    for (const message of messages) {
      const who = message.role === 'user' ? 'You' : (message.model ?? 'Assistant');
      let text = message.content;
      if (message.status && message.status !== 'completed' && message.role === 'assistant') {
        text += `\n\n*(${message.status}${message.error ? `: ${message.error}` : ''})*`;
      }
      parts.push(`## ${who}\n\n${text}`);
    }
    return parts.join('\n\n') + '\n';
  }

  /** The messages the model sees: the system prompt, then every exchange with an answer. */
  private _history(): { role: string; content: string }[] {
    const history: { role: string; content: string }[] = [];
    if (this._conversation.system.trim()) {
      history.push({ role: 'system', content: this._conversation.system });
    }
    const messages = this._conversation.messages;
    for (let i = 0; i + 1 < messages.length; i += 2) {
      const [question, answer] = [messages[i], messages[i + 1]];
      if (answer.content) {
        history.push({ role: 'user', content: question.content });
        history.push({ role: 'assistant', content: answer.content });
      }
    }
    return history;
  }

  private async _follow(message: IChatMessage): Promise<void> {
    const controller = new AbortController();
    this._following = controller;
    let attempts = 0;
    while (message.status && UNFINISHED.has(message.status) && !controller.signal.aborted) {
      try {
        for await (const event of jobEvents(
          message.jobId!,
          message.lastIndex ?? -1,
          controller.signal
        )) {
          attempts = 0;
          message.lastIndex = event.index;
          message.content += event.text;
          if (isTerminal(event)) {
            this._finish(message, event.status, event.error);
          } else {
            message.status = event.status;
            this._changed.emit();
            this._saveSoon();
          }
        }
      } catch (error) {
        if (controller.signal.aborted) {
          return;
        }
        if (error instanceof APIError && error.status === 404) {
          this._finish(message, 'failed', 'the job is no longer in the server mailbox');
          return;
        }
      }
      if (message.status && UNFINISHED.has(message.status)) {
        // The connection dropped before the job ended: resume after the last event seen.
        if (++attempts > MAX_RECONNECTS) {
          this._finish(message, 'failed', 'lost the connection to the server');
          return;
        }
        await new Promise(resolve => setTimeout(resolve, RECONNECT_MS));
      }
    }
  }

  private _finish(message: IChatMessage, status: JobStatus, error: string | null): void {
    message.status = status;
    message.error = error;
    this._changed.emit();
    this._save();
    void this._describe(message);
  }

  /** Read the ended job's record for the answer's line (none if it is gone). */
  private async _describe(message: IChatMessage): Promise<void> {
    if (!message.jobId) {
      return;
    }
    try {
      const record = await requestAPI<IJobRecord>(`jobs/${encodeURIComponent(message.jobId)}`);
      message.meta = answerMeta(record);
    } catch {
      return; // the answer keeps its status alone
    }
    this._changed.emit();
    this._save();
  }

  private _saveSoon(): void {
    if (this._saveTimer === null) {
      this._saveTimer = window.setTimeout(() => this._save(), SAVE_EVERY_MS);
    }
  }

  private _save(): void {
    if (this._saveTimer !== null) {
      window.clearTimeout(this._saveTimer);
      this._saveTimer = null;
    }
    void this._state?.save(
      STATE_KEY,
      this._conversation as unknown as ReadonlyPartialJSONValue
    );
  }

  private _conversation: IConversation = { model: '', system: '', messages: [] };
  private _changed = new Signal<this, void>(this);
  private _following: AbortController | null = null;
  private _saveTimer: number | null = null;
}
