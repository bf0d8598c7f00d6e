/**
 * A job's token events, read from `GET llm/api/jobs/{id}/events` with `fetch`: EventSource
 * cannot send the token or the XSRF header, and cannot be aborted per request.
 */

import { JobStatus, UNFINISHED } from './model';
import { fetchAPI } from './request';

/** One event of a job's stream; `text` is the piece this event adds. */
export interface ITokenEvent {
  id: string;
  index: number;
  status: JobStatus;
  text: string;
  finish_reason: string | null;
  error: string | null;
}

export function isTerminal(event: ITokenEvent): boolean {
  return !UNFINISHED.has(event.status);
}

/** One server-sent event: its `id` (null when absent) and its data lines joined. */
export interface IServerSentEvent {
  id: string | null;
  data: string;
}

/**
 * Turns the text of an event stream into events, chunk by chunk; a chunk may end anywhere,
 * even inside a line. Comments (`: keep-alive`) and fields other than id/data are skipped.
 */
export class EventStreamParser {
  push(chunk: string): IServerSentEvent[] {
    this._buffer += chunk;
    const events: IServerSentEvent[] = [];
    let end: number;
    while ((end = this._buffer.search(/\r\n|\r|\n/)) >= 0) {
      const line = this._buffer.slice(0, end);
      const newline = this._buffer.startsWith('\r\n', end) ? 2 : 1;
      this._buffer = this._buffer.slice(end + newline);
      if (line === '') {
        if (this._data.length) {
          events.push({ id: this._id, data: this._data.join('\n') });
        }
        this._data = [];
        this._id = null;
        continue;
      }
      if (line.startsWith(':')) {
        continue;
      }
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? '' : line.slice(colon + 1);
      if (value.startsWith(' ')) {
        value = value.slice(1);
      }
      if (field === 'data') {
        this._data.push(value);
      } else if (field === 'id') {
        this._id = value;
      }
    }
    return events;
  }

  private _buffer = '';
  private _data: string[] = [];
  private _id: string | null = null;
}

/**
 * The events of job `jobId` after event `after` (-1: from the start), until its terminal
 * event or until `signal` aborts. Ends early, without a terminal event, if the connection
 * drops: the caller resumes from the last index it saw.
 */
export async function* jobEvents(
  jobId: string,
  after: number,
  signal: AbortSignal
): AsyncGenerator<ITokenEvent> {
  const headers: Record<string, string> = {};
  if (after >= 0) {
    headers['Last-Event-ID'] = String(after);
  }
  const response = await fetchAPI(`jobs/${encodeURIComponent(jobId)}/events`, {
    headers,
    signal,
    cache: 'no-store'
  });
  if (!response.body) {
    return;
  }
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  const parser = new EventStreamParser();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) {
        return;
      }
      for (const message of parser.push(value)) {
        const event = JSON.parse(message.data) as ITokenEvent;
        yield event;
        if (isTerminal(event)) {
          return;
        }
      }
    }
  } finally {
    reader.cancel().catch(() => undefined);
  }
}
