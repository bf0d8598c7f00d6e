/**
 * The Jobs tab: the server's recent jobs (`GET llm/api/jobs`), kept fresh while the tab is
 * visible; queued and running ones can be cancelled; a click opens one to read its text.
 */

import { Poll } from '@lumino/polling';
import { Widget } from '@lumino/widgets';

import { IJobRecord, PoolModel, UNFINISHED } from './model';
import { requestAPI } from './request';

const LIMIT = 50;

export class JobsPanel extends Widget {
  constructor(private readonly _pool: PoolModel) {
    super();
    this.id = 'jupyter-llm-jobs';
    this.title.label = 'Jobs';
    this.addClass('jp-llm-Jobs');
    this.node.innerHTML = `
      <div class="jp-llm-Jobs-error" hidden></div>
      <table class="jp-llm-Jobs-table">
        <thead><tr>
          <th>model</th><th>status</th><th>tokens</th><th>tok/s</th><th>age</th><th></th>
        </tr></thead>
        <tbody></tbody>
      </table>
      <div class="jp-llm-Jobs-detail" hidden>
        <div class="jp-llm-Jobs-detailHeader"></div>
        <pre class="jp-llm-Jobs-text"></pre>
      </div>`;
    this._rows = this.node.querySelector('tbody')!;
    this._error = this.node.querySelector('.jp-llm-Jobs-error')!;
    this._detail = this.node.querySelector('.jp-llm-Jobs-detail')!;
    this._poll = new Poll({
      factory: () => this._fetch(),
      frequency: { interval: 2000, backoff: true, max: 30000 },
      standby: () => !this.isVisible || document.hidden,
      name: 'jupyter-llm:jobs'
    });
  }

  /** Fetch the list now. */
  refresh(): Promise<void> {
    return this._poll.refresh();
  }

  dispose(): void {
    this._poll.dispose();
    super.dispose();
  }

  protected onAfterShow(): void {
    void this.refresh();
  }

  private async _fetch(): Promise<void> {
    try {
      // Inline completions come with every pause in typing: they would crowd out the rest.
      const { jobs } = await requestAPI<{ jobs: IJobRecord[] }>(
        `jobs?limit=${LIMIT}&kind=generate`
      );
      this._error.hidden = true;
      this._render(jobs);
      const open = jobs.find(job => job.id === this._openId);
      if (open) {
        this._showDetail(open);
      }
    } catch (error) {
      this._error.textContent = `Could not list the jobs: ${(error as Error).message}`;
      this._error.hidden = false;
      throw error;
    }
  }

  private _render(jobs: IJobRecord[]): void {
    const now = Date.now() / 1000;
    const rows = jobs.map(job => {
      const row = document.createElement('tr');
      row.dataset.jobId = job.id;
      row.dataset.status = job.status;
      row.title = `${job.id}: click to read`;
      row.classList.toggle('jp-mod-selected', job.id === this._openId);
      const tokens = job.usage.completion_tokens;
      const { started_at, run_secs } = job.timings;
      const secs = run_secs ?? (started_at !== null ? now - started_at : null);
      const cells = [
        job.model,
        job.status,
        String(tokens),
        secs ? (tokens / secs).toFixed(1) : '',
        age(now - job.timings.created_at)
      ];
      for (const text of cells) {
        const cell = document.createElement('td');
        cell.textContent = text;
        row.appendChild(cell);
      }
      const actions = document.createElement('td');
      if (UNFINISHED.has(job.status)) {
        const cancel = document.createElement('button');
        cancel.className = 'jp-llm-Jobs-cancel jp-mod-styled jp-mod-warn';
        cancel.textContent = 'Cancel';
        cancel.addEventListener('click', event => {
          event.stopPropagation();
          void this._cancel(job.id);
        });
        actions.appendChild(cancel);
      }
      row.appendChild(actions);
      row.addEventListener('click', () => {
        this._openId = job.id;
        this._showDetail(job);
        for (const other of this._rows.children) {
          other.classList.toggle('jp-mod-selected', other === row);
        }
      });
      return row;
    });
    this._rows.replaceChildren(...rows);
  }

  private _showDetail(job: IJobRecord): void {
    const header = this._detail.querySelector('.jp-llm-Jobs-detailHeader')!;
    const reason = job.finish_reason ? ` (${job.finish_reason})` : '';
    const error = job.error ? ` — ${job.error}` : '';
    header.textContent = `${job.id} · ${job.model} · ${job.status}${reason}${error}`;
    this._detail.querySelector('.jp-llm-Jobs-text')!.textContent = job.text;
    this._detail.hidden = false;
  }

  private async _cancel(jobId: string): Promise<void> {
    try {
      await requestAPI<IJobRecord>(`jobs/${encodeURIComponent(jobId)}`, 'DELETE');
    } catch (error) {
      this._error.textContent = `Could not cancel ${jobId}: ${(error as Error).message}`;
      this._error.hidden = false;
    }
    await Promise.all([this.refresh(), this._pool.refresh()]).catch(() => undefined);
  }

  private _poll: Poll;
  private _rows: HTMLElement;
  private _error: HTMLElement;
  private _detail: HTMLElement;
  private _openId: string | null = null;
}

function age(seconds: number): string {
  if (seconds < 60) {
    return `${Math.max(0, Math.round(seconds))} s`;
  }
  if (seconds < 3600) {
    return `${Math.round(seconds / 60)} min`;
  }
  return `${Math.round(seconds / 3600)} h`;
}
