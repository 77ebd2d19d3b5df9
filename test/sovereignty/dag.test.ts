import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  DependencyCycleError,
  DuplicateCartridgeError,
  MissingDependencyError,
  orderByDependencies,
} from '../../src/sovereignty/index.js';

const node = (name: string, ...dependencies: string[]) => ({ name, dependencies });
const names = (nodes: Array<{ name: string }>) => nodes.map((n) => n.name);

describe('cartridge dependency order', () => {
  it('should put every cartridge after its dependencies', () => {
    const order = names(
      orderByDependencies([node('c', 'b'), node('b', 'a'), node('a'), node('d', 'a', 'c')]),
    );
    assert.deepEqual(order, ['a', 'b', 'c', 'd']);
  });

  it('should keep input order among independent cartridges', () => {
    assert.deepEqual(names(orderByDependencies([node('z'), node('y'), node('x', 'z')])), ['z', 'y', 'x']);
    assert.deepEqual(orderByDependencies([]), []);
  });

  it('should refuse a cycle with a message naming it', () => {
    assert.throws(
      () => orderByDependencies([node('a', 'b'), node('b', 'a')]),
      (err: unknown) => {
        assert.ok(err instanceof DependencyCycleError);
        assert.equal(err.message, 'cartridge dependency cycle: a -> b -> a');
        assert.deepEqual(err.cycle, ['a', 'b', 'a']);
        assert.equal(err.reason, 'WEFT_CARTRIDGE_DEPENDENCY_CYCLE');
        return true;
      },
    );
  });

  it('should name only the cartridges in a longer cycle', () => {
    assert.throws(
      () => orderByDependencies([node('root'), node('x', 'root', 'y'), node('y', 'z'), node('z', 'x')]),
      /cartridge dependency cycle: x -> y -> z -> x/,
    );
  });

  it('should name both cartridges when a dependency is missing', () => {
    assert.throws(
      () => orderByDependencies([node('a'), node('b', 'a', 'ghost')]),
      (err: unknown) => {
        assert.ok(err instanceof MissingDependencyError);
        assert.match(err.message, /cartridge 'b' depends on 'ghost', which is not installed/);
        return true;
      },
    );
  });

  it('should refuse duplicate names', () => {
    assert.throws(() => orderByDependencies([node('a'), node('a')]), DuplicateCartridgeError);
  });

  it('should order a long chain without trouble', () => {
    const chain = Array.from({ length: 500 }, (_, i) =>
      i === 0 ? node('n0') : node(`n${i}`, `n${i - 1}`),
    ).reverse();
    const order = names(orderByDependencies(chain));
    assert.equal(order[0], 'n0');
    assert.equal(order[499], 'n499');
  });
});
