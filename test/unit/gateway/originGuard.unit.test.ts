import assert from 'node:assert/strict';
import { OriginGuard } from '../../../gateway/http/originGuard';

describe('origin guard (DNS rebinding)', () => {
  const tcp = new OriginGuard({ type: 'tcp', host: '127.0.0.1', port: 4321 });

  it('accepts its own loopback host names, with and without a loopback Origin', () => {
    for (const host of ['127.0.0.1:4321', 'localhost:4321', 'LOCALHOST:4321', '[::1]:4321'])
      assert.equal(tcp.check(host, undefined), undefined);
    assert.equal(tcp.check('localhost:4321', 'http://localhost:4321'), undefined);
  });

  it('refuses foreign hosts, other ports and foreign origins', () => {
    assert.match(tcp.check('evil.example.com', undefined)!, /Host/);
    assert.match(tcp.check('evil.example.com:4321', undefined)!, /Host/);
    assert.match(tcp.check('localhost:80', undefined)!, /Host/);
    assert.match(tcp.check(undefined, undefined)!, /Host/);
    assert.match(tcp.check('localhost:4321', 'http://evil.example.com')!, /Origin/);
    assert.match(tcp.check('localhost:4321', 'null')!, /Origin/);
    assert.match(tcp.check('localhost:4321', 'https://localhost:4321')!, /Origin/);
  });

  it('on a unix socket accepts nominal loopback hosts and no browser origin', () => {
    const unix = new OriginGuard({ type: 'unix', path: '/run/gw.sock' });
    assert.equal(unix.check('localhost', undefined), undefined);
    assert.match(unix.check('localhost', 'http://localhost')!, /Origin/);
    assert.match(unix.check('evil.example.com', undefined)!, /Host/);
  });
});
