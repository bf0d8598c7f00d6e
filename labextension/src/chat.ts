/**
 * The Chat tab: a conversation with one model through the REST API (no kernel involved).
 * Answers render as sanitized markdown (rendermime, untrusted); code blocks get Copy and
 * Insert buttons; the Send button becomes Stop while an answer is queued or streaming.
 */

import { Clipboard } from '@jupyterlab/apputils';
import { IRenderMimeRegistry, MimeModel } from '@jupyterlab/rendermime';
import { Widget } from '@lumino/widgets';

import { ChatModel, IChatMessage } from './conversation';
import { PoolModel } from './model';

/** Repaint a streaming answer at most this often: markdown rendering is not free. */
const REPAINT_MS = 80;

export interface IChatOptions {
  chat: ChatModel;
  pool: PoolModel;
  rendermime: IRenderMimeRegistry;
  /** Put `code` in a new cell below the active cell; false when there is no notebook. */
  insertCell: (code: string) => boolean;
  /** The model to preselect when the conversation names none ('' for the pool's default). */
  defaultModel: () => string;
  enterToSend: () => boolean;
  exportMarkdown: () => Promise<void>;
}

export class ChatPanel extends Widget {
  constructor(private readonly _options: IChatOptions) {
    super();
    this.id = 'jupyter-llm-chat';
    this.title.label = 'Chat';
    this.addClass('jp-llm-Chat');
    const node = this.node;
    node.innerHTML = `
      <div class="jp-llm-Chat-toolbar">
        <select class="jp-llm-Chat-model" title="Model"></select>
        <button class="jp-llm-Chat-new jp-mod-styled" title="Start a new conversation">New chat</button>
        <button class="jp-llm-Chat-export jp-mod-styled" title="Save the conversation as a markdown file">Export</button>
      </div>
      <details class="jp-llm-Chat-systemBox">
        <summary>System prompt</summary>
        <textarea class="jp-llm-Chat-system" rows="3"
          placeholder="Instructions for the model (optional)"></textarea>
      </details>
      <div class="jp-llm-Chat-messages" aria-live="polite"></div>
      <div class="jp-llm-Chat-error" hidden></div>
      <div class="jp-llm-Chat-compose">
        <textarea class="jp-llm-Chat-input" rows="3" placeholder="Ask the model…"></textarea>
        <button class="jp-llm-Chat-send jp-mod-styled jp-mod-accept">Send</button>
      </div>`;
    this._select = node.querySelector('.jp-llm-Chat-model')!;
    this._system = node.querySelector('.jp-llm-Chat-system')!;
    this._messages = node.querySelector('.jp-llm-Chat-messages')!;
    this._error = node.querySelector('.jp-llm-Chat-error')!;
    this._input = node.querySelector('.jp-llm-Chat-input')!;
    this._send = node.querySelector('.jp-llm-Chat-send')!;

    const { chat, pool } = _options;
    this._select.addEventListener('change', () => chat.setModel(this._select.value));
    this._system.addEventListener('change', () => chat.setSystem(this._system.value));
    this._send.addEventListener('click', () => void this._sendOrStop());
    this._input.addEventListener('keydown', event => this._onKey(event));
    node
      .querySelector('.jp-llm-Chat-new')!
      .addEventListener('click', () => void chat.clear());
    node
      .querySelector('.jp-llm-Chat-export')!
      .addEventListener('click', () => void this._run(_options.exportMarkdown()));
    chat.changed.connect(this._schedule, this);
    pool.changed.connect(this._renderModels, this);
    this._renderModels();
    this._schedule();
  }

  /** Put `text` in the composer and send it (the explain-cell command). */
  async ask(text: string): Promise<void> {
    if (this._options.chat.pending) {
      this._showError('An answer is still being written: stop it first.');
      return;
    }
    this._input.value = text;
    await this._sendOrStop();
  }

  focusInput(): void {
    this._input.focus();
  }

  /** The model a new question goes to. */
  get model(): string {
    return this._select.value;
  }

  private _onKey(event: KeyboardEvent): void {
    if (event.key !== 'Enter' || event.isComposing) {
      return;
    }
    const modified = event.ctrlKey || event.metaKey;
    const sends = this._options.enterToSend() ? !event.shiftKey : modified;
    if (sends) {
      event.preventDefault();
      if (!this._options.chat.pending) {
        void this._sendOrStop();
      }
    }
  }

  private async _sendOrStop(): Promise<void> {
    const { chat } = this._options;
    if (chat.pending) {
      await this._run(chat.stop());
      return;
    }
    const text = this._input.value.trim();
    if (!text) {
      return;
    }
    if (!this.model) {
      this._showError('No model is configured on the server.');
      return;
    }
    this._input.value = '';
    await this._run(chat.send(text, this.model));
    this._options.pool.refresh().catch(() => undefined);
  }

  private async _run(action: Promise<void>): Promise<void> {
    this._showError('');
    try {
      await action;
    } catch (error) {
      this._showError((error as Error).message);
    }
  }

  private _showError(message: string): void {
    this._error.textContent = message;
    this._error.hidden = !message;
  }

