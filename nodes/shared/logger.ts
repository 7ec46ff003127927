import type { Logger } from '../../lib/types';
import type { Node } from './types';

/** Routes lib/ logging into the node's own log, at Node-RED's matching levels. */
export function nodeLogger(node: Node): Logger {
  return {
    debug: (message) => node.debug(message),
    info: (message) => node.log(message),
    warn: (message) => node.warn(message),
    error: (message) => node.error(message),
  };
}
