/** A wrong flag, environment variable or config file: the process ends with this one-line reason. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}
