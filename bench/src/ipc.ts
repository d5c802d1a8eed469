/** The messages between the bench and its child processes. */

export type ChildMessage =
  | { readonly type: 'ready'; readonly port: number; readonly url?: string }
  | { readonly type: 'ack'; readonly id: number; readonly value?: unknown };

export type ParentMessage = { readonly type: 'delay'; readonly id: number; readonly ms: number };

/** A child exits when the bench goes away (its IPC channel closes), so nothing is left behind. */
export function exitWithParent(): void {
  process.on('disconnect', () => process.exit(1));
}

export function sendToParent(message: ChildMessage): void {
  process.send?.(message);
}
