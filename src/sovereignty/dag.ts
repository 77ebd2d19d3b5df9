import { DependencyCycleError, DuplicateCartridgeError, MissingDependencyError } from './errors.js';

/** Anything with a name and the names it depends on (a manifest fits). */
export interface DependencyNode {
  readonly name: string;
  readonly dependencies: readonly string[];
}

/**
 * Orders cartridges so that each comes after every cartridge it depends on. The order is stable:
 * among cartridges whose dependencies are met, input order wins.
 *
 * @throws {MissingDependencyError} naming the cartridge and the dependency that is not given.
 * @throws {DependencyCycleError} naming the cycle, e.g. `a -> b -> a`.
 * @throws {DuplicateCartridgeError} when a name appears twice.
 * @example
 * orderByDependencies([{ name: 'b', dependencies: ['a'] }, { name: 'a', dependencies: [] }]).map((n) => n.name);
 * // ['a', 'b']
 */
export function orderByDependencies<T extends DependencyNode>(nodes: readonly T[]): T[] {
  const byName = new Map<string, T>();
  for (const node of nodes) {
    if (byName.has(node.name)) throw new DuplicateCartridgeError(node.name);
    byName.set(node.name, node);
  }
  for (const node of nodes) {
    for (const dep of node.dependencies) {
      if (!byName.has(dep)) throw new MissingDependencyError(node.name, dep);
    }
  }
  const cycle = findCycle(nodes, byName);
  if (cycle) throw new DependencyCycleError(cycle);

  // Kahn's algorithm; scanning in input order keeps the result stable.
  const remaining = new Map<string, number>();
  const dependents = new Map<string, string[]>();
  for (const node of nodes) {
    const deps = new Set(node.dependencies);
    remaining.set(node.name, deps.size);
    for (const dep of deps) dependents.set(dep, [...(dependents.get(dep) ?? []), node.name]);
  }
  const index = new Map(nodes.map((n, i) => [n.name, i]));
  const ready = nodes.filter((n) => remaining.get(n.name) === 0).map((n) => n.name);
  const out: T[] = [];
  while (ready.length > 0) {
    ready.sort((a, b) => (index.get(a) ?? 0) - (index.get(b) ?? 0));
    const name = ready.shift() as string;
    out.push(byName.get(name) as T);
    for (const dependent of dependents.get(name) ?? []) {
      const left = (remaining.get(dependent) ?? 0) - 1;
      remaining.set(dependent, left);
      if (left === 0) ready.push(dependent);
    }
  }
  return out;
}

/** Depth-first search with colours; returns the first cycle found as `[a, b, ..., a]`. */
export function findCycle<T extends DependencyNode>(nodes: readonly T[], byName: ReadonlyMap<string, T>): string[] | null {
  const state = new Map<string, 'visiting' | 'done'>();
  const stack: string[] = [];
  const visit = (name: string): string[] | null => {
    const s = state.get(name);
    if (s === 'done') return null;
    if (s === 'visiting') return [...stack.slice(stack.indexOf(name)), name];
    state.set(name, 'visiting');
    stack.push(name);
    for (const dep of byName.get(name)?.dependencies ?? []) {
      const found = visit(dep);
      if (found) return found;
    }
    stack.pop();
    state.set(name, 'done');
    return null;
  };
  for (const node of nodes) {
    const found = visit(node.name);
    if (found) return found;
  }
  return null;
}
