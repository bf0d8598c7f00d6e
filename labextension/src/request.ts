/**
 * The one way this extension talks to the server: `fetch` through JupyterLab's server
 * connection settings, so the base URL, the token and the XSRF header come along.
 */

import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

/** A refusal from the jupyter_llm API, with its message and stable `code`. */
export class APIError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly code: string | null
  ) {
    super(message);
  }
}

/**
 * Fetch `{base}llm/api/{path}` and return the response once it is known to be a success;
 * a refusal becomes an `APIError` carrying the server's message.
 */
export async function fetchAPI(
  path: string,
  init: RequestInit = {},
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): Promise<Response> {
  const url = URLExt.join(settings.baseUrl, 'llm/api', path);
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, settings);
  } catch (error) {
    if ((error as Error).name === 'AbortError') {
      throw error;
    }
    throw new ServerConnection.NetworkError(error as TypeError);
  }
  if (!response.ok) {
    const body = await response.json().catch(() => null);
    const failure = body?.error ?? {};
    throw new APIError(
      failure.message ?? `${response.status} ${response.statusText}`,
      response.status,
      failure.code ?? null
    );
  }
  return response;
}

/** `fetchAPI` for JSON: send `body` (if any) as JSON, return the parsed answer. */
export async function requestAPI<T>(
  path: string,
  method = 'GET',
  body?: unknown
): Promise<T> {
  const init: RequestInit = { method };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers = { 'Content-Type': 'application/json' };
  }
  const response = await fetchAPI(path, init);
  return (await response.json()) as T;
}
