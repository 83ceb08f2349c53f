import type { Deps } from './index.ts';

/** One instance of a service per running app, built from its deps the first time it is asked for. */
export function perApp<T>(build: (deps: Deps) => T): (deps: Deps) => T {
  const built = new WeakMap<Deps, T>();
  return (deps) => {
    let value = built.get(deps);
    if (value === undefined) {
      value = build(deps);
      built.set(deps, value);
    }
    return value;
  };
}
