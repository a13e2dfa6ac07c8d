// The step plan (src/backend/step/plan.ts): request checks and the keys each row attends to, shared
// by every backend. The native backend's copy of these checks is exercised in
// test/backend/native/native-host.test.ts; here the plan itself, and one TypeScript backend.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { StepRequest } from '../../../src/backend/contract.js';
import { createReferenceBackend } from '../../../src/backend/reference/index.js';
import { checkRetain, keyPosition, planStep, selectedKeys, visibleRanges } from '../../../src/backend/step/plan.js';
import { baseInvFreq } from '../../../src/engine/rope.js';
import { tinyModel } from '../../helpers/models.js';

const range = (a: number, n: number) => Int32Array.from({ length: n }, (_, i) => a + i);
const model = tinyModel('tiny');
const rope = { invFreq: baseInvFreq(model.config.headDim, model.config.ropeTheta), scale: 1 };
const req = (over: Partial<StepRequest> = {}): StepRequest => ({
  tokens: Int32Array.of(5, 6, 7),
  positions: range(10, 3),
  mask: { kind: 'causal' },
  logitRows: Int32Array.of(2),
  rope,
  ...over,
});

describe('planStep', () => {
  it('a dense step: all rows, stored keys at their index, new rows at the request positions', () => {
    const p = planStep(req(), 4, model);
    assert.equal(p.T, 7);
    assert.equal(p.select, null);
    const k = p.keys!;
    assert.deepEqual([k.rows, k.count, k.firstNew, [...k.positions]], [null, 7, 4, [10, 11, 12]]);
    assert.deepEqual(Array.from({ length: 7 }, (_, r) => keyPosition(k, r)), [0, 1, 2, 3, 10, 11, 12]);
    const out: Array<[number, number]> = [];
    assert.equal(visibleRanges(k, 1, out), 1);
    assert.deepEqual(out[0], [0, 6], 'row 1 sees keys 0..5 (stored 0..3 and new rows 0, 1)');
    assert.equal(p.maxPosition, 12);
  });

  it('ranges: the union of a row\'s ranges, bounded by lo/hi', () => {
    const ranges = Int32Array.of(0, 2, 4, 5, 0, 0, /**/ 1, 3, 0, 0, 0, 0, /**/ 0, 0, 0, 0, 5, 7);
    const p = planStep(req({ mask: { kind: 'ranges', ranges } }), 4, model);
    assert.deepEqual(p.keys!.mask, { kind: 'ranges', ranges, lo: 0, hi: 7 });
    const out: Array<[number, number]> = [];
    assert.equal(visibleRanges(p.keys!, 0, out), 2);
    assert.deepEqual(out.slice(0, 2), [[0, 2], [4, 5]]);
  });

  it('TokenSelect: layers select unless init + top-k + local cover every row', () => {
    const spec = { nInit: 2, topK: 4, nLocal: 8, reuseCosine: null };
    const p = planStep(req({ select: spec }), 40, model);
    assert.equal(p.keys, null);
    assert.deepEqual(p.select, { spec, localStart: 35 });
    // S = init 2 + top 4 + local [35, 43): keys and queries at ranks < 14, whatever T is (a table of
    // T rows would grow with the document); q̄ rotates up to nLocal + n − 1 = 10.
    assert.equal(p.maxPosition, 13);
    const all = planStep(req({ select: spec }), 5, model);
    assert.ok(all.selectsAll);
    assert.deepEqual([...all.keys!.positions], [5, 6, 7], 'every row: positions are indices, the request\'s are ignored');
  });

  it('a selection is re-numbered by rank, the step\'s rows last', () => {
    const k = selectedKeys(Int32Array.of(0, 1, 17, 30, 41, 42), 2);
    assert.deepEqual([k.count, k.firstNew, [...k.positions]], [6, 4, [4, 5]]);
    assert.deepEqual(Array.from({ length: 6 }, (_, r) => keyPosition(k, r)), [0, 1, 2, 3, 4, 5]);
  });

  it('refuses a bad request, naming the field', () => {
    const V = model.config.vocabSize;
    const cases: Array<[Partial<StepRequest>, RegExp]> = [
      [{ tokens: new Int32Array(0), positions: new Int32Array(0), logitRows: new Int32Array(0) }, /no rows/],
      [{ tokens: Int32Array.of(1, V, 2) }, new RegExp(`token id ${V} is outside the vocabulary`)],
      [{ tokens: Int32Array.of(1, -1, 2) }, /token id -1/],
      [{ logitRows: Int32Array.of(3) }, /logit row 3 is outside the step's rows \(0\.\.2\)/],
      [{ beacon: Uint8Array.of(0, 1, 0) }, /beacon rows need a beacon checkpoint/],
      [{ beacon: Uint8Array.of(0, 1) }, /beacon flags have 2 entries for 3 rows/],
      [{ positions: range(0, 2) }, /positions has 2 entries for 3 rows/],
      [{ positions: Int32Array.of(0, -1, 2) }, /position -1 is negative/],
      [{ mask: { kind: 'ranges', ranges: new Int32Array(18) } }, /row 0 of the mask sees no key/],
      [{ mask: { kind: 'ranges', ranges: Int32Array.of(0, 9, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0) } }, /mask range \[0, 9\) of row 0 is outside the keys \(0\.\.7\)/],
      [{ rope: { invFreq: new Float32Array(3), scale: 1 } }, /rope\.invFreq has 3 entries/],
      [{ select: { nInit: -1, topK: 2, nLocal: 2, reuseCosine: null } }, /select sizes must be non-negative/],
    ];
    for (const [over, msg] of cases) assert.throws(() => planStep(req(over), 4, model), msg);
    assert.throws(() => checkRetain(Int32Array.of(0, 4), 4), /retain: row 4 is outside the stored rows \(0\.\.3\)/);
  });

  it('beacon projections and the beacon embedding are separate row flags (FocusLLM candidates take only the first)', () => {
    const beacon = tinyModel('tiny-beacon');
    const both = planStep(req({ beacon: Uint8Array.of(0, 1, 1) }), 4, beacon);
    assert.deepEqual([[...both.beacon!], [...both.beaconEmbedding!]], [[0, 1, 1], [0, 1, 1]], 'absent: the beacon flags');
    const focus = tinyModel('tiny-focus');
    const candidate = planStep(req({ beacon: Uint8Array.of(0, 0, 1), beaconEmbedding: new Uint8Array(3) }), 4, focus);
    assert.deepEqual([[...candidate.beacon!], candidate.beaconEmbedding], [[0, 0, 1], null]);
    assert.throws(() => planStep(req({ beacon: Uint8Array.of(0, 0, 1) }), 4, focus), /rows with the beacon embedding need an Activation Beacon checkpoint/);
    assert.throws(() => planStep(req({ beaconEmbedding: Uint8Array.of(1) }), 4, focus), /beaconEmbedding flags have 1 entries for 3 rows/);
    assert.throws(() => checkRetain(Int32Array.of(5), 4, 'importRows'), /importRows: row 5 is outside the stored rows/);
  });

  it('a refused step stores nothing on a backend', async () => {
    const backend = await createReferenceBackend(model);
    const seq = backend.newSequence();
    await assert.rejects(seq.step(req({ logitRows: Int32Array.of(7) })), /logit row 7/);
    assert.equal(seq.length, 0);
    await seq.step(req({ positions: range(0, 3) }));
    assert.equal(seq.length, 3);
    assert.throws(() => seq.retain(Int32Array.of(3)), /outside the stored rows/);
  });
});
