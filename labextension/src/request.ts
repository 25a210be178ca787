/**
 * The one place the front end talks HTTP: every call goes through
 * `ServerConnection`, which adds the Jupyter token and the XSRF header.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

/** The REST namespace of the server extension. */
export const API_NAMESPACE = 'jupyter-securellm/v1';

/** An error answer in the contract's shape: `{"error": {"type", "message"}}`. */
export class APIError extends Error {
  constructor(
    readonly status: number,
    readonly type: string,
    message: string
  ) {
    super(message);
    this.name = 'APIError';
  }
}

/**
 * Call the server extension and return the JSON answer.
 *
 * A network failure raises `ServerConnection.NetworkError`; an HTTP error
 * raises `APIError` with the contract's error type (for example
 * `policy_denied`) and its one-sentence message.
 */
export async function requestAPI<T>(
  endPoint: string,
  init: RequestInit = {},
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): Promise<T> {
  const url = URLExt.join(settings.baseUrl, API_NAMESPACE, endPoint);
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, settings);
  } catch (error) {
    throw new ServerConnection.NetworkError(error as TypeError);
  }
  const text = await response.text();
  let data: any = null;
  if (text.length > 0) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!response.ok) {
    const err = data && typeof data === 'object' ? data.error : null;
    throw new APIError(
      response.status,
      (err && err.type) || 'http_error',
      (err && err.message) || `HTTP ${response.status} from ${endPoint}`
    );
  }
  return data as T;
}
