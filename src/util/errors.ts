/**
 * The one error type kiln throws on purpose. `code` is stable (scripts and tests match
 * on it); `message` is one sentence a user can act on; `cause` keeps the low-level error
 * for debug output only.
 */
export type ErrorCode =
  | 'USAGE'
  | 'INVALID_REFERENCE'
  | 'INVALID_DIGEST'
  | 'DIGEST_MISMATCH'
  | 'SIZE_MISMATCH'
  | 'UNSUPPORTED_MEDIA_TYPE'
  | 'INVALID_MANIFEST'
  | 'INVALID_CONFIG'
  | 'PLATFORM_NOT_FOUND'
  | 'LAYOUT'
  | 'TARBALL'
  | 'INVALID_LAYER'
  | 'REGISTRY_UNREACHABLE'
  | 'REGISTRY_TLS'
  | 'REGISTRY_AUTH'
  | 'REGISTRY_DENIED'
  | 'REGISTRY_NOT_FOUND'
  | 'REGISTRY_PROTOCOL'
  | 'REGISTRY_SERVER'
  | 'CREDENTIAL_HELPER'
  | 'DOCKER_CONFIG'
  | 'IO'
  | 'DOCKERFILE'
  | 'RUN_FAILED'
  | 'ISOLATION'
  | 'INVALID_USER'
  | 'UNKNOWN_USER'
  | 'COPY_SOURCE'
  | 'COPY_DEST'
  | 'ADD_URL'
  | 'INTERNAL';

export class KilnError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'KilnError';
    this.code = code;
  }
}

export function isKilnError(err: unknown, code?: ErrorCode): err is KilnError {
  return err instanceof KilnError && (code === undefined || err.code === code);
}

/** A one-line description of any thrown value, for messages that wrap a low-level failure. */
export function describeError(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    return code && !err.message.includes(code) ? `${err.message} (${code})` : err.message;
  }
  return String(err);
}
