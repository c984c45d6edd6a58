// What an HTTP client throws for an error response, as far as Keel's classifier reads it: the
// status, a message and the response headers (Retry-After). One shape for every test that fakes one.

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message = `HTTP ${status}`,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}
