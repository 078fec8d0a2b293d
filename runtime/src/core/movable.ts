/**
 * Bytes that can move to another thread without a copy: a view that covers its whole ArrayBuffer is transferred as
 * it is; a view of a shared or larger buffer (Node's pool, one request's rows of a merged batch) is copied first, so
 * that moving it detaches nothing anyone else holds.
 */
export function movable<T extends ArrayBufferView>(view: T, copy: (view: T) => T): { view: T; buffer: ArrayBuffer } {
  const whole = view.byteOffset === 0 && view.buffer.byteLength === view.byteLength && view.buffer instanceof ArrayBuffer;
  const moved = whole ? view : copy(view);
  return { view: moved, buffer: moved.buffer as ArrayBuffer };
}

/** A body's bytes, ready to transfer. */
export function movableBytes(bytes: Uint8Array): { view: Uint8Array; buffer: ArrayBuffer } {
  return movable(bytes, (view) => new Uint8Array(view));
}
