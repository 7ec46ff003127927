import { errorMessage, isKasaError } from '../../lib/errors';
import { describeError } from './errors';
import type { Translate } from './i18n';
import { Refusals, status } from './status';
import type { Node, NodeAPI, NodeMessageInFlow, SendFunction } from './types';

/**
 * The error a node answers a message with. Node-RED shows an Error by its `toString()`, which
 * would put `Error: ` before the text in the Catch node's `msg.error.message` and the log; this
 * one reads the same as the node's other errors. The original error stays as the cause.
 */
export class NodeError extends Error {
  override toString(): string {
    return this.message;
  }
}

/**
 * Registers an input handler that may be async: `done` is called exactly once, with the error
 * when the handler throws or rejects, so the error reaches the debug sidebar and Catch nodes.
 * A coded error (KasaError) is told in the words of its catalog entry, keeping it as the cause.
 * With `refusals`, the node's status also counts the messages it refused.
 */
export function onInput(
  RED: NodeAPI,
  node: Node,
  handler: (msg: NodeMessageInFlow, send: SendFunction) => unknown,
  refusals?: Refusals,
): void {
  node.on('input', (msg, send, done) => {
    const succeed = () => {
      refusals?.record(0);
      done();
    };
    const fail = (error: unknown) => {
      refusals?.record(1);
      const text = isKasaError(error) ? describeError(RED, error) : errorMessage(error);
      done(new NodeError(text, { cause: error }));
    };
    try {
      const result = handler(msg, send);
      if (result instanceof Promise) {
        result.then(succeed, fail);
      } else {
        succeed();
      }
    } catch (error) {
      fail(error);
    }
  });
}

/**
 * Registers a close handler with the two-parameter signature Node-RED needs to wait for it, and
 * calls `done` exactly once even when the handler fails (the failure is logged on the node).
 */
export function onClose(node: Node, handler: (removed: boolean) => unknown): void {
  node.on('close', (removed: boolean, done: () => void) => {
    Promise.resolve()
      .then(() => handler(removed))
      .catch((error: unknown) => node.error(errorMessage(error)))
      .finally(done);
  });
}

/**
 * Runs `start` once the flow the node belongs to has started, unless the node is closed first.
 * Node-RED lists a flow's Catch nodes only once every node of the flow exists, so whatever a node
 * may report as an error (a setup problem, a device that fails its first poll) waits for the end
 * of the current turn.
 */
export function afterFlowStart(node: Node, start: () => void): void {
  let closed = false;
  node.on('close', () => {
    closed = true;
  });
  setImmediate(() => {
    if (!closed) start();
  });
}

/**
 * Reports a problem found while the node starts (a setting it cannot use, a missing config node)
 * to the log, the debug sidebar and Catch nodes, once the flow has started.
 */
export function reportSetupError(node: Node, text: string): void {
  afterFlowStart(node, () => node.error(text, {}));
}

/**
 * Puts a node that cannot work with its settings out of service: a red status, the problem
 * reported once the flow has started, and the first message it gets answered with the same
 * catchable error (so a user pressing an inject learns why nothing happens); later messages are
 * counted in the status rather than repeating the error.
 */
export function outOfService(
  node: Node,
  statusText: string,
  errorText: string,
  translate: Translate,
): void {
  const refusals = new Refusals(() => refusals.show(node, status.error, statusText, translate));
  status.error(node, statusText);
  reportSetupError(node, errorText);
  node.on('input', (_msg, _send, done) => {
    refusals.record(1);
    if (refusals.count === 1) done(new NodeError(errorText));
    else done();
  });
}
