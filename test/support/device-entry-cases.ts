/**
 * Device entries and whether they are well formed: fed both to the runtime parser
 * (lib/polling/device-entries.ts) and to kasa-poll's editor validator in a real browser, so the
 * two cannot drift apart.
 */
export const DEVICE_ENTRY_CASES: readonly (readonly [entry: string, valid: boolean])[] = [
  ['127.0.0.2', true],
  ['192.0.2.10:9999', true],
  ['192.0.2.12/3', true],
  ['192.0.2.12:10000/5', true],
  ['plug.local', true],
  ['plug.local:9999', true],
  ['kitchen-plug', true],
  ['[::1]:9999/0', true],
  ['127.0.0.300', false],
  ['1.2.3', false],
  ['plug:0', false],
  ['plug:70000', false],
  ['plug:', false],
  ['plug/x', false],
  ['plug/123', false],
  ['http://plug', false],
  ['-bad-', false],
  ['not a host', false],
  ['plug_1', false],
];
