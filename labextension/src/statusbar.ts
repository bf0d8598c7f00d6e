/**
 * The status bar item: the default model's state (loading with its phase and seconds,
 * ready, error) and the pool's running, queued and units used of total. A click opens
 * the panel.
 */

import { Widget } from '@lumino/widgets';

import { IModelEntry, PoolModel } from './model';

export class PoolStatus extends Widget {
  constructor(
    private readonly _pool: PoolModel,
    private readonly _defaultModel: () => string,
    onClick: () => void
  ) {
    super();
    this.addClass('jp-llm-Status');
    this.node.setAttribute('role', 'button');
    this.node.addEventListener('click', onClick);
    _pool.changed.connect(this.update, this);
    this.update();
  }

  protected onUpdateRequest(): void {
    const pool = this._pool;
    const model = pool.defaultModel(this._defaultModel());
    let state = 'unknown';
    let text: string;
    if (!pool.loaded) {
      text = 'LLM: …';
    } else if (pool.error) {
      state = 'offline';
      text = 'LLM: server unreachable';
    } else if (!model) {
      state = 'none';
      text = 'LLM: no model';
    } else {
      state = model.state;
      text = `${model.name}: ${describe(model)}`;
      const stats = pool.stats;
      if (stats) {
        text +=
          ` · ${stats.running} running · ${stats.queued} queued` +
          ` · ${stats.used_units}/${stats.total_units} units`;
      }
    }
    this.node.textContent = text;
    this.node.dataset.state = state;
    this.node.title = tooltip(pool);
  }
}

function describe(model: IModelEntry): string {
  if (model.state !== 'loading') {
    return model.state;
  }
  const loading = model.loading;
  if (!loading) {
    return 'loading';
  }
  const details = [loading.phase];
  if (typeof loading.done === 'number' && loading.total) {
    details.push(`${Math.round((100 * loading.done) / loading.total)}%`);
  }
  details.push(`${Math.round(loading.seconds)} s`);
  return `loading (${details.join(', ')})`;
}

function tooltip(pool: PoolModel): string {
  if (pool.error) {
    return `jupyter_llm: ${pool.error}`;
  }
  const lines = pool.models.map(m => {
    const where = m.device ? ` on ${m.device}` : '';
    const why = m.error ? `: ${m.error}` : '';
    return `${m.name} (${m.backend}${where}): ${describe(m)}${why}`;
  });
  return ['jupyter_llm models — click to open the panel', ...lines].join('\n');
}
