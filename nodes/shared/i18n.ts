import type { NodeAPI } from './types';

export type Translate = (
  key: string,
  params?: Record<string, string | number | undefined>,
) => string;

/** Looks keys up under the node type's own section of its message catalog. */
export function translator(RED: NodeAPI, type: string): Translate {
  return (key, params) => {
    if (params === undefined) return RED._(`${type}.${key}`);
    const defined: Record<string, string | number> = {};
    for (const [name, value] of Object.entries(params))
      if (value !== undefined) defined[name] = value;
    return RED._(`${type}.${key}`, defined);
  };
}
