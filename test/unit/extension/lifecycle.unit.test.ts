import assert from 'node:assert/strict';
import { Disposable, disposeAll, toDisposable } from '../../../extension/lifecycle';

class Owner extends Disposable {
  own(name: string, log: string[]) {
    return this._register(toDisposable(() => log.push(name)));
  }
  get gone(): boolean {
    return this.isDisposed;
  }
}

describe('extension lifecycle', () => {
  it('disposes what was registered, in order, once', () => {
    const log: string[] = [];
    const owner = new Owner();
    owner.own('emitter', log);
    owner.own('subscription', log);
    assert.equal(owner.gone, false);
    owner.dispose();
    owner.dispose();
    assert.deepEqual(log, ['emitter', 'subscription']);
    assert.equal(owner.gone, true);
  });

  it('disposes at once what is registered after disposal', () => {
    const log: string[] = [];
    const owner = new Owner();
    owner.dispose();
    owner.own('late', log);
    assert.deepEqual(log, ['late']);
  });

  it('disposeAll empties the array, so a second call disposes nothing again', () => {
    const log: string[] = [];
    const disposables = [toDisposable(() => log.push('a')), toDisposable(() => log.push('b'))];
    disposeAll(disposables);
    disposeAll(disposables);
    assert.deepEqual(log, ['a', 'b']);
    assert.equal(disposables.length, 0);
  });

  it('disposeAll disposes the rest when one throws, then throws', () => {
    const log: string[] = [];
    const disposables = [
      toDisposable(() => log.push('a')),
      toDisposable(() => {
        throw new Error('b failed');
      }),
      toDisposable(() => log.push('c')),
    ];
    assert.throws(() => disposeAll(disposables), /b failed/);
    assert.deepEqual(log, ['a', 'c']);
  });
});
