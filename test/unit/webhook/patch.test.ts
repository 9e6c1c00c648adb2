import { describe, expect, it } from 'vitest';
import {
  applyAnnotationPatch,
  escapePointer,
  toAnnotationPatch,
} from '../../../src/webhook/patch.js';

describe('escapePointer', () => {
  it('escapes ~ before / (RFC 6901)', () => {
    expect(escapePointer('podlease.io/ip')).toBe('podlease.io~1ip');
    expect(escapePointer('a~b/c')).toBe('a~0b~1c');
    expect(escapePointer('~1')).toBe('~01');
  });
});

describe('toAnnotationPatch', () => {
  it('adds metadata.annotations as a whole when the pod has none', () => {
    const ops = toAnnotationPatch(undefined, {
      'podlease.io/ip': '10.244.0.2',
      'podlease.io/lease': 'default/X',
    });
    expect(ops).toEqual([
      {
        op: 'add',
        path: '/metadata/annotations',
        value: { 'podlease.io/ip': '10.244.0.2', 'podlease.io/lease': 'default/X' },
      },
    ]);
  });

  it('adds each key with / escaped as ~1 when annotations exist, keeping the others', () => {
    const current = { team: 'blue' };
    const ops = toAnnotationPatch(current, { 'podlease.io/ip': '10.244.0.2' });
    expect(ops).toEqual([
      { op: 'add', path: '/metadata/annotations/podlease.io~1ip', value: '10.244.0.2' },
    ]);
    expect(applyAnnotationPatch(current, ops)).toEqual({
      team: 'blue',
      'podlease.io/ip': '10.244.0.2',
    });
  });

  it('replaces forged values and removes forged keys podlease does not set', () => {
    const current = {
      'podlease.io/ip': '10.0.0.5',
      'podlease.io/gateway': '10.0.0.254',
      team: 'blue',
    };
    const ops = toAnnotationPatch(current, { 'podlease.io/ip': '10.244.0.2' }, [
      'podlease.io/ip',
      'podlease.io/gateway',
    ]);
    expect(ops).toEqual([
      { op: 'remove', path: '/metadata/annotations/podlease.io~1gateway' },
      { op: 'add', path: '/metadata/annotations/podlease.io~1ip', value: '10.244.0.2' },
    ]);
    expect(applyAnnotationPatch(current, ops)).toEqual({
      'podlease.io/ip': '10.244.0.2',
      team: 'blue',
    });
  });

  it('writes nothing for values already in place and for an empty set on a pod without annotations', () => {
    expect(toAnnotationPatch({ a: '1' }, { a: '1' })).toEqual([]);
    expect(toAnnotationPatch(undefined, {}, ['podlease.io/ip'])).toEqual([]);
  });
});
