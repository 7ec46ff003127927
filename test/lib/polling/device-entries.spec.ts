import assert from 'node:assert/strict';

import { KasaError } from '../../../lib/errors';
import { parseDeviceEntry, parseDeviceList } from '../../../lib/polling/device-entries';
import { DEVICE_ENTRY_CASES } from '../../support/device-entry-cases';

describe('device entries', function () {
  it('parses host, host:port and host:port/outlet', function () {
    assert.deepEqual(parseDeviceEntry('127.0.0.2'), {
      host: '127.0.0.2',
      port: 9999,
      outlet: null,
      key: '127.0.0.2:9999',
    });
    assert.deepEqual(parseDeviceEntry(' plug.local:10000 '), {
      host: 'plug.local',
      port: 10000,
      outlet: null,
      key: 'plug.local:10000',
    });
    assert.deepEqual(parseDeviceEntry('127.0.0.3/4'), {
      host: '127.0.0.3',
      port: 9999,
      outlet: 4,
      key: '127.0.0.3:9999/4',
    });
    assert.deepEqual(parseDeviceEntry('[::1]:9999/0'), {
      host: '::1',
      port: 9999,
      outlet: 0,
      key: '[::1]:9999/0',
    });
  });

  it('rejects malformed entries with a reason', function () {
    for (const [entry, reason] of [
      ['127.0.0.300', /not an IPv4 address/],
      ['plug:0', /port 0/],
      ['plug:70000', /port 70000/],
      ['plug/x', /host\[:port\]\[\/outlet\]/],
      ['http://plug', /host\[:port\]\[\/outlet\]/],
      ['-bad-', /not an IPv4 address or host name/],
    ] as const) {
      assert.throws(
        () => parseDeviceEntry(entry),
        (error: unknown) =>
          error instanceof KasaError &&
          error.code === 'BAD_DEVICE_ENTRY' &&
          reason.test(error.message),
        entry,
      );
    }
  });

  it('accepts exactly the well-formed entries of the table the editor is tested with', function () {
    for (const [entry, valid] of DEVICE_ENTRY_CASES) {
      let parsed = true;
      try {
        parseDeviceEntry(entry);
      } catch (error) {
        assert.ok(error instanceof KasaError && error.code === 'BAD_DEVICE_ENTRY', entry);
        parsed = false;
      }
      assert.equal(parsed, valid, entry);
    }
  });

  it('splits lines and commas, skips blanks, comments and duplicates, and keeps good entries next to bad ones', function () {
    const { targets, errors } = parseDeviceList(
      '127.0.0.2, 127.0.0.3:9999\n\n# kitchen\n127.0.0.4/1 # kettle\nnot a host\n127.0.0.2',
    );
    assert.deepEqual(
      targets.map((target) => target.key),
      ['127.0.0.2:9999', '127.0.0.3:9999', '127.0.0.4:9999/1'],
    );
    assert.equal(errors.length, 1);
    assert.match(errors[0]!.message, /"not a host"/);
  });
});
