// A URI as the logs may show it: what a download or a sink was, without what the URI may carry in secret.
/**
 * The URI without its query string and credentials, for logs and errors: pre-signed URLs carry their signature
 * in the query, and a log line must not hand out read access to the model.
 */
export function redactUri(uri: string): string {
  try {
    const url = new URL(uri);
    return `${url.protocol}//${url.host}${url.pathname}${url.search ? '?<redacted>' : ''}`;
  } catch {
    return '<invalid URI>';
  }
}
