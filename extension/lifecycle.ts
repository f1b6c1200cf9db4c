/**
 * Ownership of disposables, as microsoft/vscode-pull-request-github's `common/lifecycle.ts`:
 * a class that subscribes to events or owns emitters extends `Disposable` and `_register`s
 * each one; its `dispose()` disposes them all, once. Only `vscode`'s types are used, so
 * classes built on it still load in plain mocha.
 */
import type * as vscode from 'vscode';

export function toDisposable(dispose: () => void): vscode.Disposable {
  return { dispose };
}

/**
 * Disposes each in the order given and empties the array, so a second call does nothing.
 * One that throws does not keep the rest alive: all are disposed, then the errors thrown.
 */
export function disposeAll(disposables: vscode.Disposable[]): void {
  const errors: unknown[] = [];
  for (const disposable of disposables.splice(0)) {
    try {
      disposable.dispose();
    } catch (error) {
      errors.push(error);
    }
  }
  if (errors.length === 1) throw errors[0];
  if (errors.length > 1) throw new AggregateError(errors, 'several disposables failed to dispose');
}

export abstract class Disposable implements vscode.Disposable {
  private disposed = false;
  private readonly disposables: vscode.Disposable[] = [];

  /** Disposes everything registered, in registration order; later calls do nothing. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    disposeAll(this.disposables);
  }

  protected get isDisposed(): boolean {
    return this.disposed;
  }

  /** Fires `emitter` whenever any of `events` fires (a view or provider that redraws on its sources' changes). */
  protected _fireOn(emitter: { fire(): void }, ...events: vscode.Event<unknown>[]): void {
    for (const event of events) this._register(event(() => emitter.fire()));
  }

  /** Owns `value` from now on (disposes it at once if this is already disposed). */
  protected _register<T extends vscode.Disposable>(value: T): T {
    if (this.disposed) value.dispose();
    else this.disposables.push(value);
    return value;
  }
}