  private _renderModels(): void {
    const { pool, chat } = this._options;
    const wanted =
      chat.conversation.model ||
      this._select.value ||
      pool.defaultModel(this._options.defaultModel())?.name ||
      '';
    const options = pool.models.map(m => {
      const option = document.createElement('option');
      option.value = m.name;
      option.textContent = m.state === 'ready' ? m.name : `${m.name} (${m.state})`;
      return option;
    });
    const same =
      options.length === this._select.options.length &&
      options.every((o, i) => o.textContent === this._select.options[i].textContent);
    if (!same) {
      this._select.replaceChildren(...options);
    }
    if (wanted && pool.models.some(m => m.name === wanted)) {
      this._select.value = wanted;
    }
  }

  /** Repaint soon: at most every REPAINT_MS while tokens stream, at once when idle. */
  private _schedule(): void {
    if (this._timer !== null) {
      return;
    }
    const wait = Math.max(0, this._lastPaint + REPAINT_MS - performance.now());
    this._timer = window.setTimeout(() => {
      this._timer = null;
      this._lastPaint = performance.now();
      void this._paint();
    }, wait);
  }

  private async _paint(): Promise<void> {
    if (this._painting) {
      this._dirty = true;
      return;
    }
    this._painting = true;
    try {
      do {
        this._dirty = false;
        await this._paintOnce();
      } while (this._dirty);
    } finally {
      this._painting = false;
    }
  }

  private async _paintOnce(): Promise<void> {
    const { chat } = this._options;
    const { messages, system } = chat.conversation;
    if (document.activeElement !== this._system) {
      this._system.value = system;
    }
    this._renderModels();
    while (this._views.length > messages.length) {
      this._views.pop()!.node.remove();
    }
    for (let i = 0; i < messages.length; i++) {
      if (!this._views[i]) {
        this._views[i] = new MessageView(messages[i], this._options);
        this._messages.appendChild(this._views[i].node);
      }
      await this._views[i].update(messages[i]);
    }
    const pending = chat.pending !== null;
    this._send.textContent = pending ? 'Stop' : 'Send';
    this._send.classList.toggle('jp-mod-warn', pending);
    this._send.classList.toggle('jp-mod-accept', !pending);
    this._messages.scrollTop = this._messages.scrollHeight;
  }

  private _select: HTMLSelectElement;
  private _system: HTMLTextAreaElement;
  private _messages: HTMLDivElement;
  private _error: HTMLDivElement;
  private _input: HTMLTextAreaElement;
  private _send: HTMLButtonElement;
  private _views: MessageView[] = [];
  private _timer: number | null = null;
  private _lastPaint = 0;
  private _painting = false;
  private _dirty = false;
}

/** One message's DOM: a header (who, state) and its body, repainted when either changes. */
class MessageView {
  constructor(
    message: IChatMessage,
    private readonly _options: IChatOptions
  ) {
    this.node = document.createElement('div');
    this.node.className = `jp-llm-Message jp-llm-Message-${message.role}`;
    this._header = document.createElement('div');
    this._header.className = 'jp-llm-Message-header';
    this._body = document.createElement('div');
    this._body.className = 'jp-llm-Message-body';
    this.node.append(this._header, this._body);
  }

  readonly node: HTMLDivElement;

  async update(message: IChatMessage): Promise<void> {
    const status = message.role === 'assistant' ? (message.status ?? '') : '';
    const header =
      message.role === 'user' ? 'You' : `${message.model ?? ''} · ${message.meta ?? status}`;
    const error = message.error ? ` — ${message.error}` : '';
    if (this._header.textContent !== header + error) {
      this._header.textContent = header + error;
    }
    this.node.dataset.status = status;
    if (message.jobId) {
      this.node.dataset.jobId = message.jobId;
    }
    if (message.content === this._painted) {
      return;
    }
    this._painted = message.content;
    if (message.role === 'user') {
      this._body.textContent = message.content;
      return;
    }
    if (!this._renderer) {
      this._renderer = this._options.rendermime.createRenderer('text/markdown');
      this._body.appendChild(this._renderer.node);
    }
    await this._renderer.renderModel(
      new MimeModel({ data: { 'text/markdown': message.content }, trusted: false })
    );
    this._addCodeActions();
  }

  private _addCodeActions(): void {
    for (const pre of this._body.querySelectorAll('pre')) {
      const code = pre.textContent ?? '';
      const actions = document.createElement('div');
      actions.className = 'jp-llm-CodeActions';
      const copy = button('Copy', 'Copy the code', () => Clipboard.copyToSystem(code));
      const insert = button('Insert', 'Insert the code in a new cell below the active cell', () => {
        if (!this._options.insertCell(code)) {
          insert.textContent = 'No notebook';
          window.setTimeout(() => (insert.textContent = 'Insert'), 2000);
        }
      });
      actions.append(copy, insert);
      pre.before(actions);
    }
  }

  private _header: HTMLDivElement;
  private _body: HTMLDivElement;
  private _renderer: ReturnType<IRenderMimeRegistry['createRenderer']> | null = null;
  private _painted: string | null = null;
}

function button(label: string, title: string, onClick: () => void): HTMLButtonElement {
  const element = document.createElement('button');
  element.className = 'jp-llm-CodeAction jp-mod-styled';
  element.textContent = label;
  element.title = title;
  element.addEventListener('click', onClick);
  return element;
}
